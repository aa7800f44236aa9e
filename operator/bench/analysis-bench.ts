/**
 * How long the analysis of a long run takes against a REAL Prometheus, and how many queries it makes.
 *
 *   npm run bench:analysis [-- --runs=5 --replicas=3 --kind=db-pool]
 *
 * The target (issue 4): a one-hour run with 20 steps at 15 s resolution analysed in under 2 s with
 * fewer than 50 Prometheus queries. The test suite checks the query count against a fake
 * Prometheus; this script measures the time on the real one:
 *   1. it writes one hour of raw series, as the run's processes would have exposed them and a
 *      15 s scrape would have stored them (API replicas with their request, pool, query, event-loop
 *      and GC metrics, the local driver, postgres_exporter, node_exporter; values from the same
 *      queueing model as the analysis tests, a 20-step search that breaks part-way), as OpenMetrics;
 *   2. `promtool tsdb create-blocks-from openmetrics` turns them into TSDB blocks, and a Prometheus
 *      (the Debian package) is started on them;
 *   3. it runs the whole analysis (analyzeRun, local catalog, 15 s step) `--runs` times after one
 *      warm-up, and as the baseline, in the same run, the same range queries alone (fetched and
 *      parsed, four at a time as the analysis does, no analysis): the analysis' own share.
 * It prints the figures and the ratios (median analysis time / 2 s target; / baseline), plus the
 * verdict, which must name the modelled bottleneck (a check that the data means what it should).
 * A benchmark, not a test: exit 0 whatever the figures; non-zero only when it could not run.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { analyzeRun, buildCatalog, defaultRateWindowS, isMissing, PrometheusClient, type TimelineStage } from '../src/analysis/index.js';
import { requireBinary } from '../src/local/binaries.js';
import { freePort } from '@loadlab/sandbox/postgres';
import { ManagedProcess } from '../src/local/processes.js';
import { PROMETHEUS_HOW_TO } from '../src/local/prometheus.js';
import { API_BUCKETS, PER_DEVICE_RPS, searchTimeline, stateAt, type Scenario, type ScenarioKind } from '../test/fixtures/analysis/synthetic-run.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, replicas: { type: 'string', default: '3' }, kind: { type: 'string', default: 'db-pool' } },
});
const RUNS = Number(args.runs);
const REPLICAS = Number(args.replicas);
const KIND = args.kind as ScenarioKind;
const SCRAPE_S = 15;
const STEPS = 20;
const TARGET_MS = 2000;
const SELECTOR = 'experiment="default/analysis-bench",run="r1"';

type Labels = Record<string, string>;
type State = ReturnType<typeof stateAt>;

/** One series to write: a gauge's value, or a counter's rate (integrated over the scrapes). */
interface SeriesSpec {
  name: string;
  labels: Labels;
  kind: 'gauge' | 'counter';
  value: (s: State) => number;
}

/** The share of requests answered within `le` seconds, latency exponential with mean `meanS`. */
const within = (le: number, meanS: number) => (le === Infinity ? 1 : 1 - Math.exp(-le / meanS));

function histogram(name: string, labels: Labels, bounds: readonly number[], rate: (s: State) => number, meanS: (s: State) => number): SeriesSpec[] {
  return [
    ...[...bounds, Infinity].map((le): SeriesSpec => ({
      name: `${name}_bucket`, labels: { ...labels, le: le === Infinity ? '+Inf' : String(le) }, kind: 'counter',
      value: (s) => rate(s) * within(le, meanS(s)),
    })),
    { name: `${name}_count`, labels, kind: 'counter', value: rate },
    { name: `${name}_sum`, labels, kind: 'counter', value: (s) => rate(s) * meanS(s) },
  ];
}

