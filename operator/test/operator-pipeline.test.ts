// The whole pipeline with nothing synthetic in the numbers: the operator on a real kube-apiserver +
// etcd provisions a LoadExperiment on a real PostgreSQL, a real API process serves a real load, a
// real Prometheus scrapes it, and the summary the operator writes into status is checked against
// what the load driver, the API and PostgreSQL say really happened.
//
// What runs for real: kube-apiserver + etcd, the operator (in this process), PostgreSQL (the shared
// database the operator gives each experiment a schema and role in), the API (api/dist, started
// with the container environment of the operator's Deployment), postgres_exporter, Prometheus, and
// the local load driver running the experiment's traffic plan.
//
// What the test stands in for, and how:
// - the kubelet and the Deployment controller: it starts the API process from the Deployment's
//   container env (HOST and PORT excepted: no pod network here), then marks the Deployment available;
// - Prometheus' pod discovery: it writes the API pod's target with the __meta_kubernetes_* labels
//   discovery would give (from the Deployment's pod template) into a file_sd file; the relabelling
//   is the API PodMonitor's own, read from the synthesized charts/loadlab/40-monitoring.yaml;
// - k6-operator and k6: it reads the TestRun (runner env, --tag arguments) and the script in its
//   ConfigMap, checks that the script encodes the experiment's plan, runs the local driver with that
//   plan, the runners' token secret and tags, and moves the TestRun's stage as k6-operator would;
// - k6's remote write: k6 cannot run here (AGPL, see DESIGN.md), and the cluster analysis reads k6's
//   metric names. Prometheus scrapes the driver and its metric_relabel_configs present the driver's
//   own counters under k6's names (K6_REMOTE_WRITE_STAND_IN below); nothing else reaches Prometheus
//   from the generator. The numbers are the driver's, renamed, never made up.
// What cannot exist here: cAdvisor and kube-state-metrics series (no kubelet), so the container CPU,
// throttling and memory-limit queries find nothing, as they would in a cluster without them.
import { resolveEnv } from './support/pod-env.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { buildCatalog, defaultRateWindowS } from '../src/analysis/index.js';
import { runDriver, type DriverResult } from '../src/driver/index.js';
import { buildScriptConfig, embeddedScriptConfig } from '../src/k6/index.js';
import { startExporters, type Exporter } from '../src/local/exporters.js';
import { freePort, PostgresCluster } from '@loadlab/sandbox/postgres';
import { LocalPrometheus } from '../src/local/prometheus.js';
import { waitForFinalScrape } from '../src/local/local-run.js';
import {
  DATABASE_METRICS_SELECTOR,
  KubeClient,
  loadKubeConfig,
  Operator,
  resourceSelector,
  RESOURCES,
  runSelector,
  type ExperimentObject,
  type KubeObject,
} from '../src/controller/index.js';
import { markDeploymentAvailable, setTestRunStage, waitFor } from './support/stand-ins.js';
import { loadExperimentCrd, loadExperimentSchema, type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan } from '../src/traffic/index.js';
import { runApiPod, type ApiDeployment, type ApiPod } from './support/api-pod.js';
import { startPostgres } from './support/postgres.js';
import { ControlPlane } from '@loadlab/sandbox/control-plane';
import { discoveredPod, podMonitorRelabelConfigs, writeTargets } from './support/pod-discovery.js';
import { startTestOperator } from './support/operator.js';
import { API_PORT } from '../src/contract/index.js';

const NS = 'lab';
const NAME = 'pipeline';
const SCRAPE_S = 2;
/** 200 devices, each reporting and polling every 2 s: 100 measurements/s and 100 polls/s in the hold. */
const DEVICES = 200;
const SPEC = {
  fleet: { devices: DEVICES, reportInterval: '2s', pollInterval: '2s' },
  load: { stages: [{ devices: DEVICES, duration: '6s' }, { devices: DEVICES, duration: '30s', shape: 'hold' }] },
  slo: { latencyPercentile: 95, latencyThreshold: '250ms', maxErrorRate: 0.01 },
  timeout: '5m',
  // Keep the schema, the Deployment and the TestRun to compare with after the summary.
  cleanup: 'never',
};

