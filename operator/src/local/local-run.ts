import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RetryableError } from '../analysis/prometheus-client.js';
import { analyzeRun, defaultRateWindowS, stagesTable, evidenceTable, textTable, timelineFromRun, toSlo, writeReportFiles, type AnalysisResult } from '../analysis/index.js';
import { runDriver, type DriverResult, type ProgressSnapshot } from '../driver/index.js';
import { parseExperiment, formatErrors, type LoadExperiment } from '../schema/index.js';
import { buildTrafficPlan, type TrafficPlan } from '../traffic/index.js';
import { startApiProcesses } from './api-processes.js';
import { checkDatabase, prepareDatabase, redactUrl } from '../dataset/prepare.js';
import { startExporters } from './exporters.js';
import { freePort, PostgresCluster, postgresBinDir } from '@loadlab/sandbox/postgres';
import { requireBinary } from './binaries.js';
import { ManagedProcess } from './processes.js';
import { Lifeline } from './lifeline.js';
import { checkRemotePrometheus, LocalPrometheus, PROMETHEUS_HOW_TO } from './prometheus.js';
import { phaseLabel, ProgressView, type TextOut } from './progress.js';
import { formatHarnessCpu, HarnessMeter, type HarnessCpu } from './harness-cpu.js';
import { phaseRangeOfStep } from '../traffic/phases.js';
import { afterSearchStep, stepOutcome, type StepOutcome } from '../traffic/search-policy.js';
import { DRIVER_JOB, promString } from '../contract/names.js';
import { formatCpuList, pinProcess, splitCpus } from './cpu-affinity.js';
import { ProcessCpuExporter } from './process-cpu.js';
import { LiveView } from './live-view.js';
import { listeningPid } from '@loadlab/sandbox/procstat';

/** Bad input: the message is for the person who wrote the file; exit code 2. */
export class InvalidInputError extends Error {}

export interface LocalRunOptions {
  file: string;
  /** The experiment in `file`, when the caller has read it already. */
  experiment?: LoadExperiment;
  /** Run at this many API processes instead of spec.target.replicas (a scaling study's count). */
  replicas?: number;
  /** Why the experiment must not run (the CLI passes a default installation's policy); refused before anything starts. */
  refuse?: (experiment: LoadExperiment, plan: TrafficPlan) => string[];
  /** Where the report goes; default loadlab-runs/<name>-<time> under the working directory. */
  outDir?: string;
  /** From DATABASE_URL: use this database instead of a throwaway cluster. */
  databaseUrl?: string;
  /** From PROMETHEUS_URL: analyse from this Prometheus (a local agent remote-writes the run into it). */
  prometheusUrl?: string;
  scrapeIntervalS?: number;
  out?: TextOut;
  signal?: AbortSignal;
  /**
   * CPUs for the API processes alone (`--api-cpus`); everything else this run starts, and this
   * process (the driver), runs on the other CPUs until the run ends.
   */
  apiCpus?: readonly number[];
  /**
   * Called before each analysis (a search step's judgement, the final one), with the Prometheus
   * it will query: lets tests break that Prometheus at that moment.
   */
  beforeAnalysis?: (live: { prometheusUrl: string; prometheusPid: number | undefined }) => Promise<void>;
  /**
   * `--ui`: a live page on 127.0.0.1 (its address printed) with the charts over time, while the
   * run goes; `onLiveView` is told its address (tests open it).
   */
  ui?: { port?: number; onLiveView?: (view: LiveView) => void };
  /** Called after the analysis, before anything is stopped: lets tests cross-check the live components. */
  inspect?: (live: { prometheusUrl: string; apiUrls: string[]; databaseUrl: string; runId: string; analysis: AnalysisResult }) => Promise<void>;
}

export interface LocalRunResult {
  experiment: LoadExperiment;
  driver: DriverResult[];
  analysis: AnalysisResult;
  outDir: string;
  /** Milliseconds from the start of `loadlab run` to the first request sent. */
  startupMs: number;
  runId: string;
  /** What the harness itself cost while the load ran, in percent of one core. */
  harness: HarnessCpu;
}

/**
 * `loadlab run`: the same experiment as in a cluster, on this machine. Brings up PostgreSQL (or uses
 * DATABASE_URL), the API processes with the spec's knobs, the exporters and a Prometheus that scrapes
 * them all, drives the plan with the local driver (a search one step at a time, stopping once the
 * step breaks the SLO), then analyses the run from Prometheus and writes the report. Everything it
 * started is stopped on every way out, Ctrl-C included.
 */