/** Every raw series of the run: what the processes expose, with the run's labels. */
function seriesOfRun(scenario: Scenario): SeriesSpec[] {
  const run = { experiment: 'default/analysis-bench', run: 'r1' };
  const cpuBound = scenario.kind === 'api-cpu';
  const share = 1 / REPLICAS;
  const specs: SeriesSpec[] = [];
  for (let replica = 0; replica < REPLICAS; replica++) {
    const api = { ...run, job: 'api', instance: `127.0.0.1:${3001 + replica}` };
    for (const [route, method, ok] of [['/v1/measurements', 'POST', '201'], ['/v1/command', 'GET', '200']] as const) {
      specs.push(...histogram('loadlab_api_http_request_duration_seconds', { ...api, route, method, status: ok }, API_BUCKETS, (s) => (s.served / 2) * share, (s) => s.serverMeanS));
      specs.push(...histogram('loadlab_api_http_request_duration_seconds', { ...api, route, method, status: '503' }, API_BUCKETS, (s) => (s.failed / 2) * share, () => 0.002));
    }
    specs.push(...histogram('loadlab_api_http_request_duration_seconds', { ...api, route: '/metrics', method: 'GET', status: '200' }, API_BUCKETS, () => 1 / SCRAPE_S, () => 0.002));
    specs.push(
      { name: 'loadlab_api_http_requests_in_flight', labels: api, kind: 'gauge', value: (s) => s.sent * s.serverMeanS * share },
      { name: 'loadlab_api_http_requests_shed_total', labels: { ...api, reason: 'in_flight' }, kind: 'counter', value: (s) => s.failed * share },
      { name: 'loadlab_api_measurements_ingested_total', labels: api, kind: 'counter', value: (s) => (s.served / 2) * share },
      { name: 'process_cpu_seconds_total', labels: api, kind: 'counter', value: (s) => (cpuBound ? Math.min(1, 0.05 + 0.95 * s.rho) : 0.1 + 0.2 * s.rho) },
      { name: 'loadlab_api_event_loop_active_seconds_total', labels: api, kind: 'counter', value: (s) => (cpuBound ? Math.min(0.995, s.rho) : 0.15 + 0.2 * s.rho) },
      { name: 'nodejs_eventloop_lag_p99_seconds', labels: api, kind: 'gauge', value: (s) => (cpuBound && s.rho > 0.9 ? 0.15 : 0.004) },
      { name: 'loadlab_api_db_pool_max', labels: api, kind: 'gauge', value: () => 10 },
      { name: 'loadlab_api_db_pool_connections', labels: api, kind: 'gauge', value: () => 10 },
      { name: 'loadlab_api_db_pool_idle', labels: api, kind: 'gauge', value: (s) => 10 * (1 - Math.min(1, 0.1 + s.rho)) },
      { name: 'loadlab_api_db_pool_waiting', labels: api, kind: 'gauge', value: (s) => s.waiting * share },
      { name: 'nodejs_heap_size_used_bytes', labels: api, kind: 'gauge', value: () => 8e7 },
      { name: 'nodejs_heap_size_total_bytes', labels: api, kind: 'gauge', value: () => 1.3e8 },
      ...['minor', 'major', 'incremental', 'weakcb'].map((kind): SeriesSpec => ({ name: 'nodejs_gc_duration_seconds_sum', labels: { ...api, kind }, kind: 'counter', value: () => 0.005 })),
      ...histogram('loadlab_api_db_pool_acquire_seconds', api, API_BUCKETS, (s) => s.served * share, (s) => s.acquireMeanS),
    );
    for (const query of ['insert_measurements', 'next_command']) {
      specs.push(...histogram('loadlab_api_db_query_duration_seconds', { ...api, query, outcome: 'ok' }, API_BUCKETS, (s) => (s.served / 2) * share, (s) => s.holdS + s.acquireMeanS));
    }
  }
  const driver = { ...run, job: 'driver', instance: '127.0.0.1:4000' };
  for (const [endpoint, ok] of [['measurements', '201'], ['command', '200']] as const) {
    const labels = { ...driver, endpoint };
    specs.push(
      { name: 'loadlab_driver_requests_offered_total', labels, kind: 'counter', value: (s) => s.offered / 2 },
      { name: 'loadlab_driver_requests_sent_total', labels, kind: 'counter', value: (s) => s.sent / 2 },
      { name: 'loadlab_driver_requests_dropped_total', labels, kind: 'counter', value: (s) => s.dropped / 2 },
      { name: 'loadlab_driver_requests_late_total', labels, kind: 'counter', value: (s) => (s.dropped > 0 ? s.sent * 0.15 : 0) },
      { name: 'loadlab_driver_responses_total', labels: { ...labels, code: ok }, kind: 'counter', value: (s) => s.served / 2 },
      { name: 'loadlab_driver_responses_total', labels: { ...labels, code: '503' }, kind: 'counter', value: (s) => s.failed / 2 },
      ...histogram('loadlab_driver_request_duration_seconds', labels, API_BUCKETS, (s) => s.sent / 2, (s) => s.clientMeanS),
    );
  }
  specs.push(
    { name: 'loadlab_driver_schedule_lag_seconds', labels: driver, kind: 'gauge', value: (s) => (s.dropped > 0 ? 2 : 0.001) },
    { name: 'loadlab_driver_fleet_devices', labels: driver, kind: 'gauge', value: (s) => s.fleet },
    { name: 'process_cpu_seconds_total', labels: driver, kind: 'counter', value: () => 0.25 },
  );
  const postgres = { ...run, job: 'postgres', instance: '127.0.0.1:9187', datname: 'loadlab' };
  specs.push(
    { name: 'pg_settings_max_connections', labels: { ...run, job: 'postgres', instance: postgres.instance }, kind: 'gauge', value: () => 200 },
    { name: 'pg_stat_database_numbackends', labels: postgres, kind: 'gauge', value: () => 10 * REPLICAS + 2 },
    { name: 'pg_stat_database_xact_commit', labels: postgres, kind: 'counter', value: (s) => s.served / 2 },
    { name: 'pg_stat_database_blks_hit', labels: postgres, kind: 'counter', value: (s) => s.served * 20 },
    { name: 'pg_stat_database_blks_read', labels: postgres, kind: 'counter', value: (s) => s.served * 0.2 },
    { name: 'pg_stat_database_deadlocks', labels: postgres, kind: 'counter', value: () => 0 },
    ...['active', 'idle', 'idle in transaction'].flatMap((state): SeriesSpec[] => [
      { name: 'pg_stat_activity_count', labels: { ...postgres, state }, kind: 'gauge', value: (s) => (state === 'active' ? 1 + 9 * s.rho : 5) },
      { name: 'pg_stat_activity_max_tx_duration', labels: { ...postgres, state }, kind: 'gauge', value: (s) => (state === 'active' ? s.holdS * 2 : 0) },
    ]),
    ...['accesssharelock', 'rowexclusivelock', 'exclusivelock'].map((mode): SeriesSpec => ({ name: 'pg_locks_count', labels: { ...postgres, mode }, kind: 'gauge', value: () => 3 })),
  );
  const node = { ...run, job: 'node', instance: '127.0.0.1:9100' };
  for (const cpu of ['0', '1']) {
    specs.push(
      { name: 'node_cpu_seconds_total', labels: { ...node, cpu, mode: 'idle' }, kind: 'counter', value: (s) => 1 - (0.35 + 0.3 * s.rho) },
      { name: 'node_cpu_seconds_total', labels: { ...node, cpu, mode: 'user' }, kind: 'counter', value: (s) => 0.8 * (0.35 + 0.3 * s.rho) },
      { name: 'node_cpu_seconds_total', labels: { ...node, cpu, mode: 'system' }, kind: 'counter', value: (s) => 0.2 * (0.35 + 0.3 * s.rho) },
    );
  }
  return specs;
}

