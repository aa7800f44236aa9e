// The operator with spec.generator.engine: loadlab on a real kube-apiserver + etcd, a real
// PostgreSQL (the shared database) and a fake Prometheus serving the analysis' synthetic model
// with the driver's own series. k6-operator's TestRun CRD is NOT installed: the loadlab engine
// needs none, and an experiment on the k6 engine then fails saying so.
//
// What the tests stand in for, and say so in their names: the Job controller (each driver Job's
// status moved as kube-controller-manager moves it: running, then Complete or Failed) and the
// kubelet (the API's migrations applied with the Deployment's own DATABASE_URL, the Deployment
// marked available). The load "happens" without waiting for it: when the test completes a Job it
// advances the operator's clock (its injectable `now`) by the unit's planned duration, as if that
// much time had passed, as the TestRun tests backdate k6-operator's transitions.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCatalog, labelKey } from '../src/analysis/index.js';
import {
  analysisTimeline,
  createLogger,
  DATABASE_METRICS_SELECTOR,
  KubeClient,
  loadKubeConfig,
  loadOperatorConfig,
  Operator,
  resourceSelector,
  RESOURCES,
  runSelector,
  runUnits,
  type Checkpoint,
  type ExperimentObject,
  type JobObject,
  type KubeObject,
} from '../src/controller/index.js';
import { ANNOTATIONS } from '../src/contract/index.js';
import { EXPERIMENT_FILE } from '../src/driver-job/index.js';
import { loadExperimentCrd, loadExperimentSchema, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan, type TrafficPlan } from '../src/traffic/index.js';
import { startFakePrometheus, type FakeAnswer, type FakePrometheus, type FakeRequest } from './fixtures/analysis/fake-prometheus.js';
import { pointsAt, stateAt, type Scenario } from './fixtures/analysis/synthetic-run.js';
import { markDeploymentAvailable, setJobStatus, waitFor } from './support/stand-ins.js';
import { startPostgres } from './support/postgres.js';
import { runApiMigrations } from './support/api-migrations.js';
import { containerEnv, type ApiDeployment } from './support/api-pod.js';
import { resolveEnv, type EnvEntry } from './support/pod-env.js';
import { ControlPlane } from '@loadlab/sandbox/control-plane';
import type { PostgresCluster } from '@loadlab/sandbox/postgres';

const NS = 'lab';
const RATE_WINDOW_S = 60; // the analysis' default in a cluster: max(15 s step, 4 × 15 s scrape)
const DRIVER_IMAGE = 'registry.test/loadlab/operator:1.0';
const PLACEMENT = { nodeSelector: { 'loadlab.dev/role': 'load' }, tolerations: [{ key: 'loadlab.dev/role', operator: 'Equal', value: 'load', effect: 'NoSchedule' }] };

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let cp: ControlPlane;
let postgres: PostgresCluster;
let admin: KubeClient;
let fake: FakePrometheus;
let operator: Operator | undefined;
let workDir: string;
const logs: string[] = [];
/** How far the operator's clock is ahead of the machine's: the load the test says has run. */
let clockAheadMs = 0;
const operatorNow = () => new Date(Date.now() + clockAheadMs);

// ------------------------------------------------------------------------------ the fake Prometheus

/** The API bound by its database pool at 400 requests/s, measured by the loadlab driver in a cluster. */
const DB_POOL_BOUND: Scenario = { kind: 'db-pool', source: 'kubernetes', engine: 'loadlab', capacityRps: 400 };
const models = new Map<string, { scenario: Scenario; plan: TrafficPlan; checkpoints: Checkpoint[] }>();

