import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { DRIVER_ENV, DRIVER_METRICS_PORT, planDigest } from '../driver-job/job.js';
import { parseBaseUrl, runDriver, type ProgressSnapshot } from '../driver/index.js';
import { formatErrors, parseExperiment } from '../schema/index.js';
import { arrivalCounts, buildTrafficPlan, checkRunnerSlice, type PhaseRange, type RunnerSlice } from '../traffic/index.js';
import { EXIT, type Io } from './io.js';
import { parsePhasesOption } from './phases-option.js';

export const DRIVE_USAGE = `Usage: loadlab drive --experiment FILE [options]

Runs the load driver on one runner's share of an experiment's schedule, as each pod of the loadlab
engine's Job does (the operator writes these arguments into the Job: \`loadlab render\` shows them):
sends its requests to the API, serves its metrics for Prometheus, and exits when its share is done.
Runner k of n sends every endpoint's arrivals numbered k mod n, at the schedule's own times.

Options:
  --experiment FILE     the LoadExperiment, YAML or JSON (the Job mounts it from its ConfigMap)
  --phases FROM-TO      the plan phases to run, 0-based and inclusive (default: the whole plan)
  --runners N           how many runners share the schedule (default 1)
  --runner K            this runner, 0-based (default: $${DRIVER_ENV.runnerIndex}, which an Indexed Job
                        sets in each pod; else 0)
  --start-at TIME       when every runner starts the schedule, RFC 3339 (default: now). A runner
                        that starts later joins the schedule where it is; what it missed is
                        counted as dropped
  --metrics-port PORT   /metrics on every interface (default ${DRIVER_METRICS_PORT}; 0: any free port)
  --linger SECONDS      keep serving /metrics this long after the schedule, for the last scrape
                        (default 0)
  --plan-digest HEX     refuse to run unless this build computes the same plan (the operator's
                        digest: the driver must be the operator's own version)
  -h, --help            show this help

Environment:
  ${DRIVER_ENV.apiUrl}       the API's base URL, e.g. http://seed-20k-api.loadlab.svc:3000 (required)
  ${DRIVER_ENV.tokenSecret}  the API's TOKEN_SECRET, which device tokens are minted with (required)

Exit status: 0 its share of the schedule ran (how the API answered is in the metrics and the last
line); 1 it could not run (e.g. the metrics port is taken); 2 the experiment, an option or the
environment is invalid; 130 stopped by SIGTERM or SIGINT.`;

/** Progress lines in a pod's log: one every this many seconds. */
const PROGRESS_EVERY_S = 10;