const labelText = (labels: Labels) => `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;

/** OpenMetrics text, one family after another, each series' samples in time order. */
async function writeOpenMetrics(file: string, specs: SeriesSpec[], states: { t: number; s: State }[]): Promise<number> {
  const out = createWriteStream(file);
  const write = (text: string) => (out.write(text) ? Promise.resolve() : new Promise<void>((resolve) => out.once('drain', () => resolve())));
  const byName = new Map<string, SeriesSpec[]>();
  for (const spec of specs) byName.set(spec.name, [...(byName.get(spec.name) ?? []), spec]);
  let samples = 0;
  for (const [name, family] of byName) {
    for (const spec of family) {
      const prefix = `${name}${labelText(spec.labels)} `;
      let total = 0;
      const lines: string[] = [];
      for (const { t, s } of states) {
        const value = spec.value(s);
        total = spec.kind === 'counter' ? total + value * SCRAPE_S : value;
        lines.push(`${prefix}${Number.isFinite(total) ? total : 0} ${t}\n`);
      }
      samples += lines.length;
      await write(lines.join(''));
    }
  }
  await write('# EOF\n');
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return samples;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (n: number, digits = 0) => n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const prometheusBinary = requireBinary('prometheus', PROMETHEUS_HOW_TO);
  const promtool = requireBinary('promtool', PROMETHEUS_HOW_TO);
  const dir = await mkdtemp(join(tmpdir(), 'loadlab-analysis-bench-'));
  try {
    // One hour, ending five minutes ago (whole 15 s scrapes), as a finished run would be.
    const endS = Math.floor((Date.now() / 1000 - 300) / SCRAPE_S) * SCRAPE_S;
    const startS = endS - 3600;
    const timeline: TimelineStage[] = searchTimeline(startS, STEPS, 30, 150, 500);
    // Capacity between steps 12 and 13 (400 and 433 req/s offered): the search breaks part-way.
    const scenario: Scenario = { kind: KIND, source: 'local', capacityRps: 12.5 * 500 * PER_DEVICE_RPS };
    const states = [];
    for (let t = startS - 60; t <= endS + 60; t += SCRAPE_S) states.push({ t, s: stateAt(scenario, timeline, t) });
    const specs = seriesOfRun(scenario);
    const input = join(dir, 'run.om');
    let started = performance.now();
    const samples = await writeOpenMetrics(input, specs, states);
    console.log(`wrote ${fmt(specs.length)} series x ${states.length} scrapes = ${fmt(samples)} samples (${STEPS} steps, ${REPLICAS} API replicas, scenario ${KIND}) in ${fmt(performance.now() - started)} ms`);
    started = performance.now();
    await promisify(execFile)(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', input, join(dir, 'data')], { maxBuffer: 16 << 20 });
    console.log(`promtool: TSDB blocks in ${fmt(performance.now() - started)} ms`);

    const port = await freePort();
    await writeFile(join(dir, 'prometheus.yml'), 'global: {scrape_interval: 15s}\n');
    const prometheus = ManagedProcess.start('prometheus', prometheusBinary, [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--storage.tsdb.retention.time=30d',
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
    ]);
    const url = `http://127.0.0.1:${port}`;
    await prometheus.waitForHttp(`${url}/-/ready`, 30_000);
    console.log(`prometheus ${url} on the blocks; analysing ${new Date(startS * 1000).toISOString()} .. ${new Date(endS * 1000).toISOString()} at ${SCRAPE_S} s\n`);

    const slo = { latencyPercentile: 95, latencyThreshold: '250ms', maxErrorRate: 0.01 };
    const analyse = () => analyzeRun({ prometheus: url, selector: SELECTOR, timeline, slo, source: 'local', step: SCRAPE_S, scrapeIntervalS: SCRAPE_S });
    // The baseline: the same range queries, four at a time, fetched and parsed, nothing else.
    const catalog = buildCatalog({ selector: SELECTOR, source: 'local', rateWindowS: defaultRateWindowS(SCRAPE_S, SCRAPE_S) });
    const queriesOnly = async () => {
      const client = new PrometheusClient({ baseUrl: url, timeoutMs: 30_000 });
      const t0 = performance.now();
      const queue = [...catalog];
      let points = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let query = queue.shift(); query; query = queue.shift()) {
          const series = await client.range(query.promql, timeline[0]!.startUnixS, timeline.at(-1)!.endUnixS, SCRAPE_S);
          if (!isMissing(series)) points += series.reduce((n, s) => n + s.samples.length, 0);
        }
      }));
      return { ms: performance.now() - t0, count: client.queryCount, points };
    };

    const warm = await analyse();
    await queriesOnly();
    const totals: number[] = [];
    const queryWall: number[] = [];
    const analysisOwn: number[] = [];
    const baseline: number[] = [];
    let baselineCount = 0;
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      const result = await analyse();
      totals.push(performance.now() - t0);
      queryWall.push(result.timing.queryWallMs);
      analysisOwn.push(result.timing.analysisMs);
      const only = await queriesOnly();
      baseline.push(only.ms);
      baselineCount = only.count;
      console.log(`run ${run + 1}: analysis ${fmt(totals.at(-1)!)} ms (queries ${fmt(result.timing.queryWallMs)} ms wall, computing ${fmt(result.timing.analysisMs)} ms), ${result.queries.count} queries; queries alone ${fmt(only.ms)} ms`);
    }
    const points = warm.series.reduce((n, s) => n + s.samples.length, 0);
    const total = median(totals);
    console.log('\n================ loadlab analysis benchmark: summary ================');
    console.log(`one-hour run, ${STEPS} steps (ramp + hold each), ${SCRAPE_S} s resolution, real Prometheus (${specs.length} raw series, ${fmt(samples)} samples); ${RUNS} runs after a warm-up`);
    console.log(`queries: ${warm.queries.count} (target < 50), ${warm.series.length} series and ${fmt(points)} points returned`);
    console.log(`analysis, median: ${fmt(total)} ms = ${fmt(total / TARGET_MS, 2)} of the ${TARGET_MS} ms target   ${total < TARGET_MS && warm.queries.count < 50 ? 'PASS' : 'MISS'}`);
    console.log(`  of which Prometheus range queries (wall, 4 at a time) ${fmt(median(queryWall))} ms, the analysis' own computing ${fmt(median(analysisOwn))} ms`);
    console.log(`baseline, same ${baselineCount} range queries alone (fetch + parse): median ${fmt(median(baseline))} ms; analysis / baseline ${fmt(total / median(baseline), 2)}`);
    console.log(`verdict: ${warm.verdict.text}`);
    if (warm.verdict.bottleneck !== KIND) console.log(`WARNING: the modelled bottleneck is ${KIND}, the verdict says ${warm.verdict.bottleneck}: the generated data does not mean what it should`);
  } finally {
    await ManagedProcess.stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`analysis-bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
