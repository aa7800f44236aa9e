// The whole pipeline on the loadlab engine, with nothing synthetic in the numbers: the operator on a
// real kube-apiserver + etcd provisions a LoadExperiment on a real PostgreSQL, creates its driver
// Job, the real `loadlab drive` runs that Job's two pods against the real API, a real Prometheus
// scrapes the API and the drivers with the charts' own PodMonitor relabelling, and the summary the
// operator writes into status is checked against what the drivers, the API and PostgreSQL say
// happened. No k6-operator CRD is installed: the loadlab engine needs none.
//
// What runs for real: kube-apiserver + etcd, the operator (in this process), PostgreSQL (the shared
// database), the API (api/dist, started with the container environment of the operator's
// Deployment), postgres_exporter, Prometheus, and the load driver: the compiled `loadlab` bin, one
// process per Job index, with the Job's own arguments and environment.
//
// What the test stands in for, and how:
// - the kubelet and the Deployment controller: the API process from the Deployment's container env
//   (HOST and PORT excepted: no pod network here), then the Deployment marked available;
// - the Job controller and the kubelet for the driver Job (test/support/driver-pods.ts): one process
//   per completion index from the Job's container args and env, the ConfigMap volume written to a
//   directory, JOB_COMPLETION_INDEX set, each pod's metrics port a free loopback port and the API's
//   Service name resolved to the API's address; the Job's status moved as the Job controller moves
//   it: running once the pods run, Complete once every pod exited 0;
// - Prometheus' pod discovery and prometheus-operator (test/support/pod-discovery.ts): each pod's
//   target carries the labels discovery and prometheus-operator give it (from the Deployment's and
//   the Job's pod templates), then the API and load-generator PodMonitors' own relabelings, read
//   from the synthesized charts/loadlab/40-monitoring.yaml.
// What cannot exist here: cAdvisor and kube-state-metrics series (no kubelet), so the container CPU,
// throttling and memory-limit queries find nothing, as they would in a cluster without them.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { buildCatalog, defaultRateWindowS } from '../src/analysis/index.js';
import { startExporters, type Exporter } from '../src/local/exporters.js';
import { PostgresCluster } from '@loadlab/sandbox/postgres';
import { LocalPrometheus } from '../src/local/prometheus.js';
import {
  DATABASE_METRICS_SELECTOR,
  KubeClient,
  loadKubeConfig,
  Operator,
  resourceSelector,
  RESOURCES,
  runSelector,
  type ExperimentObject,
  type JobObject,
  type KubeObject,
} from '../src/controller/index.js';
import { DRIVER_METRICS_PORT_NAME } from '../src/driver-job/index.js';
import { DRIVER_CONTAINER } from '../src/contract/names.js';
import { markDeploymentAvailable, setJobStatus, waitFor } from './support/stand-ins.js';
import { loadExperimentCrd, loadExperimentSchema, type LoadExperiment } from '../src/schema/index.js';
import { arrivalCounts, buildTrafficPlan } from '../src/traffic/index.js';
import { runApiPod, type ApiDeployment, type ApiPod } from './support/api-pod.js';
import { startDriverPods, type DriverPod } from './support/driver-pods.js';
import { discoveredPod, podMonitorRelabelConfigs, writeTargets } from './support/pod-discovery.js';
import { startPostgres } from './support/postgres.js';
import { ControlPlane } from '@loadlab/sandbox/control-plane';
import { startTestOperator } from './support/operator.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const NS = 'lab';
const NAME = 'drivers';
const SCRAPE_S = 2;
/** 200 devices, each reporting and polling every 2 s: 100 measurements/s and 100 polls/s in the hold, from two driver pods. */
const DEVICES = 200;
const SPEC = {
  fleet: { devices: DEVICES, reportInterval: '2s', pollInterval: '2s' },
  load: { stages: [{ devices: DEVICES, duration: '6s' }, { devices: DEVICES, duration: '30s', shape: 'hold' }] },
  slo: { latencyPercentile: 95, latencyThreshold: '250ms', maxErrorRate: 0.01 },
  generator: { engine: 'loadlab', parallelism: 2 },
  timeout: '5m',
  // Keep the schema, the Deployment and the Job to compare with after the summary.
  cleanup: 'never',
};