export async function runLocal(options: LocalRunOptions): Promise<LocalRunResult> {
  const started = Date.now();
  const out = options.out ?? process.stdout;
  const say = (line: string) => out.write(`${line}\n`);
  const read = options.experiment ?? (await readExperiment(options.file));
  const experiment = options.replicas === undefined ? read : { ...read, spec: { ...read.spec, target: { ...read.spec.target, replicas: options.replicas } } };
  const plan = buildTrafficPlan(experiment);
  const refused = options.refuse?.(experiment, plan) ?? [];
  if (refused.length > 0) throw new InvalidInputError(`${options.file}: ${refused.join('\n')}`);
  const name = experiment.metadata.name;
  const runId = new Date(started).toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const outDir = resolve(options.outDir ?? join('loadlab-runs', `${name}-${runId}`));
  const scrapeIntervalS = options.scrapeIntervalS ?? 2;
  // Missing tools fail before anything is started.
  requireBinary('prometheus', PROMETHEUS_HOW_TO);
  const remote = options.prometheusUrl ? await checkRemotePrometheus(options.prometheusUrl) : undefined;

  // The split is checked before anything starts; this process moves first, so every child it
  // starts from here on (PostgreSQL, Prometheus, the exporters) inherits the other CPUs.
  const cpus = options.apiCpus ? splitCpus(options.apiCpus) : undefined;
  // Everything started from here on is written down, so it is taken back even if this process
  // is killed (SIGKILL, out of memory); a killed earlier run's leftovers are taken back first.
  const { lifeline, reclaimed } = await Lifeline.start();
  if (reclaimed > 0) say(`took back what ${reclaimed} killed earlier run${reclaimed > 1 ? 's' : ''} left running`);
  const cleanup: (() => Promise<void>)[] = [];
  if (cpus) {
    pinProcess(process.pid, cpus.rest);
    cleanup.push(async () => pinProcess(process.pid, cpus.original));
  }
  try {
    // --- database ---
    let databaseUrl = options.databaseUrl;
    if (databaseUrl) {
      await checkDatabase(databaseUrl);
      say(`database: ${redactUrl(databaseUrl)}${cpus ? ' (not moved off the API\'s CPUs: it is not this run\'s)' : ''}`);
    } else {
      try {
        postgresBinDir();
      } catch (error) {
        throw new Error(`${(error as Error).message}; or set DATABASE_URL to a PostgreSQL you have`);
      }
      const cluster = await PostgresCluster.start({}, (dir) => lifeline.trackPostgres(dir));
      cleanup.push(() => cluster.destroy());
      databaseUrl = cluster.url;
      say(`database: throwaway PostgreSQL on 127.0.0.1:${cluster.port}`);
    }
    throwIfAborted(options.signal);

    // --- the system under test ---
    const tokenSecret = randomBytes(24).toString('base64url');
    const apis = await startApiProcesses(experiment, databaseUrl, tokenSecret, cpus?.api);
    say(`api: ${apis.length} process${apis.length > 1 ? 'es' : ''} (${apis.map((a) => a.url).join(', ')}), pool ${experiment.spec.target.dbPoolSize} each` +
      (cpus ? `; on CPU ${formatCpuList(cpus.api)}, everything else on CPU ${formatCpuList(cpus.rest)}` : ''));
    await prepareDatabase(databaseUrl, experiment, say);
    throwIfAborted(options.signal);

    // --- monitoring ---
    const exporters = await startExporters(databaseUrl, (line) => say(`warning: ${line}`));
    // Prometheus starts after the exporter it scrapes: its pid joins the list then.
    const monitoring = pidsOf(exporters.map((e) => e.process.pid));
    const databasePid = localListener(databaseUrl);
    const processCpu = await ProcessCpuExporter.start({
      api: { pids: () => pidsOf(apis.map((a) => a.process.pid)) },
      ...(databasePid !== undefined ? { database: { pids: () => [databasePid] } } : {}),
      generator: { pids: () => [process.pid], ownOnly: true },
      monitoring: { pids: () => monitoring },
    }, () => apis.flatMap((a) => (a.process.pid !== undefined ? [{ address: `127.0.0.1:${a.port}`, pid: a.process.pid }] : [])));
    cleanup.push(() => processCpu.stop());
    const driverPort = await freePort();
    // The labels a cluster's PodMonitors give the same series (namespace, experiment="<namespace>/<name>"),
    // so the Grafana dashboard (its variables too) and any query written for a cluster work on a
    // local run.
    const namespace = experiment.metadata.namespace ?? 'default';
    const experimentLabel = `${namespace}/${name}`;
    const labels = { namespace, experiment: experimentLabel, run: runId };
    const prometheus = await LocalPrometheus.start({
      jobs: [
        { job: 'api', targets: apis.map((a) => `127.0.0.1:${a.port}`) },
        { job: DRIVER_JOB, targets: [`127.0.0.1:${driverPort}`] },
        ...exporters.map((e) => ({ job: e.job, targets: [e.address] })),
        { job: 'processes', targets: [processCpu.address] },
      ],
      labels,
      scrapeIntervalS,
      ...(remote ? { remoteWriteUrl: remote.remoteWriteUrl } : {}),
    });
    cleanup.push(() => prometheus.stop());
    monitoring.push(...pidsOf([prometheus.pid]));
    const prometheusUrl = remote?.queryUrl ?? prometheus.url;
    say(remote ? `prometheus: ${prometheusUrl} (PROMETHEUS_URL; a local agent scrapes every ${scrapeIntervalS} s and remote-writes there)` : `prometheus: ${prometheusUrl} (scraping every ${scrapeIntervalS} s)`);

    // --- the live view (--ui) ---
    let latest: ProgressSnapshot | undefined;
    const selector = `experiment="${promString(experimentLabel)}",run="${promString(runId)}"`;
    let live: LiveView | undefined;
    if (options.ui) {
      live = await LiveView.start({
        title: `loadlab run ${name} (live)`, prometheusUrl, selector, stepS: scrapeIntervalS, rateWindowS: defaultRateWindowS(scrapeIntervalS, scrapeIntervalS),
        slo: toSlo(experiment.spec.slo), progress: () => (latest ? { snapshot: latest, phase: phaseName(latest.phase) } : undefined),
        ...(options.ui.port !== undefined ? { port: options.ui.port } : {}),
      });
      const view = live;
      cleanup.push(() => view.stop());
      say(`live view: ${view.url} (until the run ends)`);
      options.ui.onLiveView?.(view);
    }

    // --- the load ---
    const phaseName = (phase: number) => phaseLabel(plan, phase);
    const view = new ProgressView(out, { experiment: name, totalS: plan.durationS, phaseName });
    const harness = new HarnessMeter([
      { name: 'prometheus', pid: prometheus.pid },
      ...exporters.map((e) => ({ name: e.process.name, pid: e.process.pid })),
    ], () => view.cpuSeconds);
    let startupMs: number | undefined;
    const drive = (phaseRange: { from: number; to: number }) =>
      runDriver({
        experiment,
        plan,
        baseUrls: apis.map((a) => a.url),
        tokenSecret,
        metricsPort: driverPort,
        phaseRange,
        // The same knob as k6's maxVUs: how many requests the generator may have in flight.
        ...(experiment.spec.generator.maxVUs !== undefined ? { maxInFlight: experiment.spec.generator.maxVUs } : {}),
        // The driver keeps its metrics up a little after each run, for Prometheus' last scrape (the
        // next step of a search takes the port over).
        metricsLingerMs: (scrapeIntervalS * 6 + 5) * 1000,
        onReady: () => {
          startupMs ??= Date.now() - started;
          live?.loadStarted(Date.now() / 1000);
        },
        onProgress: (s: ProgressSnapshot) => {
          latest = { ...s, elapsedS: plan.phases[phaseRange.from]!.startS + s.elapsedS };
          view.update(latest);
        },
        ...(options.signal ? { signal: options.signal } : {}),
      });
    const results: DriverResult[] = [];
    // The analysis over what has run so far, once Prometheus has the last run's final counts.
    const analyse = async () => {
      // Each run of the driver counts from zero: the last one's total is what must have landed.
      const responses = Object.values(results.at(-1)!.totals.responses).reduce((n, count) => n + count, 0);
      await waitForFinalScrape(prometheusUrl, selector, responses, scrapeIntervalS + (remote ? REMOTE_WRITE_DELAY_S : 0));
      throwIfAborted(options.signal);
      await options.beforeAnalysis?.({ prometheusUrl, prometheusPid: prometheus.pid });
      const ran = results.flatMap((r) => r.timeline.filter((p) => p.startUnixS !== undefined && p.endUnixS !== undefined) as { index: number; startUnixS: number; endUnixS: number }[]);
      return whilePrometheusAnswers(
        () => analyzeRun({
          prometheus: prometheusUrl,
          selector,
          timeline: timelineFromRun(plan, ran),
          slo: experiment.spec.slo,
          thresholds: experiment.spec.analysis?.thresholds,
          source: 'local',
          step: scrapeIntervalS,
          scrapeIntervalS,
        }),
        // Ours died: start it again on its data (PROMETHEUS_URL's is not ours to restart).
        remote ? undefined : prometheus,
        say,
        options.signal,
      );
    };
    let analysis: AnalysisResult | undefined;
    if (plan.source === 'search') {
      // One step at a time, judged by the same analysis as the verdict (its hold only: a ramp's
      // transients, such as the login burst of the devices joining, never stop a search) before
      // the next step starts, as the operator does between TestRuns.
      await searchStepByStep(new Set(plan.phases.map((p) => p.step)).size, {
        run: async (step) => {
          const result = await drive(phaseRangeOfStep(plan, step));
          results.push(result);
          return result.aborted ? 'aborted' : 'ran';
        },
        judge: async () => {
          analysis = await analyse();
          return stepOutcome(analysis.breakingPoint.status);
        },
        stopped: (step) => {
          view.finish();
          say(`step ${step + 1} broke the SLO: stopping the search`);
        },
      });
    } else {
      results.push(await drive({ from: 0, to: plan.phases.length }));
    }
    view.finish();
    const harnessCpu = harness.stop();
    throwIfAborted(options.signal);

    // --- the analysis (a search's was made after its last step) ---
    if (!analysis) {
      say('analysing the run from Prometheus ...');
      analysis = await analyse();
    }
    await options.inspect?.({ prometheusUrl, apiUrls: apis.map((a) => a.url), databaseUrl, runId, analysis });
    await writeReport(outDir, experiment, analysis, results, runId);
    if (live) await live.finish(`The run ended. ${analysis.verdict.text} Report: ${join(outDir, 'report.html')}`);
    printSummary(say, analysis, results, outDir, harnessCpu, startupMs);
    return { experiment, driver: results, analysis, outDir, startupMs: startupMs ?? NaN, runId, harness: harnessCpu };
  } finally {
    await ManagedProcess.stopAll();
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    lifeline.end();
  }
}