/** A fake Prometheus (a real one cannot be made to serve a given run on demand): the catalog the operator runs for the loadlab engine, answered from the model of each experiment's recorded load. */
function prometheusHandler(request: FakeRequest): FakeAnswer {
  const query = request.params.query ?? '';
  const name = /experiment="[^"/]+\/([^"]+)"/.exec(query)?.[1] ?? /pod=~"(.+?)-\.\*"/.exec(query)?.[1];
  const runId = /run=~"([^"(]+)/.exec(query)?.[1];
  const model = name ? models.get(name) : undefined;
  if (!model || !name) return { status: 400, body: { status: 'error', errorType: 'bad_data', error: `no model for ${query}` } };
  const catalog = buildCatalog({ selector: runSelector(NS, name, runId ?? 'none'), resourceSelector: resourceSelector(NS, name), databaseSelector: DATABASE_METRICS_SELECTOR, source: 'kubernetes', engine: 'loadlab', rateWindowS: RATE_WINDOW_S });
  const entry = catalog.find((candidate) => candidate.promql === query);
  if (!entry) return { status: 400, body: { status: 'error', errorType: 'bad_data', error: `unexpected query ${query}` } };
  const timeline = analysisTimeline(model.plan, model.checkpoints);
  const series = new Map<string, { metric: Record<string, string>; values: [number, string][] }>();
  for (let t = Number(request.params.start); t <= Number(request.params.end) + 1e-9; t += Number(request.params.step)) {
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

async function startOperator(): Promise<Operator> {
  const started = new Operator({
    config: loadOperatorConfig({
      PROMETHEUS_URL: fake.url,
      DATABASE_URL: postgres.url,
      WATCH_NAMESPACES: NS,
      LEADER_ELECTION: 'false',
      METRICS_PORT: '0',
      RETRY_BASE_SECONDS: '0.05',
      RETRY_MAX_SECONDS: '0.4',
      SECRET_KEY: 'operator-driver-jobs-test-secret-key-0123456789',
      ANALYSIS_DELAY_SECONDS: '0',
      DRIVER_IMAGE,
      // The pods here start the moment the test says so: a second is enough.
      DRIVER_START_DELAY_SECONDS: '1',
      GENERATOR_PLACEMENT: JSON.stringify(PLACEMENT),
    }),
    kubeConfig: loadKubeConfig(cp.kubeconfigPath),
    log: createLogger('info', (line) => {
      logs.push(line);
      if (process.env.LOADLAB_TEST_LOG) process.stderr.write(`${line}\n`);
    }),
    now: operatorNow,
  });
  await started.start();
  await started.whenLeader();
  return started;
}

function manifest(name: string, spec: Json): Json {
  return { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name, namespace: NS }, spec };
}

/** Stages: a hold at 3,000 devices (200 rps) and one at 6,000 (400 rps), on the loadlab engine with two driver pods. */
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
    generator: { engine: 'loadlab', parallelism: 2 },
    timeout: '1h',
    ...extra,
  };
}

async function create(name: string, spec: Json): Promise<ExperimentObject> {
  const object = await admin.create<ExperimentObject>(RESOURCES.loadExperiments, NS, manifest(name, spec));
  const parsed = loadExperimentSchema.safeParse(manifest(name, spec));
  if (parsed.success) models.set(name, { scenario: DB_POOL_BOUND, plan: buildTrafficPlan(parsed.data as LoadExperiment), checkpoints: [] });
  return object;
}

const get = (name: string) => admin.get<ExperimentObject>(RESOURCES.loadExperiments, NS, name);
const condition = (object: ExperimentObject, type: string) => object.status?.conditions?.find((entry) => entry.type === type);

async function waitForStatus(name: string, what: string, check: (object: ExperimentObject) => boolean, timeoutMs = 20_000): Promise<ExperimentObject> {
  return waitFor(`${name}: ${what}`, async () => {
    const object = await get(name);
    return check(object) ? object : undefined;
  }, { timeoutMs }).catch((error: Error) => {
    throw new Error(`${error.message}; the operator's last log lines:\n${logs.slice(-8).join('\n')}`);
  });
}

/** Stands in for the kubelet and the Deployment controller: the API's migrations with the Deployment's own DATABASE_URL, then the Deployment available. */
async function actAsKubelet(name: string): Promise<ApiDeployment> {
  const deployment = await waitFor(`${name}: API Deployment`, () => admin.get<ApiDeployment>(RESOURCES.deployments, NS, `${name}-api`).catch(() => undefined));
  await runApiMigrations((await containerEnv(deployment, admin)).DATABASE_URL!);
  await markDeploymentAvailable(admin, NS, `${name}-api`);
  return deployment;
}