/**
 * k6's remote write, stood in for by renaming the driver's counters at ingestion (the driver's own
 * numbers under the names k6-operator's runners write):
 *   loadlab_driver_responses_total{endpoint,code}  -> k6_http_reqs_total{endpoint,status} (status "0": transport error, as k6)
 *   loadlab_driver_requests_sent_total             -> k6_iterations_total (loadlab's k6 script makes one request per iteration)
 *   loadlab_driver_requests_dropped_total          -> k6_dropped_iterations_total (both: arrivals the generator could not start)
 *   loadlab_driver_in_flight_requests              -> k6_vus (VUs busy with a request)
 *   loadlab_driver_fleet_devices                   -> k6_loadlab_fleet_devices (the script's fleet gauge)
 * Everything else the driver exposes is dropped, and so are job and instance: remote-written series
 * carry only k6's tags. Not presented: k6's trend statistics (the TestRun sends trends as native
 * histograms, so k6 writes no k6_http_req_duration_p95 gauges either) and k6_http_req_failed_rate.
 */
const K6_NAMES: Readonly<Record<string, string>> = {
  loadlab_driver_responses_total: 'k6_http_reqs_total',
  loadlab_driver_requests_sent_total: 'k6_iterations_total',
  loadlab_driver_requests_dropped_total: 'k6_dropped_iterations_total',
  loadlab_driver_in_flight_requests: 'k6_vus',
  loadlab_driver_fleet_devices: 'k6_loadlab_fleet_devices',
};
const K6_REMOTE_WRITE_STAND_IN = [
  { source_labels: ['__name__', 'code'], regex: 'loadlab_driver_responses_total;(.+)', target_label: 'status', replacement: '$1' },
  { source_labels: ['__name__', 'code'], regex: 'loadlab_driver_responses_total;error', target_label: 'status', replacement: '0' },
  { action: 'labeldrop', regex: 'code|job|instance' },
  ...Object.entries(K6_NAMES).map(([driver, k6]) => ({ source_labels: ['__name__'], regex: driver, target_label: '__name__', replacement: k6 })),
  { source_labels: ['__name__'], regex: 'k6_.*', action: 'keep' },
];

let cp: ControlPlane;
let postgres: PostgresCluster;
let postgresExporter: Exporter;
let prometheus: LocalPrometheus;
let operator: Operator | undefined;
let admin: KubeClient;
let workDir: string;
let apiPod: ApiPod | undefined;
const logs: string[] = [];

const files = () => ({ apiPods: join(workDir, 'api-pods.json'), runners: join(workDir, 'k6-runners.json') });

const getExperiment = () => admin.get<ExperimentObject>(RESOURCES.loadExperiments, NS, NAME);

function parseExperiment(object: ExperimentObject): LoadExperiment {
  return loadExperimentSchema.parse({ apiVersion: object.apiVersion, kind: object.kind, metadata: { name: object.metadata.name, namespace: object.metadata.namespace }, spec: object.spec }) as LoadExperiment;
}