function pidsOf(pids: readonly (number | undefined)[]): number[] {
  return pids.filter((pid): pid is number => pid !== undefined);
}

/** How long the analysis waits for a Prometheus that does not answer before the run fails. */
const PROMETHEUS_PATIENCE_MS = 120_000;

/**
 * Runs `analysis`, retrying while Prometheus does not answer (unreachable, 5xx, timeouts), with
 * backoff from 1 s doubling to 10 s, for PROMETHEUS_PATIENCE_MS at most; says so on the output.
 * A Prometheus of ours that has exited is started again first. Other errors are not retried.
 */
export async function whilePrometheusAnswers<T>(analysis: () => Promise<T>, own: LocalPrometheus | undefined, say: (line: string) => void, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + PROMETHEUS_PATIENCE_MS;
  for (let delayMs = 1000; ; delayMs = Math.min(10_000, delayMs * 2)) {
    try {
      return await analysis();
    } catch (error) {
      if (!(error instanceof RetryableError) || Date.now() + delayMs > deadline) throw error;
      throwIfAborted(signal);
      if (own && !own.isRunning) {
        say(`prometheus: it exited (${error.message}); starting it again on its data`);
        await own.restart();
        continue;
      }
      say(`prometheus: ${error.message}; retrying the analysis in ${delayMs / 1000} s (for ${PROMETHEUS_PATIENCE_MS / 1000} s at most)`);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** The process serving a database on this machine (its postmaster), to count its CPU; undefined when remote or not found. */
function localListener(databaseUrl: string): number | undefined {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  if (!['127.0.0.1', 'localhost', '[::1]', '::1', ''].includes(url.hostname)) return undefined;
  return listeningPid(Number(url.port || 5432));
}

/** The local agent's batch deadline (1 s) plus the time to send: how much later a sample lands in PROMETHEUS_URL. */
const REMOTE_WRITE_DELAY_S = 2;

/**
 * The analysis must see the run's final counts: waits until Prometheus has scraped the driver's last
 * count of responses (the driver keeps serving its metrics for a while after the run), then one more
 * scrape interval, so every other target (the API's counters were final before its last response
 * left) has been scraped after the end too. `metric` is the name the driver's response counter is
 * stored under (a cluster-shaped Prometheus may present it under k6's name).
 */
export async function waitForFinalScrape(prometheusUrl: string, selector: string, responses: number, scrapeIntervalS: number, metric = 'loadlab_driver_responses_total'): Promise<void> {
  const query = encodeURIComponent(`sum(${metric}{${selector}})`);
  const deadline = Date.now() + (scrapeIntervalS * 3 + 2) * 1000;
  while (Date.now() < deadline) {
    const body = (await fetch(`${prometheusUrl}/api/v1/query?query=${query}`).then((r) => r.json(), () => undefined)) as { data?: { result?: { value: [number, string] }[] } } | undefined;
    if (Number(body?.data?.result?.[0]?.value[1]) >= responses) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, (scrapeIntervalS + 0.5) * 1000));
}

/**
 * A breaking-point search one step at a time: run a step, judge it, then go on or stop as the
 * search policy says (traffic/search-policy.ts, the operator's rule too). Resolves with the steps
 * that ran.
 */
export async function searchStepByStep(
  steps: number,
  step: { run(step: number): Promise<'ran' | 'aborted'>; judge(step: number): Promise<StepOutcome>; stopped?(step: number): void },
): Promise<number[]> {
  const ran: number[] = [];
  for (let next = 0; ; ) {
    ran.push(next);
    if ((await step.run(next)) === 'aborted') return ran;
    const decision = afterSearchStep(next, steps, await step.judge(next));
    if (decision.action === 'stop') {
      if (decision.reason === 'broke') step.stopped?.(next);
      return ran;
    }
    next = decision.step;
  }
}

export async function readExperiment(file: string): Promise<LoadExperiment> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InvalidInputError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  const parsed = parseExperiment(text, file);
  if (!parsed.ok) throw new InvalidInputError(`${file} is not a valid LoadExperiment:\n${formatErrors(parsed.errors)}`);
  return parsed.experiment;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Error('interrupted');
}

async function writeReport(outDir: string, experiment: LoadExperiment, analysis: AnalysisResult, results: DriverResult[], runId: string): Promise<void> {
  await writeReportFiles(outDir, analysis, {
    title: `loadlab run ${experiment.metadata.name}`,
    label: `${experiment.metadata.name} run ${runId}`,
    extra: { driver: results.map(({ endpoints, totals, timeline, cpuSeconds, maxLagS, sendLagP99Ms }) => ({ endpoints, totals, timeline, cpuSeconds, maxLagS, sendLagP99Ms })) },
  });
}

/** The driver's CPU over its runs, in % of one core and µs per request sent. */
export function formatGeneratorCpu(results: readonly DriverResult[]): string {
  const cpuS = results.reduce((sum, r) => sum + r.cpuSeconds, 0);
  const wallS = results.reduce((sum, r) => sum + (r.endUnixS - r.startUnixS), 0);
  const sent = results.reduce((sum, r) => sum + r.totals.sent, 0);
  const lagP99 = Math.max(0, ...results.map((r) => r.sendLagP99Ms));
  const perRequest = sent > 0 ? `, ${Math.round((cpuS / sent) * 1e6)} µs per request` : '';
  return `${wallS > 0 ? ((cpuS / wallS) * 100).toFixed(1) : '0.0'} % of one core${perRequest}; p99 send lag ${lagP99.toFixed(1)} ms`;
}

function printSummary(say: (line: string) => void, analysis: AnalysisResult, results: DriverResult[], outDir: string, harness: HarnessCpu, startupMs: number | undefined): void {
  const sent = results.reduce((n, r) => n + r.totals.sent, 0);
  const errors = results.reduce((n, r) => n + r.totals.errors, 0);
  const dropped = results.reduce((n, r) => n + r.totals.dropped, 0);
  say('');
  say(textTable(stagesTable(analysis)).join('\n'));
  say('');
  say(`requests: ${sent.toLocaleString('en')} sent, ${errors.toLocaleString('en')} errors, ${dropped.toLocaleString('en')} dropped by the driver`);
  say(`start-up to the first request: ${startupMs === undefined ? '-' : `${(startupMs / 1000).toFixed(1)} s`}; harness CPU while the load ran: ${formatHarnessCpu(harness)}`);
  say(`load generator: ${formatGeneratorCpu(results)}`);
  const evidence = evidenceTable(analysis);
  if (evidence.rows.length > 0) {
    say('');
    say(textTable(evidence).join('\n'));
  }
  say('');
  say(`verdict: ${analysis.verdict.text}`);
  say(`report: ${join(outDir, 'report.html')} (also report.md, series.csv, summary.json)`);
}
