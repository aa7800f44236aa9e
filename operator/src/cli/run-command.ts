import { parseArgs } from 'node:util';
import { MissingBinaryError } from '../local/binaries.js';
import { InvalidInputError, readExperiment, runLocal, type LocalRunOptions } from '../local/local-run.js';
import { runScalingStudy } from '../local/scaling-run.js';
import { DEFAULT_POLICY, DEFAULT_POLICY_NOTE, loadProblems } from '../controller/policy.js';
import { EXIT, type Io } from './io.js';
import { sloGate } from '../analysis/slo-gate.js';
import { parseCpuList, splitCpus } from '../local/cpu-affinity.js';

export const RUN_USAGE = `Usage: loadlab run <experiment.yaml> [options]

Runs an experiment on this machine: a PostgreSQL (DATABASE_URL, or a throwaway cluster from the
machine's PostgreSQL binaries), target.replicas API processes with the experiment's knobs,
postgres_exporter and node_exporter when installed, a Prometheus that scrapes them all, and the
local load driver (in this process). Then it analyses the run from Prometheus, prints the summary
and writes the report. Everything it started is stopped when it ends, Ctrl-C included.

With spec.scaling (a scaling study) it does all of that once per replica count, in order, each
run's report under <out>/replicas-<n>/, then fits the Universal Scalability Law to the capacities
and writes scaling.html, scaling.md and scaling.json in <out> (default
loadlab-runs/<name>-scaling-<time>).

Options:
  --out DIR              where the report goes (default loadlab-runs/<name>-<time>)
  --scrape-interval S    Prometheus scrape interval in seconds (default 2)
  --api-cpus LIST        run the API processes on these CPUs (e.g. 0, or 0-1) and everything else
                         the run starts (the driver, PostgreSQL, Prometheus, exporters) on the
                         others: what to try when the verdict is host-cpu (needs taskset)
  --min-devices N        for a search: the SLO gate fails (exit 99) when the fleet the API held
                         is below N devices (overrides spec.slo.minDevices)
  --ui                   a live page on 127.0.0.1 (its address printed): the run's charts over
                         time and a per-endpoint table, updated every 2 s; it stops with the run
  --ui-port PORT         the live page on this port (implies --ui; in a scaling study each run
                         serves it in turn: reload the page for the next run)
  -h, --help             this help

Environment:
  DATABASE_URL           use this PostgreSQL instead of a throwaway one (its tables are reset
                         when spec.database.mode is reset)
  PROMETHEUS_URL         analyse from this Prometheus instead of one of loadlab's own; it must run
                         with --web.enable-remote-write-receiver: a local Prometheus agent scrapes
                         the run's processes and forwards their samples there

Exit status (the SLO gate, k6's convention for a failed threshold):
  0    the SLO was met: every judged stage held; for a search, the fleet it held is at least
       --min-devices (or spec.slo.minDevices; with neither, any breaking point passes). Also 0
       when nothing could be judged (the output says so)
  99   the SLO broke: a stage broke it, or a search held less than its floor (not for a scaling
       study: each count is pushed until it breaks; the study is its result)
  1    it could not run; 2 invalid input; 130 interrupted`;