async function promValue(query: string): Promise<number> {
  const body = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}`)).json()) as { data: { result: { value: [number, string] }[] } };
  const value = body.data.result[0]?.value[1];
  if (value === undefined) throw new Error(`Prometheus has no data for ${query}`);
  return Number(value);
}

/** Responses the device endpoints (not login) got with a 2xx, from the driver's own /metrics. */
async function driverServed(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let served = 0;
  for (const match of text.matchAll(/^loadlab_driver_responses_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((label) => [label[1], label[2]]));
    if (labels.endpoint !== 'login' && /^2\d\d$/.test(labels.code ?? '')) served += Number(match[2]);
  }
  return served;
}

/**
 * Stands in for the kubelet and the Deployment controller: the real API started from the
 * operator's Deployment, its target handed to Prometheus as pod discovery would, then the
 * Deployment marked available.
 */
async function actAsKubelet(): Promise<{ deployment: ApiDeployment; pod: ApiPod }> {
  const deployment = await waitFor('the API Deployment', () => admin.get<ApiDeployment>(RESOURCES.deployments, NS, `${NAME}-api`).catch(() => undefined), { timeoutMs: 30_000 }).catch(async (error: Error) => {
    const status = await getExperiment().then((object) => JSON.stringify(object.status), (cause: Error) => cause.message);
    throw new Error(`${error.message}; the experiment's status: ${status}; the operator's last log lines:\n${logs.slice(-10).join('\n')}`);
  });
  const pod = await runApiPod(deployment, admin);
  apiPod = pod;
  writeTargets(files().apiPods, [
    discoveredPod({ namespace: NS, name: `${deployment.metadata.name}-0`, labels: deployment.spec.template.metadata.labels, address: `127.0.0.1:${pod.port}`, container: 'api', endpoint: 'http', monitor: 'loadlab-api' }),
  ]);
  await markDeploymentAvailable(admin, NS, deployment.metadata.name);
  return { deployment, pod };
}

interface TestRunObject extends KubeObject {
  spec: { parallelism: number; arguments: string; script: { configMap: { name: string; file: string } }; runner: { env: { name: string; value: string }[] } };
}

interface K6Run {
  runId: string;
  result: DriverResult;
  /** The driver's 2xx responses on the device endpoints from the start of the hold to the end of the load. */
  hold: { served: number; fromUnixS: number; toUnixS: number };
}

/**
 * Stands in for k6-operator and its runners: reads the TestRun and its script, runs the local
 * driver with that plan against the API the runners' LOADLAB_API_URL names (the Service, resolved to
 * the API pod as cluster DNS and kube-proxy would), and moves the TestRun's stage as k6-operator
 * does: created, started when the load begins, finished once its last samples are in Prometheus
 * (k6 flushes its remote write before the runner exits).
 */
async function actAsK6Operator(pod: ApiPod): Promise<K6Run> {
  const running = await waitFor('the TestRun recorded in status', async () => {
    const object = await getExperiment();
    return object.status?.timeline?.length ? object : undefined;
  }, { timeoutMs: 30_000 });
  const runId = running.status!.runId!;
  const testRun = await admin.get<TestRunObject>(RESOURCES.testRuns, NS, running.status!.timeline![0]!.name);
  const configMap = await admin.get<KubeObject & { data: Record<string, string> }>(RESOURCES.configMaps, NS, testRun.spec.script.configMap.name);
  const script = embeddedScriptConfig(configMap.data[testRun.spec.script.configMap.file]!);
  const runnerEnv = await resolveEnv(admin, NS, testRun.spec.runner.env);
  const tags = Object.fromEntries([...testRun.spec.arguments.matchAll(/--tag (\w+)=(\S+)/g)].map((match) => [match[1]!, match[2]!]));

  // The script runs the experiment's plan: the same configuration rendered from the experiment.
  const experiment = parseExperiment(running);
  const plan = buildTrafficPlan(experiment);
  const phaseRange = { from: script.range.from, to: script.range.to };
  assert.deepEqual(script, JSON.parse(JSON.stringify(buildScriptConfig(experiment, plan, { phaseRange }))), 'the ConfigMap\'s script encodes the experiment\'s plan');
  assert.equal(testRun.spec.parallelism, 1, 'one runner: one driver stands in for it');
  assert.deepEqual(tags, { experiment: `${NS}/${NAME}`, run: runId });
  const service = await admin.get(RESOURCES.services, NS, `${NAME}-api`);
  assert.equal(runnerEnv.LOADLAB_API_URL, `http://${service.metadata.name}.${NS}.svc:${API_PORT}`, 'the runners reach the API through its Service');
  // k6's concurrency cap is the scenarios' VUs together; the driver's is its maxInFlight.
  const maxInFlight = Object.values(script.options.scenarios).reduce((sum, scenario) => sum + scenario!.maxVUs, 0);

  await setTestRunStage(admin, NS, testRun.metadata.name, 'initialization');
  await setTestRunStage(admin, NS, testRun.metadata.name, 'created');
  const metricsPort = await freePort();
  writeTargets(files().runners, [{ targets: [`127.0.0.1:${metricsPort}`], labels: {} }]);
  const holdPhase = plan.phases.slice(phaseRange.from, phaseRange.to).find((phase) => phase.kind === 'hold')!;
  let started: Promise<unknown> = Promise.resolve();
  let holdStart: Promise<{ served: number; atUnixS: number }> | undefined;
  const result = await runDriver({
    experiment,
    plan,
    phaseRange,
    baseUrls: [pod.url],
    tokenSecret: runnerEnv.LOADLAB_TOKEN_SECRET!,
    metricsPort,
    labels: tags,
    maxInFlight,
    // The driver's metrics stay up for Prometheus' last scrapes (k6's final flush).
    metricsLingerMs: (SCRAPE_S * 6 + 5) * 1000,
    onReady: ({ startUnixS, metricsUrl }) => {
      started = setTestRunStage(admin, NS, testRun.metadata.name, 'started', { at: new Date(startUnixS * 1000) });
      const holdAtUnixS = startUnixS + holdPhase.startS - plan.phases[phaseRange.from]!.startS;
      holdStart = new Promise((resolve, reject) =>
        setTimeout(() => driverServed(metricsUrl).then((served) => resolve({ served, atUnixS: Date.now() / 1000 }), reject), holdAtUnixS * 1000 - Date.now()),
      );
    },
  });
  await started;
  const atHold = await holdStart!;
  const endUnixS = result.timeline.at(-1)!.endUnixS!;
  const served = (result.endpoints.measurements.responses['201'] ?? 0) + (result.endpoints.command.responses['200'] ?? 0);
  const responses = Object.values(result.totals.responses).reduce((sum, count) => sum + count, 0);
  await waitForFinalScrape(prometheus.url, runSelector(NS, NAME, runId), responses, SCRAPE_S, K6_NAMES.loadlab_driver_responses_total);
  await setTestRunStage(admin, NS, testRun.metadata.name, 'finished', { at: new Date(endUnixS * 1000) });
  return { runId, result, hold: { served: served - atHold.served, fromUnixS: atHold.atUnixS, toUnixS: endUnixS } };
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