/** The checkpoint of `unit` once recorded, and its Job. */
async function jobOf(name: string, unit: number): Promise<{ checkpoint: Checkpoint; job: JobObject & { spec: Json } }> {
  const object = await waitForStatus(name, `the Job of unit ${unit} recorded`, (found) => found.status?.timeline?.some((entry) => entry.unit === unit) === true);
  const checkpoint = object.status!.timeline!.find((entry) => entry.unit === unit)!;
  return { checkpoint, job: await admin.get<JobObject & { spec: Json }>(RESOURCES.jobs, NS, checkpoint.name) };
}

/**
 * Stands in for the Job controller on the Job of `unit`: its pods run (once the operator's clock
 * has reached the Job's start time), then every index completes; the operator's clock moves on by
 * the unit's planned duration first, as if the load had run. Records the load in the model.
 */
async function actAsJobController(name: string, unit: number, options: { complete?: boolean } = {}): Promise<{ checkpoint: Checkpoint; startAt: string; end: Date }> {
  const model = models.get(name)!;
  const { checkpoint, job } = await jobOf(name, unit);
  const startAt = job.metadata.annotations![ANNOTATIONS.startAt]!;
  await waitFor(`${name}: the operator's clock at the Job's start time`, () => operatorNow().getTime() >= Date.parse(startAt), { timeoutMs: 5000 });
  await setJobStatus(admin, NS, checkpoint.name, 'running', { startedAt: new Date(Date.parse(startAt) - 1000) });
  await waitForStatus(name, `start of ${checkpoint.name} recorded`, (found) => !!found.status?.timeline?.find((entry) => entry.unit === unit)?.startTime);
  const durationS = runUnits(model.plan).find((entry) => entry.unit === unit)!.durationS;
  const end = new Date(Date.parse(startAt) + durationS * 1000 + 2000);
  model.checkpoints.push({ ...checkpoint, startTime: startAt, endTime: end.toISOString() });
  if (options.complete === false) return { checkpoint, startAt, end };
  clockAheadMs = Math.max(clockAheadMs, end.getTime() - Date.now() + 1000);
  await setJobStatus(admin, NS, checkpoint.name, 'succeeded', { at: end });
  return { checkpoint, startAt, end };
}

async function children(name: string) {
  const selector = { labelSelector: `loadlab.dev/experiment=${name}` };
  const [jobs, configMaps] = await Promise.all([admin.list<JobObject>(RESOURCES.jobs, NS, selector), admin.list<KubeObject & { data?: Record<string, string> }>(RESOURCES.configMaps, NS, selector)]);
  // The run record (<name>-runs) is the experiment's data, not an object of a run: cleanup keeps it.
  return { jobs: jobs.items, configMaps: configMaps.items.filter((item) => item.metadata.name !== `${name}-runs`) };
}

// ------------------------------------------------------------------------------------- tests

