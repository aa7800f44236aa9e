// The LoadExperiment operator on a real kube-apiserver + etcd (envtest-style), a real PostgreSQL
// (the shared database: a schema and a role per experiment) and a fake Prometheus serving a
// synthetic run. No kubelet, no Deployment controller and no k6-operator run here: the tests stand
// in for them (they mark the API Deployment available — after running the API's migrations, with
// the real API process in the first test — and move each TestRun's stage as k6-operator would),
// which every test name says. Nothing garbage-collects either, so deletion is checked through
// ownerReferences.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { buildCatalog, labelKey, uslCapacity } from '../src/analysis/index.js';
import { mintDeviceToken } from '../src/contract/device-token.js';
import { tokenExpiryS } from '../src/contract/device-token-format.js';
import { freePort, PostgresCluster } from '@loadlab/sandbox/postgres';
import {
  analysisTimeline,
  databaseSchemaName,
  isNotFound,
  KubeClient,
  loadKubeConfig,
  Operator,
  resourceSelector,
  RESOURCES,
  runSelector,
  runUnits,
  uidTag,
  type Checkpoint,
  type ExperimentObject,
  type KubeObject,
} from '../src/controller/index.js';
import { markDeploymentAvailable, setTestRunStage, waitFor } from './support/stand-ins.js';
import { loadExperimentCrd, loadExperimentSchema, type LoadExperiment } from '../src/schema/index.js';
import { measurementPayload } from '../src/traffic/payload.js';
import { buildTrafficPlan, type TrafficPlan } from '../src/traffic/plan.js';
import { startFakePrometheus, type FakeAnswer, type FakePrometheus, type FakeRequest } from './fixtures/analysis/fake-prometheus.js';
import { pointsAt, stateAt, type Scenario } from './fixtures/analysis/synthetic-run.js';
import { startPostgres } from './support/postgres.js';
import { ControlPlane } from '@loadlab/sandbox/control-plane';
import { startTestOperator } from './support/operator.js';
import { runApiMigrations } from './support/api-migrations.js';
import { containerEnv, runApiPod, type ApiDeployment, type ApiPod } from './support/api-pod.js';
import { resolveEnv, type EnvEntry } from './support/pod-env.js';

const NS = 'lab';
const RATE_WINDOW_S = 60; // the analysis' default in a cluster: max(15 s step, 4 × 15 s scrape)

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let cp: ControlPlane;
let postgres: PostgresCluster;
let admin: KubeClient;
let fake: FakePrometheus;
let operator: Operator | undefined;
let workDir: string;
const logs: string[] = [];
let prometheusDown = false;
/** When set, the fake Prometheus answers this many more queries, then only 503s. */
let prometheusBudget: number | undefined;

// ------------------------------------------------------------------------------ the fake Prometheus

/** What "really happened" to each experiment's load, as the test drove it: the model's input. */
interface Model {
  scenario: Scenario;
  plan: TrafficPlan;
  checkpoints: Pick<Checkpoint, 'unit' | 'kind' | 'name' | 'phases' | 'startTime' | 'endTime'>[];
}
const models = new Map<string, Model>();

/** A fake Prometheus (a real one cannot be made to serve a given run on demand): answers the analysis' range queries from the synthetic model of each experiment's recorded load. */
async function prometheusHandler(request: FakeRequest): Promise<FakeAnswer> {
  if (prometheusBudget !== undefined && prometheusBudget-- <= 0) return { status: 503, raw: 'Service Unavailable' };
  if (prometheusDown) return { status: 503, raw: 'Service Unavailable' };
  const query = request.params.query ?? '';
  const name = /experiment="[^"/]+\/([^"]+)"/.exec(query)?.[1] ?? /pod=~"(.+?)-\.\*"/.exec(query)?.[1];
  const runId = /run=~"([^"(]+)/.exec(query)?.[1];
  const model = name ? models.get(name) : undefined;
  if (!model || !name) return { status: 400, body: { status: 'error', errorType: 'bad_data', error: `no model for ${query}` } };
  const catalog = buildCatalog({ selector: runSelector(NS, name, runId ?? 'none'), resourceSelector: resourceSelector(NS, name), source: 'kubernetes', rateWindowS: RATE_WINDOW_S });
  const entry = catalog.find((candidate) => candidate.promql === query);
  if (!entry) return { status: 400, body: { status: 'error', errorType: 'bad_data', error: `unexpected query ${query}` } };
  // A scaling study's run at n replicas (r<generation>-<tag>-n<replicas>): the model's capacity at n.
  const replicas = /-n([0-9]+)$/.exec(runId ?? '')?.[1];
  const timeline = analysisTimeline(model.plan, model.checkpoints as Checkpoint[], replicas === undefined ? undefined : Number(replicas));
  const start = Number(request.params.start);
  const end = Number(request.params.end);
  const step = Number(request.params.step);
  const series = new Map<string, { metric: Record<string, string>; values: [number, string][] }>();
  for (let t = start; t <= end + 1e-9; t += step) {
    for (const point of pointsAt(entry.name, model.scenario, stateAt(model.scenario, timeline, t))) {
      const metric = { ...point.labels, experiment: `${NS}/${name}` };
      const key = labelKey(metric);
      let found = series.get(key);
      if (!found) series.set(key, (found = { metric, values: [] }));
      found.values.push([t, String(point.value)]);
    }
  }
  return { body: { status: 'success', data: { resultType: 'matrix', result: [...series.values()] } } };
}

// ----------------------------------------------------------------------------------- harness

function operatorEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    PROMETHEUS_URL: fake.url,
    DATABASE_URL: postgres.url,
    WATCH_NAMESPACES: NS,
    LEADER_ELECTION: 'false',
    RETRY_BASE_SECONDS: '0.05',
    RETRY_MAX_SECONDS: '0.4',
    SECRET_KEY: 'operator-lifecycle-test-secret-key-0123456789',
    GRAFANA_URL: 'http://grafana.monitoring.svc:3000',
    // The tests backdate the load and time the step from its end to the summary: no wait for scrapes.
    ANALYSIS_DELAY_SECONDS: '0',
    LOG_LEVEL: process.env.LOADLAB_TEST_LOG_LEVEL ?? 'info',
    ...overrides,
  };
}

function startOperator(overrides: Record<string, string> = {}): Promise<Operator> {
  return startTestOperator(operatorEnv(overrides), cp.kubeconfigPath, logs);
}

async function restartOperator(overrides: Record<string, string> = {}): Promise<void> {
  await operator?.stop({ release: false });
  operator = await startOperator(overrides);
}

function manifest(name: string, spec: Json): Json {
  return { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name, namespace: NS }, spec };
}

/** The stages experiment most tests use: a hold at 3,000 devices (200 rps) and one at 6,000 (400 rps). */
function stagesSpec(extra: Json = {}): Json {
  return {
    fleet: { devices: 6000, reportInterval: '30s', pollInterval: '30s' },
    load: {
      stages: [
        { devices: 3000, duration: '60s' },
        { devices: 3000, duration: '3m', shape: 'hold' },
        { devices: 6000, duration: '60s' },
        { devices: 6000, duration: '3m', shape: 'hold' },
      ],
    },
    slo: { latencyPercentile: 95, latencyThreshold: '250ms', maxErrorRate: 0.01 },
    timeout: '30m',
    ...extra,
  };
}

/** The API's capacity in the model: 400 requests/s, limited by its database pool. */
const DB_POOL_BOUND: Scenario = { kind: 'db-pool', source: 'kubernetes', capacityRps: 400 };

async function create(name: string, spec: Json, scenario: Scenario = DB_POOL_BOUND): Promise<ExperimentObject> {
  const object = await admin.create<ExperimentObject>(RESOURCES.loadExperiments, NS, manifest(name, spec));
  const parsed = loadExperimentSchema.safeParse({ ...manifest(name, spec), metadata: { name, namespace: NS } });
  if (parsed.success) models.set(name, { scenario, plan: buildTrafficPlan(parsed.data as LoadExperiment), checkpoints: [] });
  return object;
}

const get = (name: string) => admin.get<ExperimentObject>(RESOURCES.loadExperiments, NS, name);

async function waitForStatus(name: string, what: string, check: (object: ExperimentObject) => boolean, timeoutMs = 20_000): Promise<ExperimentObject> {
  return waitFor(`${name}: ${what}`, async () => {
    const object = await get(name);
    return check(object) ? object : undefined;
  }, { timeoutMs });
}

const waitForPhase = (name: string, phase: string, timeoutMs?: number) =>
  waitForStatus(name, `phase ${phase}`, (object) => object.status?.phase === phase, timeoutMs);

/**
 * Stands in for the kubelet and the Deployment controller: waits for the operator's API Deployment
 * (of the given run), applies the API's migrations with the Deployment's own DATABASE_URL as the
 * container would, then marks the Deployment available. With `realApi` it starts the real API
 * process with the Deployment's environment instead (and returns it, still running).
 */