export async function run(args: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { out: { type: 'string' }, 'scrape-interval': { type: 'string' }, 'api-cpus': { type: 'string' }, 'min-devices': { type: 'string' }, ui: { type: 'boolean' }, 'ui-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    io.stderr(`loadlab run: ${(error as Error).message}\n\n${RUN_USAGE}\n`);
    return EXIT.invalid;
  }
  if (parsed.values.help) {
    io.stdout(`${RUN_USAGE}\n`);
    return EXIT.ok;
  }
  const [file, ...extra] = parsed.positionals;
  if (!file || extra.length > 0) {
    io.stderr(`loadlab run: give exactly one experiment file\n\n${RUN_USAGE}\n`);
    return EXIT.invalid;
  }
  const scrape = parsed.values['scrape-interval'];
  const scrapeIntervalS = scrape === undefined ? undefined : Number(scrape);
  if (scrapeIntervalS !== undefined && !(scrapeIntervalS >= 1 && scrapeIntervalS <= 60)) {
    io.stderr('loadlab run: --scrape-interval must be a number of seconds from 1 to 60\n');
    return EXIT.invalid;
  }
  const floor = parsed.values['min-devices'];
  const minDevices = floor === undefined ? undefined : Number(floor);
  if (minDevices !== undefined && !(Number.isSafeInteger(minDevices) && minDevices >= 1)) {
    io.stderr('loadlab run: --min-devices must be a whole number of devices, at least 1\n');
    return EXIT.invalid;
  }
  const uiPortText = parsed.values['ui-port'];
  const uiPort = uiPortText === undefined ? undefined : Number(uiPortText);
  if (uiPort !== undefined && !(Number.isInteger(uiPort) && uiPort >= 1 && uiPort <= 65535)) {
    io.stderr('loadlab run: --ui-port must be a TCP port from 1 to 65535\n');
    return EXIT.invalid;
  }
  const ui = parsed.values.ui || uiPort !== undefined ? (uiPort !== undefined ? { port: uiPort } : {}) : undefined;
  let apiCpus: number[] | undefined;
  try {
    apiCpus = parsed.values['api-cpus'] === undefined ? undefined : splitCpus(parseCpuList(parsed.values['api-cpus'])).api;
  } catch (error) {
    io.stderr(`loadlab run: --api-cpus: ${(error as Error).message.replace(/^--api-cpus:? /, '')}\n`);
    return EXIT.invalid;
  }

  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) return;
    io.stderr('\nloadlab run: interrupted; stopping everything it started ...\n');
    abort.abort();
  };
  // SIGHUP: the terminal went away; the run stops as for Ctrl-C (a SIGKILL is the watchdog's, lifeline.ts).
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const name of signals) process.on(name, onSignal);
  try {
    const { DATABASE_URL: databaseUrl, PROMETHEUS_URL: prometheusUrl } = io.env;
    const experiment = await readExperiment(file);
    const options: LocalRunOptions = {
      file,
      experiment,
      refuse: (checked, plan) => loadProblems(checked, plan, DEFAULT_POLICY).map((problem) => `${problem} (${DEFAULT_POLICY_NOTE})`),
      ...(parsed.values.out ? { outDir: parsed.values.out } : {}),
      ...(databaseUrl ? { databaseUrl } : {}),
      ...(prometheusUrl ? { prometheusUrl } : {}),
      ...(scrapeIntervalS !== undefined ? { scrapeIntervalS } : {}),
      ...(apiCpus ? { apiCpus } : {}),
      ...(ui ? { ui } : {}),
      signal: abort.signal,
    };
    if (experiment.spec.scaling) {
      // A study, not a gate: each count is expected to break somewhere; where is the result.
      await runScalingStudy(experiment, options);
      return abort.signal.aborted ? 130 : EXIT.ok;
    }
    const { analysis } = await runLocal(options);
    if (abort.signal.aborted) return 130;
    const gate = sloGate(analysis.breakingPoint, experiment.spec.load.search ? 'search' : 'stages', minDevices ?? experiment.spec.slo.minDevices);
    io.stdout(`slo: ${gate.outcome === 'met' ? 'MET' : gate.outcome === 'broken' ? 'BROKEN' : 'NOT JUDGED'}: ${gate.message}\n`);
    return gate.outcome === 'broken' ? EXIT.sloBroken : EXIT.ok;
  } catch (error) {
    if (abort.signal.aborted) {
      io.stderr('loadlab run: interrupted; everything it started was stopped\n');
      return 130;
    }
    if (error instanceof InvalidInputError) {
      io.stderr(`loadlab run: ${error.message}\n`);
      return EXIT.invalid;
    }
    const message = error instanceof MissingBinaryError ? error.message : error instanceof Error ? error.message : String(error);
    io.stderr(`loadlab run: could not run the experiment: ${message}\n`);
    return EXIT.unreadable;
  } finally {
    for (const name of signals) process.off(name, onSignal);
  }
}