let cp: ControlPlane;
let postgres: PostgresCluster;
let postgresExporter: Exporter;
let prometheus: LocalPrometheus;
let operator: Operator | undefined;
let admin: KubeClient;
let workDir: string;
const apiPods: ApiPod[] = [];
const allDriverPods: DriverPod[] = [];
const logs: string[] = [];

const files = () => ({ apiPods: join(workDir, 'api-pods.json'), driverPods: join(workDir, 'driver-pods.json') });
const getExperiment = (name = NAME) => admin.get<ExperimentObject>(RESOURCES.loadExperiments, NS, name);

async function promValue(query: string): Promise<number> {
  const body = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}`)).json()) as { data: { result: { value: [number, string] }[] } };
  const value = body.data.result[0]?.value[1];
  if (value === undefined) throw new Error(`Prometheus has no data for ${query}`);
  return Number(value);
}

async function sql<T>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** What one driver pod reported on its last line: its requests by endpoint and its responses by code. */
function driverReport(pod: DriverPod) {
  const { stdout } = pod.output();
  const done = /loadlab drive: done: sent (\d+) \((\d+) measurements, (\d+) polls, (\d+) logins\); responses ([^;]*); (\d+) errors, (\d+) dropped/.exec(stdout);
  assert.ok(done, `pod ${pod.index} reported its run: ${stdout}`);
  const responses = Object.fromEntries(done[5]!.split(', ').map((entry) => entry.split(': ')).map(([code, count]) => [code!, Number(count)]));
  return { sent: Number(done[1]), measurements: Number(done[2]), polls: Number(done[3]), logins: Number(done[4]), responses, errors: Number(done[6]), dropped: Number(done[7]) };
}

/** Stands in for the kubelet and the Deployment controller: the real API from the operator's Deployment, its target handed to Prometheus as pod discovery would. */
async function actAsKubelet(name = NAME): Promise<{ deployment: ApiDeployment; pod: ApiPod }> {
  const deployment = await waitFor('the API Deployment', () => admin.get<ApiDeployment>(RESOURCES.deployments, NS, `${name}-api`).catch(() => undefined), { timeoutMs: 30_000 });
  const pod = await runApiPod(deployment, admin);
  apiPods.push(pod);
  writeTargets(files().apiPods, [
    discoveredPod({ namespace: NS, name: `${deployment.metadata.name}-0`, labels: deployment.spec.template.metadata.labels, address: `127.0.0.1:${pod.port}`, container: 'api', endpoint: 'http', monitor: 'loadlab-api' }),
  ]);
  await markDeploymentAvailable(admin, NS, deployment.metadata.name);
  return { deployment, pod };
}

/**
 * Stands in for the Job controller and the kubelet: the Job's pods run `loadlab drive` from its own
 * arguments and environment; Prometheus finds them as pod discovery would; the Job's status follows
 * them: running while they run, Complete when every one exited 0 (their metrics' linger included,
 * so Prometheus has their last counts, as in a cluster).
 */
async function actAsJobController(pod: ApiPod, name = NAME): Promise<{ runId: string; job: JobObject & { spec: Record<string, any> }; pods: DriverPod[]; startAt: string }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const running = await waitFor('the driver Job recorded in status', async () => {
    const object = await getExperiment(name);
    return object.status?.timeline?.length ? object : undefined;
  }, { timeoutMs: 30_000 });
  const checkpoint = running.status!.timeline![0]!;
  assert.equal(checkpoint.kind, 'Job');
  const job = await admin.get<JobObject & { spec: Record<string, any> }>(RESOURCES.jobs, NS, checkpoint.name); // eslint-disable-line @typescript-eslint/no-explicit-any
  const configMap = await admin.get<KubeObject & { data: Record<string, string> }>(RESOURCES.configMaps, NS, checkpoint.name);
  const driverPods = await startDriverPods(job as unknown as Parameters<typeof startDriverPods>[0], configMap, { apiUrl: pod.url, workDir, client: admin });
  const podLabels = job.spec.template.metadata.labels as Record<string, string>;
  writeTargets(files().driverPods, driverPods.map((driver) => discoveredPod({
    namespace: NS,
    name: `${job.metadata.name}-${driver.index}-abcde`,
    labels: { ...podLabels, 'job-name': job.metadata.name, 'batch.kubernetes.io/job-completion-index': String(driver.index) },
    address: `127.0.0.1:${driver.metricsPort}`,
    container: DRIVER_CONTAINER,
    endpoint: DRIVER_METRICS_PORT_NAME,
    monitor: 'loadlab-load-generator',
  })));
  allDriverPods.push(...driverPods);
  await setJobStatus(admin, NS, job.metadata.name, 'running');
  const exits = await Promise.all(driverPods.map((driver) => driver.exited));
  exits.forEach((exit, index) => assert.deepEqual(exit, { code: 0, signal: null }, `driver pod ${index}: ${JSON.stringify(driverPods[index]!.output())}`));
  await setJobStatus(admin, NS, job.metadata.name, 'succeeded');
  return { runId: running.status!.runId!, job, pods: driverPods, startAt: job.metadata.annotations!['loadlab.dev/start-at']! };
}

describe('the whole pipeline on the loadlab engine: operator, driver Job pods running `loadlab drive`, real API, PostgreSQL and Prometheus (the test stands in for the kubelet and the Job controller by running the Job\'s pods from its own arguments)', () => {
  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'loadlab-pipeline-driver-'));
    [cp, postgres] = await Promise.all([ControlPlane.start(), startPostgres()]);
    const crdPath = join(workDir, 'loadexperiments.json');
    writeFileSync(crdPath, JSON.stringify(loadExperimentCrd()));
    await cp.installCrds([crdPath]);
    await cp.createNamespace(NS);
    admin = new KubeClient(loadKubeConfig(cp.kubeconfigPath));

    // The shared TimescaleDB's postgres_exporter, scraped as its PodMonitor does (jobLabel: app.kubernetes.io/name).
    [postgresExporter] = (await startExporters(postgres.url, (line) => assert.fail(line), ['postgres'])) as [Exporter];
    prometheus = await LocalPrometheus.start({
      labels: {},
      scrapeIntervalS: SCRAPE_S,
      jobs: [
        { job: 'podMonitor/loadlab-system/loadlab-api/0', targets: [], targetsFile: files().apiPods, relabelConfigs: podMonitorRelabelConfigs('loadlab-api') },
        { job: 'podMonitor/loadlab-system/loadlab-load-generator/0', targets: [], targetsFile: files().driverPods, relabelConfigs: podMonitorRelabelConfigs('loadlab-load-generator') },
        { job: 'podMonitor/loadlab-system/timescaledb/0', targets: [postgresExporter.address], labels: { job: 'timescaledb', namespace: 'loadlab-system', pod: 'timescaledb-0' } },
      ],
    });

    operator = await startTestOperator({
      PROMETHEUS_URL: prometheus.url,
      DATABASE_URL: postgres.url,
      WATCH_NAMESPACES: NS,
      LEADER_ELECTION: 'false',
      METRICS_PORT: '0',
      RETRY_BASE_SECONDS: '0.1',
      RETRY_MAX_SECONDS: '1',
      SECRET_KEY: 'operator-pipeline-driver-test-secret-key-0123456789',
      // This Prometheus scrapes every 2 s: the drivers linger 4 s for its last scrapes.
      SCRAPE_INTERVAL_SECONDS: String(SCRAPE_S),
      ANALYSIS_STEP_SECONDS: String(SCRAPE_S),
      ANALYSIS_DELAY_SECONDS: '0',
      // The stand-in starts the pods within a second.
      DRIVER_START_DELAY_SECONDS: '3',
    }, cp.kubeconfigPath, logs);
  });

  after(async () => {
    await operator?.stop();
    for (const driver of allDriverPods) driver.process.kill('SIGKILL');
    for (const pod of apiPods) await pod.process.stop();
    await prometheus?.stop();
    await postgresExporter?.process.stop();
    await postgres?.destroy();
    await cp?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('writes a summary into status that agrees with the driver pods\' counts, the API\'s and the rows PostgreSQL stored; the two pods sent the schedule between them', async () => {
    const began = performance.now();
    await admin.create<ExperimentObject>(RESOURCES.loadExperiments, NS, { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: NAME, namespace: NS }, spec: SPEC });
    const { pod } = await actAsKubelet();
    const { runId, pods, startAt } = await actAsJobController(pod);
    const loadDone = performance.now();
    const done = await waitFor('phase Succeeded', async () => {
      const object = await getExperiment();
      if (object.status?.phase === 'Failed') throw new Error(`the experiment failed: ${JSON.stringify(object.status.conditions)}`);
      return object.status?.phase === 'Succeeded' ? object : undefined;
    }, { timeoutMs: 60_000 });
    const summarised = performance.now();
    const status = done.status!;
    const summary = status.summary!;
    const condition = (type: string) => status.conditions?.find((entry) => entry.type === type);

    // The two pods sent the schedule between them, each its share, and every request was answered.
    const experiment = loadExperimentSchema.parse({ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: NAME, namespace: NS }, spec: SPEC }) as LoadExperiment;
    const plan = buildTrafficPlan(experiment);
    const whole = arrivalCounts(plan);
    const reports = pods.map(driverReport);
    reports.forEach((report, index) => {
      const share = arrivalCounts(plan, undefined, { index, count: 2 });
      assert.deepEqual([report.measurements, report.polls, report.logins], [share.measurements, share.command, share.login], `pod ${index} sent its share`);
      assert.equal(report.errors, 0, JSON.stringify(report.responses));
      assert.equal(report.dropped, 0);
    });
    assert.equal(reports[0]!.measurements + reports[1]!.measurements, whole.measurements, 'the measurements of the schedule, each once');
    assert.equal(reports[0]!.polls + reports[1]!.polls, whole.command);
    assert.equal(reports[0]!.logins + reports[1]!.logins, whole.login);
    const acknowledged = reports.reduce((sum, report) => sum + (report.responses['201'] ?? 0), 0);
    assert.equal(acknowledged, whole.measurements, 'every measurement acknowledged (201)');
    assert.equal(reports.reduce((sum, report) => sum + (report.responses['200'] ?? 0), 0), whole.command + whole.login, 'every poll and login answered (200)');
    assert.equal(status.timeline![0]!.startTime, startAt, 'the unit started at the Job\'s start time');

    // PostgreSQL holds exactly the measurements the API acknowledged, in the experiment's own schema.
    const schema = status.databaseSchema!;
    const [{ rows }] = (await sql<{ rows: number }>(`SELECT count(*)::int AS rows FROM "${schema}".measurement`)) as [{ rows: number }];
    assert.equal(rows, whole.measurements, 'rows stored = measurements acknowledged');

    // Prometheus holds the pods' final counts under the run's labels and job="driver", one series
    // per pod. (The pods have exited, so their series went stale: read each counter's last value.)
    const selector = runSelector(NS, NAME, runId);
    const final = (metric: string, extra = '') => `sum(max_over_time(${metric}{${selector}${extra}}[5m]))`;
    const responses = reports.reduce((sum, report) => sum + Object.values(report.responses).reduce((a, b) => a + b, 0), 0);
    assert.equal(await promValue(final('loadlab_driver_responses_total', ',job="driver"')), responses);
    assert.equal(await promValue(`count(count by (pod) (max_over_time(loadlab_driver_requests_offered_total{${selector},job="driver"}[5m])))`), 2, 'two driver pods');
    assert.equal(await promValue(final('loadlab_driver_requests_offered_total', ',job="driver",endpoint="measurements"')), whole.measurements);
    assert.equal(await promValue(final('loadlab_api_measurements_ingested_total')), rows);

    // The operator's verdict for an unbroken run.
    assert.equal(condition('Succeeded')?.reason, 'SloHeld', summary.verdict);
    assert.equal(condition('LoadComplete')?.reason, 'JobFinished');
    assert.equal(summary.outcome, 'held', summary.verdict);
    assert.equal(summary.bottleneck, 'none', summary.verdict);
    assert.equal(summary.errorRate, 0);
    assert.equal(summary.lastGood?.devices, DEVICES);
    assert.ok(summary.p95Ms! > 0 && summary.p95Ms! < 250, `p95 ${summary.p95Ms} ms`);
    const offeredRps = DEVICES / 2 + DEVICES / 2;
    assert.ok(Math.abs(summary.rps! - offeredRps) / offeredRps < 0.05, `summary ${summary.rps} req/s served of ${offeredRps} offered`);

    // Every catalog query of the loadlab engine in a cluster finds data, except those only a cluster can feed.
    const catalog = buildCatalog({ selector, resourceSelector: resourceSelector(NS, NAME), databaseSelector: DATABASE_METRICS_SELECTOR, source: 'kubernetes', engine: 'loadlab', rateWindowS: defaultRateWindowS(SCRAPE_S, SCRAPE_S) });
    const start = Date.parse(status.timeline![0]!.startTime!) / 1000;
    const end = Date.parse(status.timeline![0]!.endTime!) / 1000;
    const empty: string[] = [];
    for (const query of catalog) {
      const params = new URLSearchParams({ query: query.promql, start: String(start), end: String(end), step: String(SCRAPE_S) });
      const body = (await (await fetch(`${prometheus.url}/api/v1/query_range?${params}`)).json()) as { status: string; data: { result: unknown[] } };
      assert.equal(body.status, 'success', query.promql);
      if (body.data.result.length === 0) empty.push(query.name);
    }
    const clusterOnly = ['host_cpu_busy', 'host_cpu_cores', 'host_cpu_by_role', 'api_cpu', 'api_cpu_throttled', 'api_cpu_limit_fraction', 'db_cpu', 'db_cpu_limit_fraction', 'memory_limit_fraction'];
    // Labelled counters have no series before their first event: nothing shed, no statement failed, nothing dropped; a late send is possible on a busy machine.
    const rareEvents = ['api_shed', 'db_query_errors', 'generator_dropped', 'generator_late'];
    for (const name of clusterOnly) assert.ok(empty.includes(name), `${name} needs cAdvisor or kube-state-metrics`);
    assert.deepEqual(empty.filter((name) => !clusterOnly.includes(name) && !rareEvents.includes(name)), [], 'the driver\'s series, its CPU (job="driver") included, and the API\'s are found in a cluster');

    console.log(
      `[figures] apply → Succeeded ${Math.round((summarised - began) / 1000)} s (Job complete → summary ${Math.round(summarised - loadDone)} ms); ` +
        `two driver pods: ${reports.map((report) => report.sent).join(' + ')} requests; summary: ${summary.rps} req/s, p95 ${summary.p95Ms} ms; ${rows} rows stored`,
    );
  });
  it('loadlab report NAMESPACE/NAME writes the run\'s report folder with the operator\'s own numbers (its settings read from its Deployment); loadlab compare reads the run from the cluster', async () => {
    // The operator's Deployment as the charts install it, with the settings this test's operator runs
    // with (nothing runs it here: its environment is what `loadlab report` reads).
    await cp.createNamespace('loadlab-system');
    await admin.create(RESOURCES.deployments, 'loadlab-system', {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'loadlab-operator' },
      spec: {
        selector: { matchLabels: { app: 'loadlab-operator' } },
        template: {
          metadata: { labels: { app: 'loadlab-operator' } },
          spec: {
            containers: [{
              name: 'operator', image: 'loadlab/operator:dev',
              env: [
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'PROMETHEUS_URL', value: prometheus.url },
                { name: 'SCRAPE_INTERVAL_SECONDS', value: String(SCRAPE_S) },
                { name: 'ANALYSIS_STEP_SECONDS', value: String(SCRAPE_S) },
              ],
            }],
          },
        },
      },
    });
    const cli = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, PROMETHEUS_URL: '' }, timeout: 120_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
    });
    const out = join(workDir, 'report');
    const written = await cli(['report', `${NS}/${NAME}`, '--out', out]);
    assert.equal(written.code, 0, written.stderr);
    assert.match(written.stderr, /settings: the operator's \(loadlab-system\/loadlab-operator\)/);
    assert.match(written.stdout, /^verdict: None within the tested range/m);
    for (const file of ['report.html', 'report.md', 'series.csv', 'summary.json']) assert.ok(existsSync(join(out, file)), file);
    const status = (await getExperiment()).status!;
    const document = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { summary: unknown; runId: string };
    assert.equal(document.runId, status.runId);
    assert.deepEqual(document.summary, status.summary, "the report's summary is the operator's, number for number");

    // The same run, read from the folder and from the cluster: nothing differs.
    const compared = await cli(['compare', out, `${NS}/${NAME}`, '--format', 'json']);
    assert.equal(compared.code, 0, compared.stderr);
    const comparison = JSON.parse(compared.stdout) as { regressed: boolean; stages: { measures: { difference?: number }[] }[] };
    assert.equal(comparison.regressed, false);
    const differences = comparison.stages.flatMap((stage) => stage.measures.map((measure) => measure.difference).filter((difference) => difference !== undefined));
    assert.ok(differences.length >= 4, `measures compared: ${differences.length}`);
    assert.ok(differences.every((difference) => difference === 0), `differences: ${differences.join(', ')}`);

    const missing = await cli(['report', `${NS}/no-such-experiment`]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, new RegExp(`no LoadExperiment ${NS}/no-such-experiment in the kubeconfig context`));
  });
  it('spec.baseline: a run made slower on purpose (20 ms per statement) is compared with the first run: Regressed=True, the differences in status.comparison, an Event; kubectl wait returns on it', async () => {
    const slow = `${NAME}-slow`;
    await admin.create<ExperimentObject>(RESOURCES.loadExperiments, NS, {
      apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: slow, namespace: NS },
      // A shorter hold than the baseline's (stages are matched by name): settleS 2 leaves 8 s of it, 4 points.
      spec: {
        ...SPEC,
        load: { stages: [{ devices: DEVICES, duration: '6s' }, { devices: DEVICES, duration: '18s', shape: 'hold' }] },
        analysis: { thresholds: { settleS: 2 } },
        target: { queryDelayMs: 20 },
        baseline: { experiment: NAME },
      },
    });
    const { pod } = await actAsKubelet(slow);
    await actAsJobController(pod, slow);
    await cp.kubectl(['wait', '-n', NS, `loadexperiment/${slow}`, '--for=condition=Regressed=True', '--timeout=90s'], { timeoutMs: 100_000 });
    const status = (await getExperiment(slow)).status!;
    assert.equal(status.phase, 'Succeeded');
    const condition = (type: string) => status.conditions?.find((entry) => entry.type === type);
    assert.equal(condition('Regressed')?.reason, 'Regressed');
    assert.match(condition('Regressed')!.message!, new RegExp(`worse against ${NS}/${NAME} run `));
    assert.equal(condition('SloMet')?.status, 'True', 'still within the 250 ms SLO: slower, not broken');
    const comparison = status.comparison!;
    assert.equal(comparison.regressed, true);
    assert.ok(comparison.worse.some((line) => /^stage 2 hold: p95 \+[\d.]+ % \(95 % CI/.test(line)), comparison.worse.join('\n'));
    assert.equal(comparison.counts.worse, comparison.worse.length);
    // The Event is recorded right after the status write kubectl wait saw.
    await waitFor('a Regressed Event', async () => {
      const events = await admin.list<KubeObject & { reason?: string; regarding?: { name?: string } }>(RESOURCES.events, NS);
      return events.items.some((event) => event.reason === 'Regressed' && event.regarding?.name === slow) ? true : undefined;
    }, { timeoutMs: 10_000 });
    // The baseline was read from the record the operator kept of its run (no second analysis).
    const record = await admin.get<KubeObject & { binaryData?: Record<string, string> }>(RESOURCES.configMaps, NS, `${NAME}-runs`);
    assert.equal(record.metadata.annotations?.['loadlab.dev/current-run'], (await getExperiment()).status?.runId);
    assert.ok(record.binaryData?.['current.json.gz'], 'the record of the run');
    console.log(`[figures] spec.baseline: ${comparison.worse.join('; ')}; ${JSON.stringify(comparison.counts)}; the record ConfigMap: ${Math.round(record.binaryData!['current.json.gz']!.length * 0.75 / 1024)} KiB gzipped`);
  });
});