async function actAsKubelet(name: string, options: { realApi?: boolean; runId?: string } = {}): Promise<{ deployment: ApiDeployment; api?: ApiPod }> {
  const deployment = await waitFor(`${name}: API Deployment${options.runId ? ` of ${options.runId}` : ''}`, async () => {
    const found = await admin.get<ApiDeployment>(RESOURCES.deployments, NS, `${name}-api`).catch(() => undefined);
    if (!found || (options.runId && found.metadata.labels?.['loadlab.dev/run'] !== options.runId)) return undefined;
    return found;
  });
  let api: ApiPod | undefined;
  if (options.realApi) api = await runApiPod(deployment, admin);
  else await runApiMigrations((await containerEnv(deployment, admin)).DATABASE_URL!);
  await markDeploymentAvailable(admin, NS, `${name}-api`);
  return { deployment, ...(api ? { api } : {}) };
}

/** Backdates a run: the first unit's load starts `beforeS` ago, and each unit follows with a 5 s gap. */
function unitTimes(model: Model, unit: number, startUnixMs: number): { start: Date; end: Date } {
  const units = runUnits(model.plan);
  const index = units.findIndex((entry) => entry.unit === unit);
  const startMs = startUnixMs + model.plan.phases[units[index]!.phases.from]!.startS * 1000 + index * 5000;
  return { start: new Date(startMs), end: new Date(startMs + units[index]!.durationS * 1000) };
}

function runStartFor(model: Model): number {
  return Math.floor(Date.now() / 1000) * 1000 - (model.plan.durationS + runUnits(model.plan).length * 5 + 300) * 1000;
}

/**
 * Stands in for k6-operator on the TestRun of `unit`: created, started and finished, with the
 * TestRunRunning condition's times set to when the load "ran" (backdated: see unitTimes). Records
 * the load in the model the fake Prometheus serves.
 */
async function actAsK6Operator(name: string, unit: number, startUnixMs: number, options: { waitForStart?: boolean; finish?: boolean } = {}): Promise<{ testRun: string; finishedAt?: number }> {
  const model = models.get(name)!;
  const object = await waitForStatus(name, `TestRun of unit ${unit} recorded`, (found) => found.status?.timeline?.some((checkpoint) => checkpoint.unit === unit) === true);
  const checkpoint = object.status!.timeline!.find((entry) => entry.unit === unit)!;
  const { start, end } = unitTimes(model, unit, startUnixMs);
  await setTestRunStage(admin, NS, checkpoint.name, 'created');
  await setTestRunStage(admin, NS, checkpoint.name, 'started', { at: start });
  if (options.waitForStart ?? true) {
    await waitForStatus(name, `start of ${checkpoint.name} recorded`, (found) => !!found.status?.timeline?.find((entry) => entry.unit === unit)?.startTime);
  }
  model.checkpoints.push({ unit, kind: checkpoint.kind, name: checkpoint.name, phases: checkpoint.phases, startTime: start.toISOString(), endTime: end.toISOString() });
  if (options.finish === false) return { testRun: checkpoint.name };
  await setTestRunStage(admin, NS, checkpoint.name, 'finished', { at: end });
  return { testRun: checkpoint.name, finishedAt: performance.now() };
}

async function children(name: string) {
  const selector = { labelSelector: `loadlab.dev/experiment=${name}` };
  const [testRuns, configMaps, deployments, services] = await Promise.all([
    admin.list(RESOURCES.testRuns, NS, selector),
    admin.list(RESOURCES.configMaps, NS, selector),
    admin.list(RESOURCES.deployments, NS, selector),
    admin.list(RESOURCES.services, NS, selector),
  ]);
  // The run record (<name>-runs) is the experiment's data, not an object of a run: cleanup keeps it.
  return { testRuns: testRuns.items, configMaps: configMaps.items.filter((item) => item.metadata.name !== `${name}-runs`), deployments: deployments.items, services: services.items };
}

async function eventsOf(name: string): Promise<{ reason: string; note: string; type: string; name: string }[]> {
  const list = await admin.list<KubeObject & { reason: string; note: string; type: string; regarding: { name: string } }>(RESOURCES.events, NS);
  return list.items
    .filter((event) => event.regarding.name === name)
    .map((event) => ({ reason: event.reason, note: event.note, type: event.type, name: event.metadata.name }));
}

/** Events are recorded just after the status write that they report: wait for them. */
function waitForEvent(name: string, what: string, predicate: (event: { reason: string; note: string; type: string }) => boolean) {
  return waitFor(`${name}: event ${what}`, async () => (await eventsOf(name)).find(predicate));
}

async function sql<T extends Json>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const condition = (object: ExperimentObject, type: string) => object.status?.conditions?.find((entry) => entry.type === type);

// ------------------------------------------------------------------------------------- tests