export async function drive(args: readonly string[], io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      options: {
        experiment: { type: 'string' },
        phases: { type: 'string' },
        runners: { type: 'string' },
        runner: { type: 'string' },
        'start-at': { type: 'string' },
        'metrics-port': { type: 'string' },
        linger: { type: 'string' },
        'plan-digest': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return invalid(io, (error as Error).message);
  }
  if (values.help) {
    io.stdout(`${DRIVE_USAGE}\n`);
    return EXIT.ok;
  }

  const problems: string[] = [];
  const wholeNumber = (text: string | undefined, what: string, fallback: number, min: number, max: number): number => {
    if (text === undefined || text === '') return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${what} must be a whole number from ${min} to ${max}, not "${text}"`);
    return value;
  };
  const runners = wholeNumber(values.runners, '--runners', 1, 1, 64);
  const runner = values.runner !== undefined ? wholeNumber(values.runner, '--runner', 0, 0, 63) : wholeNumber(io.env[DRIVER_ENV.runnerIndex], DRIVER_ENV.runnerIndex, 0, 0, 63);
  const metricsPort = wholeNumber(values['metrics-port'], '--metrics-port', DRIVER_METRICS_PORT, 0, 65535);
  const lingerS = Number(values.linger ?? 0);
  if (!(lingerS >= 0 && lingerS <= 3600)) problems.push(`--linger must be a number of seconds from 0 to 3600, not "${values.linger}"`);
  const slice: RunnerSlice = { index: runner, count: runners };
  try {
    checkRunnerSlice(slice);
  } catch (error) {
    problems.push(`runner ${runner} of ${runners}: ${(error as Error).message} (--runner or ${DRIVER_ENV.runnerIndex}, --runners)`);
  }
  const startAtUnixMs = values['start-at'] === undefined ? undefined : Date.parse(values['start-at']);
  if (startAtUnixMs !== undefined && Number.isNaN(startAtUnixMs)) problems.push(`--start-at must be an RFC 3339 time such as 2026-05-01T12:00:00Z, not "${values['start-at']}"`);
  const apiUrl = io.env[DRIVER_ENV.apiUrl];
  if (!apiUrl) problems.push(`${DRIVER_ENV.apiUrl} is not set: the API's base URL, e.g. http://quickstart-api.default.svc:3000`);
  else {
    try {
      parseBaseUrl(apiUrl);
    } catch (error) {
      problems.push(`${DRIVER_ENV.apiUrl}: ${(error as Error).message.replace(/^baseUrls: /, '')}`);
    }
  }
  const tokenSecret = io.env[DRIVER_ENV.tokenSecret];
  if (!tokenSecret) problems.push(`${DRIVER_ENV.tokenSecret} is not set: the API's TOKEN_SECRET, which device tokens are minted with`);
  if (!values.experiment) problems.push('--experiment is required: the LoadExperiment file, e.g. /etc/loadlab/experiment.json');
  if (problems.length > 0) return invalid(io, problems.join('\n  '));

  const file = values.experiment!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    io.stderr(`loadlab drive: cannot read ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}\n`);
    return EXIT.unreadable;
  }
  const parsed = parseExperiment(text, file);
  if (!parsed.ok) {
    io.stderr(`${formatErrors(parsed.errors)}\nloadlab drive: ${file} is not a valid LoadExperiment (${parsed.errors.length} problem${parsed.errors.length === 1 ? '' : 's'})\n`);
    return EXIT.invalid;
  }
  const { experiment } = parsed;
  const plan = buildTrafficPlan(experiment);
  let phaseRange: PhaseRange = { from: 0, to: plan.phases.length };
  if (values.phases !== undefined) {
    const range = parsePhasesOption(values.phases, plan);
    if ('error' in range) return invalid(io, range.error);
    phaseRange = range;
  }
  const digest = planDigest(plan);
  if (values['plan-digest'] !== undefined && values['plan-digest'] !== digest) {
    return invalid(io, `this build computes another plan for ${file} (digest ${digest}, the Job's ${values['plan-digest']}): run the driver from the operator's own image (the operator's DRIVER_IMAGE), so both compute the same schedule`);
  }

  const counts = arrivalCounts(plan, phaseRange, slice);
  const durationS = plan.phases[phaseRange.to - 1]!.endS - plan.phases[phaseRange.from]!.startS;
  const name = `${experiment.metadata.namespace ?? 'default'}/${experiment.metadata.name}`;
  // Before the first line: whoever waits for it (a test, a person) may signal from then on.
  const abort = new AbortController();
  const onSignal = (signal: string) => {
    if (abort.signal.aborted) return;
    io.stderr(`loadlab drive: ${signal}: stopping the schedule\n`);
    abort.abort();
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  const startText = startAtUnixMs === undefined ? 'now' : `at ${new Date(startAtUnixMs).toISOString()}`;
  io.stdout(
    `loadlab drive: runner ${runner} of ${runners} for LoadExperiment ${name}, phases ${phaseRange.from}-${phaseRange.to - 1} (${durationS} s): ` +
      `${counts.measurements} measurements, ${counts.command} polls, ${counts.login} logins to ${apiUrl}; starting ${startText}\n`,
  );

  try {
    let seconds = 0;
    const result = await runDriver({
      experiment,
      plan,
      phaseRange,
      slice,
      ...(startAtUnixMs !== undefined ? { startAtUnixMs } : {}),
      baseUrls: [apiUrl!],
      tokenSecret: tokenSecret!,
      metricsPort,
      metricsHost: '0.0.0.0',
      metricsLingerMs: lingerS * 1000,
      // spec.generator.maxVUs is per generator pod, as k6's is.
      ...(experiment.spec.generator.maxVUs !== undefined ? { maxInFlight: experiment.spec.generator.maxVUs } : {}),
      signal: abort.signal,
      onReady: ({ metricsUrl }) => io.stdout(`loadlab drive: serving /metrics on port ${new URL(metricsUrl).port} (every interface)\n`),
      onProgress: (snapshot: ProgressSnapshot) => {
        if (++seconds % PROGRESS_EVERY_S === 0) io.stdout(`${progressLine(snapshot)}\n`);
      },
    });
    const responses = Object.entries(result.totals.responses).map(([code, count]) => `${code}: ${count}`).join(', ');
    io.stdout(
      `loadlab drive: ${result.aborted ? 'stopped' : 'done'}: sent ${result.totals.sent} (${result.endpoints.measurements.sent} measurements, ${result.endpoints.command.sent} polls, ` +
        `${result.endpoints.login.sent} logins); responses ${responses || 'none'}; ${result.totals.errors} errors, ${result.totals.dropped} dropped, ${result.totals.late} late; ` +
        `max lag ${result.maxLagS.toFixed(3)} s, p99 send lag ${result.sendLagP99Ms.toFixed(1)} ms, ${result.cpuSeconds.toFixed(1)} CPU s` +
        `${lingerS > 0 && !result.aborted ? `; serving metrics ${lingerS} s more` : ''}\n`,
    );
    if (result.aborted) return 130;
    // The metrics stay up for Prometheus' last scrape; the process ends after it.
    if (lingerS > 0) await sleep(lingerS * 1000, undefined, { signal: abort.signal }).catch(() => undefined);
    return abort.signal.aborted ? 130 : EXIT.ok;
  } catch (error) {
    io.stderr(`loadlab drive: ${(error as Error).message}\n`);
    return EXIT.unreadable;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
}

function progressLine(s: ProgressSnapshot): string {
  const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : '-');
  return `loadlab drive: ${Math.round(s.elapsedS)} s, phase ${s.phase}, fleet ${Math.round(s.fleet)}: offered ${s.offeredRps.toFixed(0)}/s, sent ${s.sentRps.toFixed(0)}/s, ` +
    `answered ${s.achievedRps.toFixed(0)}/s, p95 ${ms(s.p95Ms)}, in flight ${s.inFlight} of ${s.concurrency}, lag ${s.lagS.toFixed(3)} s; so far ${s.errors} errors, ${s.late} late, ${s.dropped} dropped`;
}

function invalid(io: Io, message: string): number {
  io.stderr(`loadlab drive: ${message}\nRun \`loadlab drive --help\` for the options.\n`);
  return EXIT.invalid;
}