describe('the whole pipeline: operator, real API, PostgreSQL and Prometheus (the test stands in for the kubelet by running the API from the Deployment, and for k6-operator by running the local driver with the TestRun\'s script, its counters presented under k6\'s names)', () => {
  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'loadlab-pipeline-'));
    [cp, postgres] = await Promise.all([ControlPlane.start(), startPostgres()]);
    const crdPath = join(workDir, 'loadexperiments.json');
    writeFileSync(crdPath, JSON.stringify(loadExperimentCrd()));
    await cp.installVendoredCrds();
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
        { job: 'podMonitor/loadlab-system/timescaledb/0', targets: [postgresExporter.address], labels: { job: 'timescaledb', namespace: 'loadlab-system', pod: 'timescaledb-0' } },
        { job: 'k6-remote-write-stand-in', targets: [], targetsFile: files().runners, metricRelabelConfigs: K6_REMOTE_WRITE_STAND_IN },
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
      SECRET_KEY: 'operator-pipeline-test-secret-key-0123456789',
      // This Prometheus scrapes every 2 s; the TestRun is finished only once the last samples are in.
      SCRAPE_INTERVAL_SECONDS: String(SCRAPE_S),
      ANALYSIS_STEP_SECONDS: String(SCRAPE_S),
      ANALYSIS_DELAY_SECONDS: '0',
    }, cp.kubeconfigPath, logs);
  });

  after(async () => {
    await operator?.stop();
    await apiPod?.process.stop();
    await prometheus?.stop();
    await postgresExporter?.process.stop();
    await postgres?.destroy();
    await cp?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('writes a summary into status that agrees with the driver\'s counters, the API\'s and the rows PostgreSQL stored', async () => {
    const began = performance.now();
    await admin.create<ExperimentObject>(RESOURCES.loadExperiments, NS, { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: NAME, namespace: NS }, spec: SPEC });
    const { pod } = await actAsKubelet();
    const run = await actAsK6Operator(pod);
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
    const { result } = run;
    const { measurements, command } = result.endpoints;

    // What really happened, as the driver counted it: every request answered, none failed or dropped.
    assert.equal(result.totals.errors, 0, JSON.stringify(result.totals.responses));
    assert.equal(result.totals.dropped, 0);
    assert.equal(measurements.responses['201'], measurements.sent, 'every measurement acknowledged');
    assert.equal(command.responses['200'], command.sent, 'every poll answered');
    assert.ok(measurements.sent > 2500, `measurements sent: ${measurements.sent}`);

    // PostgreSQL holds exactly the measurements the API acknowledged, in the experiment's own schema.
    const schema = status.databaseSchema!;
    assert.equal(schema, (await sql<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = $1', [schema]))[0]?.nspname);
    const [{ rows }] = (await sql<{ rows: number }>(`SELECT count(*)::int AS rows FROM "${schema}".measurement`)) as [{ rows: number }];
    assert.equal(rows, measurements.responses['201'], 'rows stored = measurements acknowledged');

    // Prometheus holds the final counts: the driver's under k6's names, and the API's own.
    const selector = runSelector(NS, NAME, run.runId);
    const responses = Object.values(result.totals.responses).reduce((sum, count) => sum + count, 0);
    assert.equal(await promValue(`sum(k6_http_reqs_total{${selector}})`), responses);
    assert.equal(await promValue(`sum(k6_iterations_total{${selector}})`), result.totals.sent);
    assert.equal(await promValue(`sum(loadlab_api_measurements_ingested_total{${selector}})`), rows);
    assert.equal(await promValue(`sum(loadlab_api_http_request_duration_seconds_count{${selector},route="/v1/measurements",status="201"})`), rows);

    // The operator's verdict for an unbroken run.
    assert.equal(status.phase, 'Succeeded');
    assert.equal(condition('Succeeded')?.status, 'True');
    assert.equal(condition('Succeeded')?.reason, 'SloHeld', summary.verdict);
    assert.equal(condition('Analyzed')?.status, 'True');
    assert.equal(summary.outcome, 'held', summary.verdict);
    assert.equal(summary.bottleneck, 'none', summary.verdict);
    assert.match(summary.verdict ?? '', /^None within the tested range/);
    assert.equal(summary.devicesAtBreak, undefined);
    assert.equal(summary.errorRate, 0);
    assert.equal(summary.lastGood?.devices, DEVICES);
    assert.ok(summary.p95Ms! > 0 && summary.p95Ms! < 250, `p95 ${summary.p95Ms} ms`);
    assert.deepEqual(summary.steps?.rows.map((row) => row[1]), [DEVICES], 'one judged stage: the hold');

    // Throughput: the summary's served rate in the hold against the driver's own count over the hold
    // (the analysis judges the end of it, after the settle and rate windows; the rate is steady).
    const driverHoldRps = run.hold.served / (run.hold.toUnixS - run.hold.fromUnixS);
    const offeredRps = DEVICES / 2 + DEVICES / 2;
    assert.ok(Math.abs(driverHoldRps - offeredRps) / offeredRps < 0.03, `the driver served ${driverHoldRps.toFixed(1)} req/s in the hold, of ${offeredRps} offered`);
    assert.ok(Math.abs(summary.rps! - driverHoldRps) / driverHoldRps < 0.05, `summary ${summary.rps} req/s vs the driver's ${driverHoldRps.toFixed(1)} req/s`);
    assert.equal(summary.rps, summary.lastGood?.rps);

    // Every catalog query the operator ran finds data, except those only a cluster can feed.
    const catalog = buildCatalog({
      selector,
      resourceSelector: resourceSelector(NS, NAME),
      databaseSelector: DATABASE_METRICS_SELECTOR,
      source: 'kubernetes',
      rateWindowS: defaultRateWindowS(SCRAPE_S, SCRAPE_S),
    });
    const start = Date.parse(status.timeline![0]!.startTime!) / 1000;
    const end = Date.parse(status.timeline![0]!.endTime!) / 1000;
    const empty: string[] = [];
    for (const query of catalog) {
      const params = new URLSearchParams({ query: query.promql, start: String(start), end: String(end), step: String(SCRAPE_S) });
      const body = (await (await fetch(`${prometheus.url}/api/v1/query_range?${params}`)).json()) as { status: string; data: { result: unknown[] } };
      assert.equal(body.status, 'success', query.promql);
      if (body.data.result.length === 0) empty.push(query.name);
    }
    const clusterOnly = ['generator_latency_trend', 'generator_failed_rate', 'generator_cpu', 'host_cpu_busy', 'host_cpu_cores', 'host_cpu_by_role', 'api_cpu', 'api_cpu_throttled', 'api_cpu_limit_fraction', 'db_cpu', 'db_cpu_limit_fraction', 'memory_limit_fraction'];
    // Labelled counters have no series before their first event: nothing was shed, no statement failed.
    const nothingHappened = ['api_shed', 'db_query_errors'];
    assert.deepEqual(empty.sort(), [...clusterOnly, ...nothingHappened].sort(), 'queries without data: k6 trends and failed rate, cAdvisor, kube-state-metrics, and events that did not happen');
    assert.match(condition('Analyzed')!.message!, new RegExp(`${empty.length} of ${catalog.length} queries found no series`));

    console.log(
      `[figures] apply → Succeeded ${Math.round((summarised - began) / 1000)} s (load ${Math.round(result.endUnixS - result.startUnixS)} s; TestRun finished → summary ${Math.round(summarised - loadDone)} ms); ` +
        `driver: ${responses} responses, ${driverHoldRps.toFixed(1)} req/s served in the hold; summary: ${summary.rps} req/s, p95 ${summary.p95Ms} ms; ${rows} rows stored`,
    );
  });
});