describe('the LoadExperiment operator on a real kube-apiserver + PostgreSQL (the test stands in for kubelet and k6-operator; fake Prometheus)', () => {
  before(async () => {
    [cp, postgres] = await Promise.all([ControlPlane.start(), startPostgres()]);
    workDir = mkdtempSync(join(tmpdir(), 'loadlab-operator-test-'));
    const crdPath = join(workDir, 'loadexperiments.json');
    writeFileSync(crdPath, JSON.stringify(loadExperimentCrd()));
    await cp.installVendoredCrds();
    await cp.installCrds([crdPath]);
    await cp.createNamespace(NS);
    admin = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    fake = await startFakePrometheus(prometheusHandler);
    operator = await startOperator();
  });

  after(async () => {
    await operator?.stop();
    await fake?.close();
    await postgres?.destroy();
    await cp?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('runs a staged experiment end to end: Pending → Provisioning → Running → Analyzing → Succeeded (real API process as the pod; test moves the TestRun like k6-operator)', async () => {
    const name = 'staged';
    const tApply = performance.now();
    const created = await create(name, stagesSpec({ database: { mode: 'reset' }, cleanup: 'onSuccess' }));
    // From the moment the apiserver has stored the experiment (the first write to a new CRD's storage is slow here).
    const t0 = performance.now();
    const uid = created.metadata.uid!;

    // Provisioning: the API Deployment and Service, owned, restricted, pointed at the experiment's schema.
    const deploymentSeen = await waitFor('the API Deployment', () => admin.get<ApiDeployment>(RESOURCES.deployments, NS, `${name}-api`).catch(() => undefined), { intervalMs: 5 });
    const tDeployment = performance.now();
    const schema = databaseSchemaName(NS, name, uid);
    // The role may hold its replica's pool and control connection, a rolling update's extra pod's, and the operator's 4.
    assert.deepEqual(await sql(`SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, [schema]), [{ rolconnlimit: 2 * (10 + 1) + 4 }]);
    const env = await containerEnv(deploymentSeen, admin);
    // The secrets by reference to the API's Secret (owned by the experiment, immutable), in no pod spec.
    const secretRefs = deploymentSeen.spec.template.spec.containers[0]!.env!.filter((entry) => entry.valueFrom).map((entry) => [entry.name, entry.valueFrom!.secretKeyRef!.key]);
    assert.deepEqual(secretRefs, [['DATABASE_URL', 'DATABASE_URL'], ['TOKEN_SECRET', 'TOKEN_SECRET']]);
    assert.ok(!JSON.stringify(deploymentSeen).includes(env.TOKEN_SECRET!) && !JSON.stringify(deploymentSeen).includes(new URL(env.DATABASE_URL!).password), 'no secret value in the Deployment');
    const secretName = deploymentSeen.spec.template.spec.containers[0]!.env!.find((entry) => entry.name === 'TOKEN_SECRET')!.valueFrom!.secretKeyRef!.name;
    const apiSecret = await admin.get<KubeObject & { immutable?: boolean }>(RESOURCES.secrets, NS, secretName);
    assert.equal(apiSecret.immutable, true);
    assert.equal(apiSecret.metadata.ownerReferences?.[0]?.uid, uid);
    assert.match(env.DATABASE_URL!, new RegExp(`^postgres://${schema}:[^@]+@127\\.0\\.0\\.1:${postgres.port}/loadlab\\?options=-c\\+search_path%3D${schema}%2Cpublic$`));
    assert.equal(env.HOST, '0.0.0.0');
    assert.equal(env.PORT, '3000');
    assert.equal(deploymentSeen.metadata.ownerReferences?.[0]?.uid, uid);
    assert.equal((await get(name)).status?.phase, 'Provisioning');
    const service = await admin.get<KubeObject & { spec: Json }>(RESOURCES.services, NS, `${name}-api`);
    assert.equal(service.spec.ports[0].port, 3000);

    const { api } = await actAsKubelet(name, { realApi: true });
    const tAvailable = performance.now();
    try {
      // Running: the ConfigMap and the TestRun (one for the whole plan of stages).
      const running = await waitForStatus(name, 'TestRun created', (object) => (object.status?.timeline?.length ?? 0) > 0, 20_000);
      const tTestRun = performance.now();
      const checkpoint = running.status!.timeline![0]!;
      const runId = running.status!.runId!;
      assert.equal(checkpoint.name, `${name}-${runId}-k6`);
      assert.deepEqual(checkpoint.phases, { from: 0, to: 4 });
      const testRun = await admin.get<KubeObject & { spec: Json }>(RESOURCES.testRuns, NS, checkpoint.name);
      assert.equal(testRun.metadata.uid, checkpoint.uid);
      assert.equal(testRun.spec.cleanup, undefined, 'k6-operator must not delete the TestRun before the operator read its outcome');
      const runnerEnv = await resolveEnv(admin, NS, testRun.spec.runner.env as EnvEntry[]);
      assert.equal(runnerEnv.LOADLAB_TOKEN_SECRET, env.TOKEN_SECRET, 'the runners mint tokens with the API\'s secret');
      assert.ok(!JSON.stringify(testRun).includes(env.TOKEN_SECRET!), 'no secret value in the TestRun');
      assert.equal(runnerEnv.LOADLAB_API_URL, `http://${name}-api.${NS}.svc:3000`);
      await admin.get(RESOURCES.configMaps, NS, checkpoint.name);

      // The database: the API's tables in the experiment's own schema, the fleet registered with ids i + 1.
      const devices = await sql<{ count: string; min: string; max: string }>(`SELECT count(*), min(id), max(id) FROM "${schema}".device`);
      assert.deepEqual(devices[0], { count: '6000', min: '1', max: '6000' });
      assert.deepEqual((await sql(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'device'`))[0], { n: 0 }, 'nothing in public');
      // A token minted as the runners do (device index 0 → id 1) is accepted by the real API.
      const parsed = loadExperimentSchema.parse(manifest(name, stagesSpec())) as LoadExperiment;
      const token = mintDeviceToken(runnerEnv.LOADLAB_TOKEN_SECRET!, 1, tokenExpiryS(Date.now()));
      const posted = await fetch(`${api!.url}/v1/measurements`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(measurementPayload(parsed, 0, Date.now())),
      });
      assert.equal(posted.status, 201, await posted.text());

      // k6-operator's part, backdated so the synthetic run "happened" over the last minutes.
      const model = models.get(name)!;
      const { finishedAt } = await actAsK6Operator(name, 0, runStartFor(model));
      const done = await waitForPhase(name, 'Succeeded', 20_000);
      const tSummary = performance.now();
      const queries = fake.requests.filter((request) => request.path === '/api/v1/query_range').length;

      // The verdict of the synthetic run: 400 rps of pool capacity holds 3,000 devices, not 6,000.
      const summary = done.status!.summary!;
      assert.equal(summary.devicesAtBreak, 6000, summary.verdict);
      assert.equal(summary.bottleneck, 'db-pool', summary.verdict);
      assert.equal(summary.outcome, 'broke');
      assert.ok(summary.rps! > 190 && summary.rps! < 210, `rps ${summary.rps}`);
      assert.ok((summary.steps?.rows.length ?? 0) === 2, 'one row per judged hold');
      assert.ok(JSON.stringify(done.status).length < 16_000, 'status stays small');
      assert.equal(done.status!.observedGeneration, 1);
      assert.equal(condition(done, 'Succeeded')?.status, 'True');
      assert.equal(condition(done, 'Succeeded')?.reason, 'BreakingPointFound');
      for (const type of ['ApiReady', 'DatabaseReady', 'LoadComplete', 'Analyzed']) assert.equal(condition(done, type)?.status, 'True', type);
      // The SLO gate: the experiment ran (Succeeded True) and its SLO broke (SloMet False), which
      // kubectl wait can wait for and kubectl get shows.
      assert.equal(condition(done, 'SloMet')?.status, 'False');
      assert.equal(condition(done, 'SloMet')?.reason, 'SloBroken');
      assert.match(condition(done, 'SloMet')!.message!, /devices\) broke it: /);
      await cp.kubectl(['wait', '-n', NS, `loadexperiment/${name}`, '--for=condition=SloMet=False', '--timeout=20s']);
      assert.match(await cp.kubectl(['get', '-n', NS, 'loadexperiment', name]), /Succeeded\s+SloBroken\s/);
      for (const entry of done.status!.conditions!) assert.equal(entry.observedGeneration, 1);
      const url = new URL(done.status!.grafanaUrl!);
      assert.equal(url.searchParams.get('var-run'), runId);
      assert.equal(url.searchParams.get('to'), String(Date.parse(done.status!.timeline![0]!.endTime!) + 60_000));

      // One Event per transition.
      const expected = ['RunStarted', 'Provisioning', 'Provisioned', 'TestRunCreated', 'LoadFinished', 'BreakingPointFound'];
      const reasons = await waitFor('the Events', async () => {
        const found = (await eventsOf(name)).map((event) => event.reason);
        return expected.every((reason) => found.includes(reason)) ? found : undefined;
      }).catch(async () => (await eventsOf(name)).map((event) => event.reason));
      for (const reason of expected) assert.ok(reasons.includes(reason), `${reason} in ${reasons.join(', ')}`);

      // cleanup: onSuccess, database.mode reset → children deleted and the schema dropped.
      const cleaned = await waitForStatus(name, 'CleanedUp', (object) => condition(object, 'CleanedUp')?.status === 'True');
      assert.match(condition(cleaned, 'CleanedUp')!.message!, /testrun\/staged-.*deployment\/staged-api.*dropped database schema/);
      const left = await children(name);
      assert.deepEqual([left.testRuns.length, left.configMaps.length, left.deployments.length, left.services.length], [0, 0, 0, 0]);
      assert.ok(await admin.get(RESOURCES.configMaps, NS, `${name}-runs`), 'cleanup keeps the run record');
      assert.deepEqual(await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]), []);

      const provisionMs = tDeployment - t0 + (tTestRun - tAvailable);
      console.log(
        `[figures] create request ${Math.round(t0 - tApply)} ms; stored → Deployment ${Math.round(tDeployment - t0)} ms; Deployment available (stand-in: real API start ${Math.round(tAvailable - tDeployment)} ms) → TestRun created ${Math.round(tTestRun - tAvailable)} ms; ` +
          `operator's share of apply → TestRun: ${Math.round(provisionMs)} ms (target < 2000 ms)`,
      );
      const analysed = condition(done, 'Analyzed')!.message!;
      const queryMs = Number(/queries in (\d+) ms/.exec(analysed)?.[1] ?? 0);
      console.log(`[figures] TestRun finished → summary in status ${Math.round(tSummary - finishedAt!)} ms, of which ${queryMs} ms querying (${queries} range queries to the fake Prometheus); without queries ${Math.round(tSummary - finishedAt! - queryMs)} ms (target < 5000 ms)`);
    } finally {
      await api?.process.stop();
    }
  });

  it('runs a scaling study: the whole load once per replica count, the Deployment scaled between runs, each run its own; the USL fit in status (test stands in for kubelet and k6-operator)', async () => {
    const name = 'study';
    const counts = [1, 2, 4];
    // The API in the model scales by the Universal Scalability Law; every count is pushed past its capacity (the 400 rps hold).
    const truth = { lambda: 100, sigma: 0.1, kappa: 0.02 };
    const created = await create(name, stagesSpec({ scaling: { replicas: counts } }), { kind: 'db-pool', source: 'kubernetes', capacityRps: truth.lambda, capacityAt: (n) => uslCapacity(truth, n) });
    const runPrefix = `r1-${uidTag(created.metadata.uid!)}`;
    const model = models.get(name)!;
    const testRuns: string[] = [];
    const windows: Model['checkpoints'] = [];
    for (const [position, replicas] of counts.entries()) {
      const runId = `${runPrefix}-n${replicas}`;
      const provisioning = await waitForStatus(name, `run ${runId} provisioning`, (object) => object.status?.runId === runId && object.status.phase === 'Provisioning');
      assert.equal(provisioning.status!.scaling?.position, position);
      assert.equal(provisioning.status!.timeline, undefined, 'each count has its own timeline');
      const { deployment } = await actAsKubelet(name, { runId });
      assert.equal(deployment.spec.replicas, replicas, `the Deployment of ${runId} runs ${replicas} replicas`);
      model.checkpoints = [];
      testRuns.push((await actAsK6Operator(name, 0, runStartFor(model))).testRun);
      windows.push(model.checkpoints[0]!);
      if (position > 0) {
        // The count before's TestRun went once it was analysed (spec.cleanup onSuccess), this one's is its own.
        assert.equal(await admin.get(RESOURCES.testRuns, NS, testRuns[position - 1]!).then(() => 'exists', (error) => (isNotFound(error) ? 'gone' : String(error))), 'gone');
      }
    }
    const done = await waitForPhase(name, 'Succeeded');
    const scaling = done.status!.scaling!;
    assert.deepEqual(scaling.runs.map((run) => [run.replicas, run.runId, run.saturated, run.bottleneck]), counts.map((n) => [n, `${runPrefix}-n${n}`, true, 'db-pool']));
    for (const [index, run] of scaling.runs.entries()) {
      // Its load's window, as the stand-in for k6-operator ran it (TestRun condition times: whole seconds).
      const ran = windows[index]!;
      assert.ok(Math.abs(Date.parse(run.loadStart!) - Date.parse(ran.startTime!)) < 1000 && Math.abs(Date.parse(run.loadEnd!) - Date.parse(ran.endTime!)) < 1000, `${run.loadStart} → ${run.loadEnd}; ran ${ran.startTime} → ${ran.endTime}`);
      const expected = uslCapacity(truth, run.replicas);
      assert.ok(Math.abs(run.capacityRps! / expected - 1) < 0.03, `${run.replicas} replicas: capacity ${run.capacityRps} rps, the model's ${expected.toFixed(1)}`);
    }
    // Three points, three parameters: the fit recovers the model's.
    const fit = scaling.fit!;
    assert.ok(Math.abs(fit.sigma - truth.sigma) < 0.03 && Math.abs(fit.kappa - truth.kappa) < 0.01, JSON.stringify(fit));
    const peak = Math.sqrt((1 - truth.sigma) / truth.kappa);
    assert.ok(Math.abs(fit.peakReplicas! / peak - 1) < 0.15, `N* ${fit.peakReplicas} vs the model's ${peak.toFixed(2)}`);
    assert.ok(Math.abs(scaling.predictedMaxRps! / uslCapacity(truth, peak) - 1) < 0.05);
    assert.equal(scaling.position, counts.length - 1);
    const succeeded = condition(done, 'Succeeded')!;
    assert.equal(succeeded.reason, 'ScalingFitted');
    assert.match(succeeded.message!, /scaling study of 3 replica counts: σ [\d.]+, κ [\d.]+, capacity peaks at N\* ≈ [\d.]+ replicas/);
    assert.match(condition(done, 'SloMet')!.message!, /^at the last count, 4 replicas: /);
    assert.equal(done.status!.summary?.bottleneck, 'db-pool', "status.summary is the last count's");
    // Each Event is recorded just after the status write it reports: the last one may come after the phase.
    await waitForEvent(name, 'ScalingFitted', (event) => event.reason === 'ScalingFitted');
    const events = await eventsOf(name);
    assert.deepEqual(events.filter((event) => event.reason === 'ScalingCountAnalyzed').map((event) => event.note.split(':')[0]).sort(), ['count 1 of 3, 1 replica', 'count 2 of 3, 2 replicas']);
    assert.equal(events.filter((event) => event.reason === 'ScalingFitted').length, 1);
    await waitFor('cleanup', async () => ((await children(name)).testRuns.length === 0 && (await children(name)).deployments.length === 0 ? true : undefined));
  });

  it('starts a new run when a finished experiment is edited, keeping the previous summary (test stands in for kubelet and k6-operator)', async () => {
    const name = 'staged';
    const before = await get(name);
    const previousRun = before.status!.runId!;
    // The new run is compared with the one before the edit (spec.baseline.previousRun).
    await admin.mergePatch(RESOURCES.loadExperiments, NS, name, { spec: { target: { replicas: 2 }, baseline: { previousRun: true } } });
    const pending = await waitForStatus(name, 'a new run', (object) => object.status?.observedGeneration === 2 && object.status.runId !== previousRun);
    assert.equal(pending.status!.previousSummary?.runId, previousRun);
    assert.equal(pending.status!.previousSummary?.devicesAtBreak, 6000);
    assert.equal(pending.status!.previousSummary?.phase, 'Succeeded');
    assert.equal(pending.status!.summary, undefined);
    assert.equal(pending.status!.timeline, undefined);
    const runId = pending.status!.runId!;
    assert.equal(runId, `r2-${runId.split('-')[1]}`);
    const { deployment } = await actAsKubelet(name, { runId });
    assert.equal(deployment.spec.replicas, 2);
    const model = models.get(name)!;
    model.checkpoints = [];
    await actAsK6Operator(name, 0, runStartFor(model));
    const done = await waitForPhase(name, 'Succeeded');
    assert.equal(done.status!.summary?.devicesAtBreak, 6000);
    assert.equal(done.status!.previousSummary?.runId, previousRun, 'still the run before the edit');

    // Compared with the run before the edit from the record the operator kept of it (its spec, and
    // so its windows, are gone); the records rotated. loadlab compare --previous says the same.
    const comparison = done.status!.comparison!;
    assert.equal(comparison.baseline, `${NS}/${name} run ${previousRun} (previous run)`);
    const regressed = condition(done, 'Regressed')!;
    assert.equal(regressed.status, comparison.regressed ? 'True' : 'False', regressed.message);
    const record = await admin.get<KubeObject>(RESOURCES.configMaps, NS, `${name}-runs`);
    assert.deepEqual([record.metadata.annotations?.['loadlab.dev/current-run'], record.metadata.annotations?.['loadlab.dev/previous-run']], [runId, previousRun]);
    const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'compare', '--previous', `${NS}/${name}`, `${NS}/${name}`, '--prometheus', fake.url, '--format', 'json'], { env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, PROMETHEUS_URL: '' }, timeout: 60_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
    });
    assert.equal(cli.code, comparison.regressed ? 99 : 0, cli.stderr);
    const shown = JSON.parse(cli.stdout) as { baseline: { label: string }; regressions: string[]; improvements: string[] };
    assert.equal(shown.baseline.label, comparison.baseline);
    assert.deepEqual(shown.regressions.slice(0, 5), comparison.worse, 'the CLI and the operator agree');
    assert.deepEqual(shown.improvements.slice(0, 5), comparison.better);
    await waitForEvent(name, 'RunStarted for generation 2', (event) => event.reason === 'RunStarted' && event.note.includes('generation 2'));
  });

  it('runs a breaking-point search as one TestRun per step and stops at the first step that breaks (test moves each TestRun like k6-operator)', async () => {
    const name = 'search';
    await create(name, {
      fleet: { devices: 10000, reportInterval: '30s', pollInterval: '30s' },
      load: { search: { startDevices: 3000, step: { devices: 1000 }, maxDevices: 10000, hold: '150s', rampUp: '30s' } },
      timeout: '1h',
      cleanup: 'never',
    });
    await actAsKubelet(name);
    const model = models.get(name)!;
    const start = runStartFor(model);
    for (const unit of [0, 1, 2, 3]) {
      await actAsK6Operator(name, unit, start);
      if (unit < 3) await waitForStatus(name, `step ${unit + 1} judged`, (object) => object.status?.timeline?.[unit]?.outcome === 'Held');
    }
    const done = await waitForPhase(name, 'Succeeded');
    const timeline = done.status!.timeline!;
    assert.deepEqual(timeline.map((checkpoint) => checkpoint.outcome), ['Held', 'Held', 'Held', 'Broke']);
    assert.equal(done.status!.summary?.devicesAtBreak, 6000, done.status!.summary?.verdict);
    assert.equal(done.status!.summary?.bottleneck, 'db-pool');
    assert.equal(condition(done, 'LoadComplete')?.reason, 'SearchStopped');
    assert.equal(condition(done, 'SloMet')?.status, 'True', 'a search that found its breaking point, no floor set: the gate passes');
    assert.equal(condition(done, 'SloMet')?.reason, 'HeldAboveFloor');
    const left = await children(name);
    assert.equal(left.testRuns.length, 4, 'steps 5 to 8 never ran');
    assert.deepEqual(left.testRuns.map((testRun) => testRun.metadata.labels?.['loadlab.dev/run']).sort(), [0, 1, 2, 3].map((step) => `${done.status!.runId}-s${step}`));
    const kept = await waitForStatus(name, 'cleanup decided', (object) => !!condition(object, 'CleanedUp'));
    assert.equal(condition(kept, 'CleanedUp')?.reason, 'KeptByPolicy', 'cleanup: never');
  });

  it('carries a search across a kube-apiserver restart with etcd compacted past its watches (they get 410 Gone and list again): finished once, no duplicate children', async () => {
    const name = 'apiserver-restart';
    await create(name, {
      fleet: { devices: 10000, reportInterval: '30s', pollInterval: '30s' },
      load: { search: { startDevices: 3000, step: { devices: 1000 }, maxDevices: 10000, hold: '150s', rampUp: '30s' } },
      timeout: '1h',
      cleanup: 'never',
    });
    await actAsKubelet(name);
    const model = models.get(name)!;
    const start = runStartFor(model);
    await actAsK6Operator(name, 0, start);
    await waitForStatus(name, 'step 1 judged', (object) => object.status?.timeline?.[0]?.outcome === 'Held');
    // Writes the operator does not watch move etcd's revision past anything its watches saw; the
    // compaction then removes the history they would resume from.
    for (let i = 0; i < 3; i++) await cp.kubectl(['create', 'configmap', `revision-bump-${i}`, '-n', NS]);
    const seen = Number((await get(name)).metadata.resourceVersion);
    const restartedAt = performance.now();
    const { compactedRevision } = await cp.restartApiserver({ compactEtcd: true });
    assert.ok(compactedRevision! > seen, `compacted at ${compactedRevision}, past the experiment's resource version ${seen}`);
    // Ready is not yet serving every resource: until its watch cache is filled, the apiserver
    // answers 429 "storage is (re)initializing" with Retry-After 1.
    let gone = await cp.getRaw(`/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments?watch=1&resourceVersion=${seen}&timeoutSeconds=1`);
    for (let tries = 0; /"code":429/.test(gone.body) && tries < 30; tries++) {
      await sleep(500);
      gone = await cp.getRaw(`/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments?watch=1&resourceVersion=${seen}&timeoutSeconds=1`);
    }
    assert.match(gone.body, /"code":410/, 'a watch from before the compaction is answered 410 Gone');
    for (const unit of [1, 2, 3]) {
      await actAsK6Operator(name, unit, start);
      if (unit < 3) await waitForStatus(name, `step ${unit + 1} judged`, (object) => object.status?.timeline?.[unit]?.outcome === 'Held');
    }
    const done = await waitForPhase(name, 'Succeeded');
    console.log(`[figures] kube-apiserver restart + etcd compaction mid-search: run finished ${((performance.now() - restartedAt) / 1000).toFixed(1)} s after the restart began`);
    assert.deepEqual(done.status!.timeline!.map((checkpoint) => checkpoint.outcome), ['Held', 'Held', 'Held', 'Broke']);
    assert.equal(done.status!.summary?.devicesAtBreak, 6000);
    const left = await children(name);
    assert.equal(left.testRuns.length, 4, 'one TestRun per step that ran, none twice');
    const events = await eventsOf(name);
    assert.equal(events.filter((event) => event.reason === 'RunStarted').length, 1, 'the run started once');
    assert.equal(events.filter((event) => event.reason === 'BreakingPointFound').length, 1, 'and finished once');
  });

  it('fails with the TestRun\'s reason when k6-operator reports stage error (stand-in), keeping the objects for inspection (cleanup onSuccess)', async () => {
    const name = 'broken';
    await create(name, stagesSpec());
    await actAsKubelet(name);
    const running = await waitForStatus(name, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
    const testRun = running.status!.timeline![0]!.name;
    await setTestRunStage(admin, NS, testRun, 'started');
    await setTestRunStage(admin, NS, testRun, 'error', { message: 'runner job loadlab-1 failed: OOMKilled' });
    const failed = await waitForPhase(name, 'Failed');
    assert.equal(condition(failed, 'Succeeded')?.reason, 'TestRunFailed');
    assert.match(condition(failed, 'Succeeded')!.message!, /OOMKilled/);
    const kept = await waitForStatus(name, 'cleanup decided', (object) => !!condition(object, 'CleanedUp'));
    assert.equal(condition(kept, 'CleanedUp')?.reason, 'KeptByPolicy');
    const left = await children(name);
    assert.equal(left.deployments.length, 1);
    await waitForEvent(name, 'TestRunFailed', (event) => event.type === 'Warning' && event.reason === 'TestRunFailed');
  });

  it('fails with Timeout when the run exceeds spec.timeout, stopping the load (the TestRun is deleted; test never starts it)', async () => {
    const name = 'slow';
    await create(name, { ...stagesSpec(), load: { stages: [{ devices: 100, duration: '2s' }] }, timeout: '5s', cleanup: 'never' });
    await actAsKubelet(name);
    const running = await waitForStatus(name, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
    const testRun = running.status!.timeline![0]!.name;
    const failed = await waitForPhase(name, 'Failed', 15_000);
    assert.equal(condition(failed, 'Succeeded')?.reason, 'Timeout');
    assert.match(condition(failed, 'Succeeded')!.message!, /spec\.timeout \(5s\)/);
    assert.equal(failed.status!.timeline![0]!.outcome, 'Stopped');
    await assert.rejects(admin.get(RESOURCES.testRuns, NS, testRun), /not found/, 'the load was stopped even with cleanup: never');
  });

  it('fails with TestRunNotStarted when nothing starts its TestRun within LOAD_START_TIMEOUT_SECONDS, stopping it (test never starts it)', async () => {
    await restartOperator({ LOAD_START_TIMEOUT_SECONDS: '3' });
    try {
      const name = 'never-started';
      await create(name, { ...stagesSpec(), load: { stages: [{ devices: 100, duration: '2s' }] }, timeout: '10m', cleanup: 'never' });
      await actAsKubelet(name);
      const running = await waitForStatus(name, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
      const testRun = running.status!.timeline![0]!.name;
      const failed = await waitForPhase(name, 'Failed', 15_000); // spec.timeout is 10 minutes
      assert.equal(condition(failed, 'Succeeded')?.reason, 'TestRunNotStarted');
      assert.match(condition(failed, 'Succeeded')!.message!, new RegExp(`TestRun ${testRun} has not started its load within 3 s of when it was due \\(the operator's LOAD_START_TIMEOUT_SECONDS\\): is k6-operator installed and running`));
      await assert.rejects(admin.get(RESOURCES.testRuns, NS, testRun), /not found/, 'the TestRun was deleted even with cleanup: never');
    } finally {
      await restartOperator();
    }
  });

  it('stops the load of a running run when an edit passes the CRD but not the operator\'s checks (InvalidSpec)', async () => {
    const name = 'edited-invalid';
    await create(name, { ...stagesSpec(), cleanup: 'never' });
    await actAsKubelet(name);
    const running = await waitForStatus(name, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
    const testRun = running.status!.timeline![0]!.name;
    // A search longer than its timeout: the CRD cannot check it (CEL has no logarithm), the operator can.
    await admin.mergePatch(RESOURCES.loadExperiments, NS, name, { spec: { fleet: { devices: 100 }, load: { stages: null, search: { startDevices: 10, step: { factor: 1.5 }, maxDevices: 100 } }, timeout: '5m' } });
    const failed = await waitForStatus(name, 'Failed for generation 2', (object) => object.status?.phase === 'Failed' && object.status.observedGeneration === 2);
    assert.equal(condition(failed, 'Succeeded')?.reason, 'InvalidSpec');
    assert.match(condition(failed, 'Succeeded')!.message!, new RegExp(`spec\\.timeout: must be at least the planned duration of the search.*; the load of run ${running.status!.runId} was stopped \\(TestRun ${testRun} deleted\\)`));
    assert.equal(failed.status!.timeline![0]!.outcome, 'Stopped');
    await assert.rejects(admin.get(RESOURCES.testRuns, NS, testRun), /not found/, 'the load was stopped even with cleanup: never');
    const kept = await waitForStatus(name, 'CleanedUp', (object) => condition(object, 'CleanedUp') !== undefined);
    assert.equal(condition(kept, 'CleanedUp')?.reason, 'KeptByPolicy');
    assert.equal((await children(name)).deployments.length, 1, 'cleanup: never keeps the API');
  });

  it('cleans up a run ended by an invalid edit like any other end, per its spec.cleanup (always: the API, its Service and its schema go)', async () => {
    const name = 'edited-invalid-always';
    const created = await create(name, { ...stagesSpec(), cleanup: 'always' });
    await actAsKubelet(name);
    await waitForStatus(name, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
    const schema = databaseSchemaName(NS, name, created.metadata.uid!);
    assert.equal((await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema])).length, 1);
    await admin.mergePatch(RESOURCES.loadExperiments, NS, name, { spec: { fleet: { devices: 100 }, load: { stages: null, search: { startDevices: 10, step: { factor: 1.5 }, maxDevices: 100 } }, timeout: '5m' } });
    const cleaned = await waitForStatus(name, 'cleaned up after InvalidSpec', (object) => object.status?.phase === 'Failed' && condition(object, 'CleanedUp')?.status === 'True');
    assert.equal(condition(cleaned, 'Succeeded')?.reason, 'InvalidSpec');
    assert.match(condition(cleaned, 'CleanedUp')!.message!, new RegExp(`deployment/${name}-api.*service/${name}-api.*dropped database schema ${schema}`));
    const left = await children(name);
    assert.deepEqual([left.deployments, left.services, left.testRuns, left.configMaps].flat(), []);
    assert.deepEqual(await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]), [], 'its schema dropped');
  });

  it('waits for a fake Prometheus that answers 503, with backoff, then writes the summary once it is back', async () => {
    const name = 'outage';
    await create(name, stagesSpec({ cleanup: 'always' }));
    await actAsKubelet(name);
    prometheusDown = true;
    const requestsBefore = fake.requests.length;
    try {
      await actAsK6Operator(name, 0, runStartFor(models.get(name)!));
      const waiting = await waitForStatus(name, 'PrometheusUnavailable', (object) => condition(object, 'Analyzed')?.reason === 'PrometheusUnavailable');
      assert.equal(waiting.status!.phase, 'Analyzing');
      assert.equal(condition(waiting, 'Analyzed')!.status, 'Unknown');
      assert.match(condition(waiting, 'Analyzed')!.message!, /503/);
      await sleep(2500);
    } finally {
      prometheusDown = false;
    }
    const attempts = fake.requests.slice(requestsBefore).length;
    // Backoff: 50 ms doubling to 400 ms, a few queries per attempt: not a busy loop.
    assert.ok(attempts >= 3 && attempts < 200, `${attempts} requests while down`);
    const done = await waitForPhase(name, 'Succeeded');
    assert.equal(condition(done, 'Analyzed')?.status, 'True');
    assert.equal(done.status!.summary?.devicesAtBreak, 6000);
    await waitForEvent(name, 'Succeeded', (event) => event.reason === 'BreakingPointFound');
    assert.equal((await eventsOf(name)).filter((event) => event.reason === 'PrometheusUnavailable').length, 1, 'one Warning, not one per retry');
    console.log(`[figures] Prometheus outage: ${attempts} query attempts over ~2.5 s of 503s (per-key exponential backoff)`);
  });

  it('stops and restarts a running experiment whose spec is edited (test stands in for kubelet)', async () => {
    const name = 'edited';
    await create(name, stagesSpec({ cleanup: 'onSuccess' }));
    await actAsKubelet(name);
    const running = await waitForStatus(name, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
    const firstRun = running.status!.runId!;
    const firstTestRun = running.status!.timeline![0]!.name;
    await admin.mergePatch(RESOURCES.loadExperiments, NS, name, { spec: { slo: { latencyThreshold: '300ms' } } });
    const restarted = await waitForStatus(name, 'restarted', (object) => object.status?.observedGeneration === 2);
    assert.notEqual(restarted.status!.runId, firstRun);
    assert.equal(restarted.status!.previousSummary, undefined, 'an interrupted run has no summary to keep');
    await waitFor('the old TestRun deleted', async () => !(await admin.get(RESOURCES.testRuns, NS, firstTestRun).then(() => true, () => false)));
    const event = await waitForEvent(name, 'RunRestarted', (entry) => entry.reason === 'RunRestarted');
    assert.match(event!.note, new RegExp(`while run ${firstRun} was Running: stopped it and started run ${restarted.status!.runId}`));
    await actAsKubelet(name, { runId: restarted.status!.runId! });
    await waitForStatus(name, 'the new TestRun', (object) => object.status?.phase === 'Running' && (object.status.timeline?.length ?? 0) > 0);
  });

  it('on deletion mid-run, the finalizer drops the experiment\'s schema and role, never the one its status names; the children are owned by it (no garbage collector runs here)', async () => {
    const name = 'edited';
    const object = await get(name);
    const schema = databaseSchemaName(NS, name, object.metadata.uid!);
    assert.equal(object.status!.databaseSchema, schema, 'status shows the derived name');
    assert.equal((await sql(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1`, [schema]))[0]!.n, 1);
    // Whoever may write the status subresource aims the drop elsewhere: a schema and role of the
    // same name that belong to someone else.
    const decoy = 'loadlab_decoy';
    await sql(`CREATE ROLE ${decoy}`);
    await sql(`CREATE SCHEMA ${decoy} AUTHORIZATION ${decoy}`);
    await sql(`CREATE TABLE ${decoy}.precious (id int)`);
    const tampered = await admin.mergePatch<ExperimentObject>(RESOURCES.loadExperiments, NS, name, { status: { databaseSchema: decoy } }, 'status');
    assert.equal(tampered.status?.databaseSchema, decoy);
    await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/${name}`);
    await waitFor('the experiment gone', async () => !(await get(name).then(() => true, () => false)));
    assert.deepEqual(await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]), []);
    assert.deepEqual(await sql(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [schema]), []);
    assert.deepEqual(await sql(`SELECT count(*)::int AS n FROM ${decoy}.precious`), [{ n: 0 }], 'the schema status named is untouched');
    assert.equal((await sql(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1`, [decoy]))[0]!.n, 1, 'and its role');
    await sql(`DROP SCHEMA ${decoy} CASCADE`);
    await sql(`DROP ROLE ${decoy}`);
    const left = await children(name);
    const owned = [...left.testRuns, ...left.configMaps, ...left.deployments, ...left.services];
    assert.ok(owned.length >= 4);
    for (const child of owned) {
      assert.deepEqual(child.metadata.ownerReferences?.map((owner) => [owner.kind, owner.uid, owner.controller]), [['LoadExperiment', object.metadata.uid, true]], `${child.kind} ${child.metadata.name}`);
    }
  });

  it('a status rewritten in every field the operator reads changes nothing outside its experiment: another experiment\'s objects, schema, role, data and status stay as they were', async () => {
    // The victim: provisioned and running, with its TestRun, ConfigMap, Deployment, Service, Secret, schema and role.
    const victim = 'victim';
    const victimObject = await create(victim, { ...stagesSpec(), cleanup: 'always' });
    await actAsKubelet(victim);
    const running = await waitForStatus(victim, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
    const victimSchema = databaseSchemaName(NS, victim, victimObject.metadata.uid!);
    const victimChildren = await children(victim);
    const uidsBefore = [victimChildren.testRuns, victimChildren.configMaps, victimChildren.deployments, victimChildren.services].flat().map((child) => `${child.kind}/${child.metadata.name}/${child.metadata.uid}`).sort();
    const devicesBefore = await sql(`SELECT count(*)::int AS n FROM "${victimSchema}".device`);

    // The attacker may write its own experiment's status subresource, and aims every field the operator reads at the victim.
    const attacker = 'attacker';
    const attackerObject = await create(attacker, { ...stagesSpec(), cleanup: 'always' });
    await waitForPhase(attacker, 'Provisioning');
    const victimTimeline = running.status!.timeline!;
    const now = new Date().toISOString();
    const forged = {
      phase: 'Succeeded',
      observedGeneration: 1,
      runId: running.status!.runId!,
      startTime: '2020-01-01T00:00:00Z',
      completionTime: now,
      databaseSchema: victimSchema,
      timeline: [
        ...victimTimeline.map((checkpoint) => ({ ...checkpoint })),
        { unit: 7, kind: 'Job', name: `${victim}-api`, uid: victimChildren.deployments[0]!.metadata.uid, phases: { from: 0, to: 1 } },
      ],
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Forged', message: 'forged', lastTransitionTime: now, observedGeneration: 1 }],
      summary: { verdict: 'forged', outcome: 'held' },
      previousSummary: { runId: running.status!.runId!, generation: 0, phase: 'Succeeded', verdict: 'forged' },
    };
    await admin.mergePatch(RESOURCES.loadExperiments, NS, attacker, { status: forged }, 'status');
    // The operator acts on it: a "finished" run with cleanup always is cleaned up, and then the attacker is deleted (finalizer).
    await waitForStatus(attacker, 'its forged run cleaned up', (object) => condition(object, 'CleanedUp') !== undefined, 20_000);
    await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/${attacker}`);
    await waitFor(`${attacker} deleted`, async () => !(await get(attacker).then(() => true, () => false)));

    const after = await children(victim);
    assert.deepEqual([after.testRuns, after.configMaps, after.deployments, after.services].flat().map((child) => `${child.kind}/${child.metadata.name}/${child.metadata.uid}`).sort(), uidsBefore, 'the victim\'s objects, same uids');
    assert.deepEqual(await sql(`SELECT count(*)::int AS n FROM "${victimSchema}".device`), devicesBefore, 'its data');
    assert.equal((await sql(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [victimSchema])).length, 1, 'its role');
    const victimNow = await get(victim);
    assert.equal(victimNow.status?.phase, 'Running');
    assert.equal(victimNow.status?.runId, running.status!.runId);
    // The attacker's own schema and role, derived from its own uid, are what went.
    const attackerSchema = databaseSchemaName(NS, attacker, attackerObject.metadata.uid!);
    assert.deepEqual(await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [attackerSchema]), []);
    await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/${victim}`);
    await waitFor(`${victim} deleted`, async () => !(await get(victim).then(() => true, () => false)));
  });

  it('adopts the TestRun of an attempt whose status write was lost, instead of failing or creating a second one (test stands in for kubelet)', async () => {
    const name = 'lost-write';
    await create(name, stagesSpec());
    await waitForPhase(name, 'Provisioning');
    await actAsKubelet(name);
    const running = await waitForStatus(name, 'TestRun created', (object) => (object.status?.timeline?.length ?? 0) === 1);
    const created = running.status!.timeline![0]!;
    await operator!.stop({ release: false });
    // The status as it was before the write that recorded the TestRun: still Provisioning, no
    // timeline, as if the operator had died between creating the TestRun and writing its status.
    const { timeline: _lost, ...before } = running.status!;
    await admin.replace(RESOURCES.loadExperiments, NS, name, { ...running, status: { ...before, phase: 'Provisioning' } }, 'status');
    assert.equal((await get(name)).status?.timeline, undefined);
    operator = await startOperator();
    const adopted = await waitForStatus(name, 'the TestRun recorded again', (object) => object.status?.phase === 'Running' && (object.status?.timeline?.length ?? 0) === 1);
    assert.equal(adopted.status!.timeline![0]!.name, created.name);
    assert.equal(adopted.status!.timeline![0]!.uid, created.uid, 'the same TestRun, adopted');
    assert.notEqual(condition(adopted, 'Succeeded')?.reason, 'NameConflict');
    const left = await children(name);
    assert.equal(left.testRuns.length, 1, 'no second TestRun');
    assert.equal(left.configMaps.length, 1, 'no second script ConfigMap');
  });

  it('finishes a run across operator restarts in every phase, without duplicate children or a lost timeline (test stands in for kubelet and k6-operator)', async () => {
    const name = 'restarts';
    const search = {
      fleet: { devices: 10000, reportInterval: '30s', pollInterval: '30s' },
      load: { search: { startDevices: 3000, step: { devices: 1000 }, maxDevices: 10000, hold: '150s', rampUp: '30s' } },
      timeout: '1h',
      cleanup: 'never',
    };
    // Pending: the first operator cannot reach the database and stays in Pending.
    await operator!.stop();
    operator = await startOperator({ DATABASE_URL: `postgres://loadlab@127.0.0.1:${await freePort()}/loadlab` });
    await create(name, search);
    await waitForPhase(name, 'Pending');
    await sleep(300);
    assert.equal((await get(name)).status?.phase, 'Pending');
    await restartOperator();

    // Provisioning: stopped while waiting for the Deployment, which becomes available meanwhile.
    await waitForPhase(name, 'Provisioning');
    const deploymentUid = (await waitFor('Deployment', () => admin.get(RESOURCES.deployments, NS, `${name}-api`).catch(() => undefined))).metadata.uid;
    await operator!.stop({ release: false });
    await actAsKubelet(name);
    operator = await startOperator();

    // Running, TestRun created: stopped; k6-operator starts it meanwhile.
    const model = models.get(name)!;
    const start = runStartFor(model);
    const first = await waitForStatus(name, 'step 1 TestRun', (object) => (object.status?.timeline?.length ?? 0) === 1);
    await operator!.stop({ release: false });
    await actAsK6Operator(name, 0, start, { waitForStart: false, finish: false });
    operator = await startOperator();
    await waitForStatus(name, 'step 1 start recorded after the restart', (object) => !!object.status?.timeline?.[0]?.startTime);

    // Running, started: stopped; k6-operator finishes it meanwhile.
    await operator!.stop({ release: false });
    const { start: s0, end: e0 } = unitTimes(model, 0, start);
    await setTestRunStage(admin, NS, first.status!.timeline![0]!.name, 'finished', { at: e0 });
    // Between steps with Prometheus down: the step cannot be judged yet.
    prometheusDown = true;
    operator = await startOperator();
    await waitForStatus(name, 'step 1 ended, judging', (object) => !!object.status?.timeline?.[0]?.endTime && condition(object, 'Analyzed')?.reason === 'PrometheusUnavailable');
    await restartOperator();
    prometheusDown = false;

    // Steps 2 and 3; a restart right after step 2 is created, before k6-operator saw it.
    await waitForStatus(name, 'step 2 TestRun', (object) => (object.status?.timeline?.length ?? 0) === 2);
    await restartOperator();
    await actAsK6Operator(name, 1, start);
    await actAsK6Operator(name, 2, start);
    // Step 4 skips "started" while the operator is down: its start is then the end minus the planned duration.
    await waitForStatus(name, 'step 4 TestRun', (object) => (object.status?.timeline?.length ?? 0) === 4);
    await operator!.stop({ release: false });
    const step4 = (await get(name)).status!.timeline![3]!;
    const { start: s3, end: e3 } = unitTimes(model, 3, start);
    await setTestRunStage(admin, NS, step4.name, 'finished', { at: e3 });
    model.checkpoints.push({ unit: 3, kind: step4.kind, name: step4.name, phases: step4.phases, startTime: s3.toISOString(), endTime: e3.toISOString() });

    // Analyzing with Prometheus down: it answers the step's judgement, then fails; the operator is
    // stopped and restarted there, then Prometheus comes back.
    prometheusBudget = buildCatalog({ selector: 'x="y"', source: 'kubernetes', rateWindowS: RATE_WINDOW_S }).length;
    operator = await startOperator();
    await waitForStatus(name, 'Analyzing, Prometheus down', (object) => object.status?.phase === 'Analyzing' && condition(object, 'Analyzed')?.reason === 'PrometheusUnavailable');
    await restartOperator();
    prometheusBudget = undefined;
    const done = await waitForPhase(name, 'Succeeded');

    // Succeeded: one more restart changes nothing.
    await waitForStatus(name, 'cleanup decided', (object) => !!condition(object, 'CleanedUp'));
    const settled = await get(name);
    await restartOperator();
    await sleep(500);
    assert.equal((await get(name)).metadata.resourceVersion, settled.metadata.resourceVersion, 'a restarted operator writes nothing to a finished experiment');

    const timeline = done.status!.timeline!;
    assert.deepEqual(timeline.map((checkpoint) => checkpoint.outcome), ['Held', 'Held', 'Held', 'Broke']);
    assert.equal(timeline[0]!.startTime, s0.toISOString().replace(/\.\d{3}Z$/, 'Z'), 'step 1: the start k6-operator recorded while the operator was down');
    assert.equal(Date.parse(timeline[3]!.startTime!), Date.parse(s3.toISOString().replace(/\.\d{3}Z$/, 'Z')), 'step 4: end minus the planned duration');
    assert.equal(done.status!.summary?.devicesAtBreak, 6000);
    const left = await children(name);
    assert.equal(left.testRuns.length, 4, 'one TestRun per step, none twice');
    assert.equal(left.configMaps.length, 4);
    assert.equal(left.deployments.length, 1);
    assert.equal(left.deployments[0]!.metadata.uid, deploymentUid, 'the Deployment was never re-created');
    for (const [index, checkpoint] of timeline.entries()) {
      assert.equal(left.testRuns.find((testRun) => testRun.metadata.name === checkpoint.name)?.metadata.uid, checkpoint.uid, `step ${index + 1}`);
    }
    const names = (await eventsOf(name)).map((event) => event.name);
    assert.equal(new Set(names).size, names.length);
  });

  it('never takes over or deletes an unlabelled <name>-api Deployment or Service somebody else made: NameConflict, left unchanged through cleanup and deletion', async () => {
    const foreignDeployment = await admin.create<KubeObject>(RESOURCES.deployments, NS, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'squatted-api' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'theirs' } }, template: { metadata: { labels: { app: 'theirs' } }, spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } } },
    });
    const foreignService = await admin.create<KubeObject>(RESOURCES.services, NS, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'squatted-svc-api' },
      spec: { selector: { app: 'theirs' }, ports: [{ port: 80 }] },
    });
    const cases = [
      { name: 'squatted', resource: RESOURCES.deployments, foreign: foreignDeployment },
      { name: 'squatted-svc', resource: RESOURCES.services, foreign: foreignService },
    ];
    for (const { name } of cases) await create(name, stagesSpec({ cleanup: 'always' }));
    for (const { name, resource, foreign } of cases) {
      const failed = await waitForPhase(name, 'Failed');
      for (const type of ['Succeeded', 'ApiReady']) {
        assert.equal(condition(failed, type)?.reason, 'NameConflict', type);
        assert.match(condition(failed, type)!.message!, new RegExp(`a ${resource.kind} named ${NS}/${name}-api already exists and does not belong to LoadExperiment ${name} \\(uid ${failed.metadata.uid}\\): it has no owner;`));
      }
      await waitForEvent(name, 'NameConflict', (event) => event.reason === 'NameConflict' && event.type === 'Warning');
      const cleaned = await waitForStatus(name, 'cleanup decided', (object) => !!condition(object, 'CleanedUp'));
      assert.match(condition(cleaned, 'CleanedUp')!.message!, new RegExp(`left ${resource.kind.toLowerCase()}/${name}-api alone`));
      const after = await admin.get(resource, NS, `${name}-api`);
      assert.equal(after.metadata.resourceVersion, foreign.metadata.resourceVersion, `${resource.kind} ${name}-api unchanged`);
      assert.deepEqual(after.metadata.labels, undefined);
      assert.deepEqual(after.metadata.ownerReferences, undefined);
    }
    assert.equal(await admin.get(RESOURCES.deployments, NS, 'squatted-svc-api').catch(() => undefined), undefined, 'nothing applied next to a foreign Service');
    assert.equal(await admin.get(RESOURCES.services, NS, 'squatted-api').catch(() => undefined), undefined, 'nothing applied next to a foreign Deployment');

    for (const { name } of cases) {
      await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/${name}`);
      await waitFor(`${name} deleted`, async () => !(await get(name).then(() => true, () => false)));
    }
    for (const { name, resource, foreign } of cases) {
      const after = await admin.get(resource, NS, `${name}-api`);
      assert.equal(after.metadata.uid, foreign.metadata.uid, `${resource.kind} ${name}-api still there`);
      assert.equal(after.metadata.resourceVersion, foreign.metadata.resourceVersion);
      await admin.delete(resource, NS, `${name}-api`);
    }
  });

  it('deletes only objects it owns when a run is superseded, whatever names and uids its status timeline was given', async () => {
    // Somebody else's Job and ConfigMap in the namespace (the Job is only stored: no controller runs here).
    const foreignJob = await admin.create<KubeObject>(RESOURCES.jobs, NS, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'precious' },
      spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'work', image: 'busybox:1.36' }] } } },
    });
    const foreignConfigMap = await admin.create<KubeObject>(RESOURCES.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'precious' }, data: { keep: 'me' } });
    const name = 'tampered';
    await create(name, stagesSpec());
    await waitForPhase(name, 'Provisioning'); // and stays there: no kubelet makes its API available
    // Whoever may write the status subresource points the run's timeline at them, uid included.
    await admin.mergePatch(RESOURCES.loadExperiments, NS, name, { status: { timeline: [{ unit: 0, kind: 'Job', name: 'precious', uid: foreignJob.metadata.uid, phases: { from: 0, to: 1 } }] } }, 'status');
    // An edit supersedes the run: the operator stops its load and deletes its load objects and ConfigMaps.
    await admin.mergePatch(RESOURCES.loadExperiments, NS, name, { spec: { slo: { latencyThreshold: '300ms' } } });
    await waitForStatus(name, 'the new run started', (object) => object.status?.observedGeneration === 2);
    assert.equal((await admin.get(RESOURCES.jobs, NS, 'precious')).metadata.uid, foreignJob.metadata.uid, 'the foreign Job is still there');
    assert.equal((await admin.get(RESOURCES.configMaps, NS, 'precious')).metadata.uid, foreignConfigMap.metadata.uid, 'the foreign ConfigMap is still there');
    await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/${name}`);
    await waitFor(`${name} deleted`, async () => !(await get(name).then(() => true, () => false)));
    await admin.delete(RESOURCES.jobs, NS, 'precious');
    await admin.delete(RESOURCES.configMaps, NS, 'precious');
  });

  it('works with a database admin that is not a superuser (LOGIN CREATEROLE, CREATE on the database): provisions, prepares, cleans up and drops the experiment\'s schema and role', async () => {
    await sql(`CREATE ROLE loadlab_admin LOGIN CREATEROLE NOSUPERUSER PASSWORD 'admin-test-password'`);
    await sql('GRANT CREATE ON DATABASE loadlab TO loadlab_admin');
    const url = new URL(postgres.url);
    url.username = 'loadlab_admin';
    url.password = 'admin-test-password';
    await restartOperator({ DATABASE_URL: url.toString() });
    try {
      const name = 'non-superuser';
      const created = await create(name, { ...stagesSpec(), cleanup: 'always' });
      const schema = databaseSchemaName(NS, name, created.metadata.uid!);
      await actAsKubelet(name).catch(async (error: Error) => {
        throw new Error(`${error.message}; status: ${JSON.stringify((await get(name)).status)}; log: ${logs.slice(-5).join('\n')}`);
      });
      await waitForStatus(name, 'TestRun', (object) => (object.status?.timeline?.length ?? 0) > 0);
      assert.deepEqual(await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".device`), [{ n: 6000 }], 'prepared as the non-superuser admin');
      assert.deepEqual(await sql('SELECT rolsuper FROM pg_roles WHERE rolname = current_user'), [{ rolsuper: true }], 'the test itself is the superuser');
      // Finish the run as k6-operator would, then delete it: cleanup and finalizer as the non-superuser.
      await actAsK6Operator(name, 0, runStartFor(models.get(name)!));
      await waitForStatus(name, 'cleaned up', (object) => condition(object, 'CleanedUp')?.status === 'True', 30_000);
      await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/${name}`);
      await waitFor(`${name} deleted`, async () => !(await get(name).then(() => true, () => false)));
      assert.deepEqual(await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]), [], 'its schema dropped');
      assert.deepEqual(await sql(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [schema]), [], 'its role dropped');
    } finally {
      await restartOperator();
    }
  });

  it('keeps a deleted experiment while the database is unreachable, says so in a Warning event, and finishes once it is back', async () => {
    const name = 'db-away';
    const created = await create(name, stagesSpec());
    await waitForPhase(name, 'Provisioning');
    const schema = databaseSchemaName(NS, name, created.metadata.uid!);
    assert.equal((await sql(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1`, [schema]))[0]!.n, 1);
    // The operator loses the database: nothing listens where its DATABASE_URL points now.
    const away = new URL(postgres.url);
    away.port = String(await freePort());
    await restartOperator({ DATABASE_URL: away.toString() });
    try {
      await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/${name}`);
      await waitForEvent(name, 'FinalizerBlocked', (event) => event.type === 'Warning' && event.reason === 'FinalizerBlocked');
      const blocked = (await eventsOf(name)).find((event) => event.reason === 'FinalizerBlocked')!;
      assert.match(blocked.note, new RegExp(`cannot reach the shared database \\(DATABASE_URL\\) at .*; retrying with backoff: the experiment stays until its schema and role ${schema} are dropped`));
      const password = decodeURIComponent(new URL(postgres.url).password);
      if (password) assert.ok(!blocked.note.includes(password), 'no password in the event');
      assert.ok((await get(name)).metadata.deletionTimestamp, 'still there, being deleted');
    } finally {
      await restartOperator();
    }
    await waitFor(`${name} gone once the database is back`, async () => !(await get(name).then(() => true, () => false)));
    assert.deepEqual(await sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]), []);
  });

  it('fails a spec the CRD cannot fully check (a search longer than its timeout: CEL has no logarithm) with InvalidSpec', async () => {
    const name = 'too-long';
    await create(name, {
      fleet: { devices: 100 },
      load: { search: { startDevices: 10, step: { factor: 1.5 }, maxDevices: 100 } },
      timeout: '5m',
    });
    const failed = await waitForPhase(name, 'Failed');
    assert.equal(condition(failed, 'Succeeded')?.reason, 'InvalidSpec');
    assert.match(condition(failed, 'Succeeded')!.message!, /spec\.timeout: must be at least the planned duration of the search/);
    assert.deepEqual((await children(name)).deployments, [], 'nothing was provisioned');
  });

  /** What the installation's policy (policy.ts, defaults) refuses that the CRD cannot know: InvalidSpec, nothing created, and `loadlab render` refuses it with the same words. */
  const REFUSED: { name: string; spec: Json; problem: RegExp }[] = [
    { name: 'too-many-connections', spec: { target: { replicas: 20, dbPoolSize: 10 } },
      problem: /spec\.target: 20 replicas x dbPoolSize 10 need up to 279 database connections .* allows 150 per experiment \(the operator's DATABASE_CONNECTIONS_PER_EXPERIMENT\): lower replicas or dbPoolSize/ },
    { name: 'foreign-image', spec: { target: { image: 'docker.io/someone/miner:latest' } },
      problem: /spec\.target\.image: docker\.io\/someone\/miner:latest is not an image this installation runs \(the operator's ALLOWED_API_IMAGES: loadlab\/api:dev\)/ },
    { name: 'own-tolerations', spec: { generator: { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] } },
      problem: /spec\.generator\.tolerations\[0\]: .* is not one this installation allows its load generators \(its GENERATOR_PLACEMENT tolerates nothing\)/ },
    { name: 'one-pod-flood', spec: { fleet: { devices: 1_000_000 }, load: { stages: [{ devices: 1_000_000, duration: '10s' }] } },
      problem: /spec\.generator\.parallelism: at its peak the plan offers 66,667 requests\/s, 66,667 per generator pod with parallelism 1; this installation allows 20,000 per pod \(the operator's MAX_REQUESTS_PER_SECOND_PER_GENERATOR\): set parallelism to at least 4/ },
    { name: 'huge-preload', spec: { fleet: { devices: 100_000 }, database: { preloadDays: 365 } },
      problem: /spec\.database\.preloadDays: 365 days for 100,000 devices reporting every 30s preload 105,120,000,000 rows; this installation allows 100,000,000 \(the operator's MAX_PRELOAD_ROWS\)/ },
    { name: 'no-load', spec: { fleet: { devices: 1, reportInterval: '24h', pollInterval: '24h' }, load: { stages: [{ devices: 1, duration: '10s' }] } },
      problem: /spec\.load: the plan offers 0\.\d+ requests in all .*: no load/ },
  ];

  it(`refuses what the installation's policy does not allow (${REFUSED.map((c) => c.name).join(', ')}) as InvalidSpec before creating anything; loadlab render refuses the same`, async () => {
    const base = { fleet: { devices: 10 }, load: { stages: [{ devices: 10, duration: '10s' }] } };
    const created = await Promise.all(REFUSED.map(({ name, spec }) => create(name, { ...base, ...spec })));
    for (const [index, { name, spec, problem }] of REFUSED.entries()) {
      const failed = await waitForPhase(name, 'Failed');
      assert.equal(condition(failed, 'Succeeded')?.reason, 'InvalidSpec', name);
      const message = condition(failed, 'Succeeded')!.message!;
      assert.match(message, /^refused by this installation's policy: /, name);
      assert.match(message, problem, name);
      const { deployments, configMaps, testRuns, services } = await children(name);
      assert.deepEqual([deployments, configMaps, testRuns, services].flat(), [], `${name}: nothing was created`);
      assert.deepEqual(await sql(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [databaseSchemaName(NS, name, created[index]!.metadata.uid!)]), [], `${name}: no role made`);

      const file = join(workDir, `${name}.json`);
      writeFileSync(file, JSON.stringify(manifest(name, { ...base, ...spec })));
      const cli = await new Promise<{ code: number; stderr: string }>((done) =>
        execFile(process.execPath, [CLI, 'render', file], { timeout: 30_000 }, (error, _stdout, stderr) => done({ code: error ? Number(error.code) : 0, stderr })),
      );
      assert.equal(cli.code, 2, `${name}: loadlab render exits 2`);
      assert.match(cli.stderr, problem, `${name}: loadlab render names the same problem`);
      assert.match(cli.stderr, /refused by the operator's default policy/);
    }
  });

  it('makes no API requests at all while idle without leader election (every experiment finished; its watches stay open)', async () => {
    await sleep(1000);
    const before = operator!.client.requestCount;
    const counts = new Map(operator!.client.counts);
    await sleep(5000);
    const made = Object.fromEntries([...operator!.client.counts].filter(([key, count]) => count !== counts.get(key)).map(([key, count]) => [key, count - (counts.get(key) ?? 0)]));
    console.log(`[figures] idle, leader election off, ${operator!.controller!.caches.experiments.list().length} experiments, all finished: ${operator!.client.requestCount - before} requests in 5 s ${JSON.stringify(made)}`);
    assert.equal(operator!.client.requestCount - before, 0, JSON.stringify(made));
  });
});