describe('the operator on the loadlab engine: driver Jobs on a real kube-apiserver without k6-operator (the test stands in for the Job controller and the kubelet; fake Prometheus)', () => {
  before(async () => {
    [cp, postgres] = await Promise.all([ControlPlane.start(), startPostgres()]);
    workDir = mkdtempSync(join(tmpdir(), 'loadlab-driver-jobs-'));
    const crdPath = join(workDir, 'loadexperiments.json');
    writeFileSync(crdPath, JSON.stringify(loadExperimentCrd()));
    // Our CRD only: no TestRun (k6-operator), no PodMonitor.
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

  it('runs a staged experiment end to end: one driver Job for the plan, started at its start time, Complete → analysed from the driver\'s metrics → Succeeded; cleanup deletes the Job and its ConfigMap (stand-ins: Job controller, kubelet)', async () => {
    const name = 'staged';
    const created = await create(name, stagesSpec({ cleanup: 'onSuccess' }));
    const deployment = await actAsKubelet(name);
    const { checkpoint, job } = await jobOf(name, 0);
    const running = await get(name);
    const runId = running.status!.runId!;

    // The Job: named for the run, owned, the operator's image and placement, the API's token secret.
    assert.deepEqual([checkpoint.kind, checkpoint.name, checkpoint.uid], ['Job', `${name}-${runId}-driver`, job.metadata.uid]);
    assert.deepEqual(job.metadata.ownerReferences?.map((owner) => [owner.kind, owner.uid, owner.controller]), [['LoadExperiment', created.metadata.uid, true]]);
    assert.equal(job.spec.parallelism, 2);
    assert.equal(job.spec.completionMode, 'Indexed');
    const pod = job.spec.template.spec;
    assert.equal(pod.containers[0].image, DRIVER_IMAGE);
    assert.deepEqual(pod.nodeSelector, PLACEMENT.nodeSelector, 'GENERATOR_PLACEMENT, as the k6 runners get it');
    assert.deepEqual(pod.tolerations, PLACEMENT.tolerations);
    const env = await resolveEnv(admin, NS, pod.containers[0].env as EnvEntry[]);
    assert.equal(env.LOADLAB_TOKEN_SECRET, (await containerEnv(deployment, admin)).TOKEN_SECRET, 'the drivers mint tokens with the API\'s secret');
    assert.deepEqual(pod.containers[0].env.find((entry: EnvEntry) => entry.name === 'LOADLAB_TOKEN_SECRET').valueFrom.secretKeyRef, deployment.spec.template.spec.containers[0]!.env!.find((entry) => entry.name === 'TOKEN_SECRET')!.valueFrom!.secretKeyRef, 'by reference to the API\'s Secret, not as a value');
    assert.equal(env.LOADLAB_API_URL, `http://${name}-api.${NS}.svc:3000`);
    const startAt = job.metadata.annotations![ANNOTATIONS.startAt]!;
    const args = pod.containers[0].args as string[];
    assert.equal(args[args.indexOf('--start-at') + 1], startAt);
    const startDelayMs = Date.parse(startAt) - Date.parse(job.metadata.creationTimestamp as string);
    assert.ok(startDelayMs > 0 && startDelayMs < 3000, `the start time is DRIVER_START_DELAY_SECONDS after the Job's creation (${startDelayMs} ms)`);
    const configMap = await admin.get<KubeObject & { data: Record<string, string> }>(RESOURCES.configMaps, NS, checkpoint.name);
    const mounted = parseExperiment(configMap.data[EXPERIMENT_FILE]!, EXPERIMENT_FILE);
    assert.ok(mounted.ok);
    assert.equal(mounted.experiment.spec.generator.engine, 'loadlab');
    assert.equal(condition(running, 'LoadComplete')?.reason, 'JobCreated');
    assert.match(condition(running, 'LoadComplete')!.message!, /waiting for its pods to start their schedule/);

    const requestsBefore = fake.requests.length;
    const { end } = await actAsJobController(name, 0);
    const started = (await get(name)).status!.timeline![0]!;
    assert.equal(started.startTime, startAt, 'the unit started at the Job\'s start time');
    const done = await waitForStatus(name, 'Succeeded', (object) => object.status?.phase === 'Succeeded');
    assert.equal(done.status!.timeline![0]!.endTime, end.toISOString().replace(/\.\d{3}Z$/, 'Z'), 'ended when the Job completed');
    assert.equal(condition(done, 'LoadComplete')?.reason, 'JobFinished');
    const summary = done.status!.summary!;
    assert.equal(summary.devicesAtBreak, 6000, summary.verdict);
    assert.equal(summary.bottleneck, 'db-pool', summary.verdict);

    // The analysis read the driver's own series (job="driver"), never k6's.
    const queries = fake.requests.slice(requestsBefore).map((request) => request.params.query ?? '');
    assert.ok(queries.some((query) => query.includes('loadlab_driver_requests_offered_total')));
    assert.ok(queries.some((query) => query.includes('process_cpu_seconds_total') && query.includes('job="driver"')));
    assert.ok(!queries.some((query) => /\bk6_/.test(query)), 'no k6 query');

    const cleaned = await waitForStatus(name, 'CleanedUp', (object) => condition(object, 'CleanedUp')?.status === 'True');
    assert.match(condition(cleaned, 'CleanedUp')!.message!, new RegExp(`job/${checkpoint.name}, configmap/${checkpoint.name}`));
    const left = await children(name);
    assert.deepEqual([left.jobs.length, left.configMaps.length], [0, 0]);
    assert.ok(await admin.get(RESOURCES.configMaps, NS, `${name}-runs`), 'cleanup keeps the run record');
  });

  it('runs a breaking-point search as one driver Job per step, each judged before the next, and stops at the first step that breaks (stand-ins: Job controller, kubelet)', async () => {
    const name = 'search';
    await create(name, {
      fleet: { devices: 10000, reportInterval: '30s', pollInterval: '30s' },
      load: { search: { startDevices: 3000, step: { devices: 1000 }, maxDevices: 10000, hold: '150s', rampUp: '30s' } },
      generator: { engine: 'loadlab' },
      timeout: '2h',
      cleanup: 'never',
    });
    await actAsKubelet(name);
    for (const unit of [0, 1, 2, 3]) {
      await actAsJobController(name, unit);
      if (unit < 3) await waitForStatus(name, `step ${unit + 1} judged`, (object) => object.status?.timeline?.[unit]?.outcome === 'Held');
    }
    const done = await waitForStatus(name, 'Succeeded', (object) => object.status?.phase === 'Succeeded');
    assert.deepEqual(done.status!.timeline!.map((checkpoint) => checkpoint.outcome), ['Held', 'Held', 'Held', 'Broke']);
    assert.deepEqual(done.status!.timeline!.map((checkpoint) => checkpoint.kind), ['Job', 'Job', 'Job', 'Job']);
    assert.equal(done.status!.summary?.devicesAtBreak, 6000, done.status!.summary?.verdict);
    assert.equal(condition(done, 'LoadComplete')?.reason, 'SearchStopped');
    const left = await children(name);
    assert.deepEqual(left.jobs.map((job) => job.metadata.name).sort(), [0, 1, 2, 3].map((step) => `${name}-${done.status!.runId}-s${step}-driver`), 'steps 5 to 8 never ran');
    const phases = left.jobs.map((job) => job.metadata.annotations?.[ANNOTATIONS.phases]).sort();
    assert.deepEqual(phases, ['0-1', '2-3', '4-5', '6-7'], 'each Job runs its step\'s ramp and hold');
  });

  it('fails the run when the Job fails, with the Job\'s reason and where to look, and keeps it, pods and logs, for inspection (stand-in: the Job controller fails it)', async () => {
    const name = 'broken';
    await create(name, stagesSpec({ cleanup: 'onSuccess' }));
    await actAsKubelet(name);
    const { checkpoint } = await jobOf(name, 0);
    await setJobStatus(admin, NS, checkpoint.name, 'failed', { message: 'Job has reached the specified backoff limit' });
    const failed = await waitForStatus(name, 'Failed', (object) => object.status?.phase === 'Failed');
    assert.equal(condition(failed, 'Succeeded')?.reason, 'JobFailed');
    assert.match(condition(failed, 'Succeeded')!.message!, new RegExp(`Job ${checkpoint.name} failed \\(BackoffLimitExceeded: Job has reached the specified backoff limit; 1 of 2 runners failed\\) \\(kubectl logs -n ${NS} -l job-name=${checkpoint.name} --prefix`));
    assert.equal(condition(failed, 'LoadComplete')?.status, 'False');
    const kept = await waitForStatus(name, 'cleanup decided', (object) => !!condition(object, 'CleanedUp'));
    assert.equal(condition(kept, 'CleanedUp')?.reason, 'KeptByPolicy');
    assert.equal(kept.status!.timeline![0]!.outcome, 'Error');
    assert.match(condition(kept, 'LoadComplete')!.message!, /^load failed: /);
    assert.equal((await children(name)).jobs.length, 1, 'the failed Job stays, with its pods and their logs (cleanup onSuccess)');
  });

  it('fails with JobDeleted when the Job is deleted while it runs, and with JobReplaced when another takes its name (stand-in: kubelet)', async () => {
    const name = 'deleted';
    await create(name, stagesSpec({ cleanup: 'never' }));
    await actAsKubelet(name);
    const { checkpoint } = await jobOf(name, 0);
    await admin.delete(RESOURCES.jobs, NS, checkpoint.name);
    const failed = await waitForStatus(name, 'Failed', (object) => object.status?.phase === 'Failed');
    assert.equal(condition(failed, 'Succeeded')?.reason, 'JobDeleted');
    assert.match(condition(failed, 'Succeeded')!.message!, new RegExp(`Job ${checkpoint.name} was deleted before it finished`));

    const replacedName = 'replaced';
    await create(replacedName, stagesSpec({ cleanup: 'never' }));
    await actAsKubelet(replacedName);
    const { checkpoint: original, job } = await jobOf(replacedName, 0);
    // Replaced while the operator is down, so it finds the other Job under the recorded name.
    await operator!.stop({ release: false });
    await admin.delete(RESOURCES.jobs, NS, original.name);
    const { metadata, spec } = job;
    await admin.create(RESOURCES.jobs, NS, {
      apiVersion: 'batch/v1', kind: 'Job',
      metadata: { name: metadata.name, namespace: NS, labels: metadata.labels, ownerReferences: metadata.ownerReferences },
      spec: { ...spec, selector: undefined, template: { ...spec.template, metadata: { labels: metadata.labels } } },
    });
    operator = await startOperator();
    const replaced = await waitForStatus(replacedName, 'Failed', (object) => object.status?.phase === 'Failed');
    assert.equal(condition(replaced, 'Succeeded')?.reason, 'JobReplaced');
    assert.match(condition(replaced, 'Succeeded')!.message!, /deleted and created again by someone else before it finished/);
  });

  it('resumes a Job that ran and completed while the operator was stopped, from status and the Job (stand-ins: Job controller, kubelet)', async () => {
    const name = 'restarted';
    await create(name, stagesSpec({ cleanup: 'never' }));
    await actAsKubelet(name);
    const { checkpoint, job } = await jobOf(name, 0);
    await operator!.stop({ release: false });
    const startAt = job.metadata.annotations![ANNOTATIONS.startAt]!;
    const model = models.get(name)!;
    const end = new Date(Date.parse(startAt) + model.plan.durationS * 1000 + 2000);
    model.checkpoints.push({ ...checkpoint, startTime: startAt, endTime: end.toISOString() });
    await setJobStatus(admin, NS, checkpoint.name, 'running', { startedAt: new Date(Date.parse(startAt) - 1000) });
    clockAheadMs = Math.max(clockAheadMs, end.getTime() - Date.now() + 1000);
    await setJobStatus(admin, NS, checkpoint.name, 'succeeded', { at: end });
    operator = await startOperator();
    const done = await waitForStatus(name, 'Succeeded', (object) => object.status?.phase === 'Succeeded');
    assert.equal(done.status!.timeline![0]!.startTime, startAt, 'the start the operator never saw is the Job\'s start time');
    assert.equal(done.status!.summary?.devicesAtBreak, 6000);
    assert.equal((await children(name)).jobs.length, 1, 'no second Job');
  });

  it('fails an experiment on the k6 engine at once when k6-operator is not installed, saying what to do (the loadlab engine needs none: every other test here ran without it) (stand-in: kubelet)', async () => {
    const name = 'needs-k6';
    await create(name, stagesSpec({ generator: { engine: 'k6' } }));
    await actAsKubelet(name);
    const failed = await waitForStatus(name, 'Failed', (object) => object.status?.phase === 'Failed');
    assert.equal(condition(failed, 'Succeeded')?.reason, 'TestRunNotServed');
    assert.match(condition(failed, 'Succeeded')!.message!, /install grafana\/k6-operator, or set spec\.generator\.engine: loadlab/);
    assert.ok(logs.some((line) => /not served; its cache stays empty until it is/.test(line) && /testruns/.test(line)), 'the operator said once that TestRuns are not served');
  });
});
