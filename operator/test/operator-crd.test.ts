// The LoadExperiment CRD, generated from the one zod schema (loadExperimentCrd()), installed into
// a real kube-apiserver + etcd: the examples are accepted, every CEL rule rejects its case with
// its own message, the printer columns show the status the operator writes (and that status, at
// its largest, passes the CRD's status schema), and kubectl explain documents the fields.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV_KNOBS, MAX_SCALING_COUNTS, MAX_SCALING_NOTES, MAX_TIMELINE_CHECKPOINTS, ROOT_RULES, SPEC_RULES, loadExperimentCrd, parseExperiment } from '../src/schema/index.js';
import { imageReferenceRule, NODE_SELECTOR_RULES, requestsWithinLimitsRule, TOLERATION_RULES } from '../src/schema/pod-fields.js';
import { KubeError, KubeClient, loadKubeConfig, RESOURCES, type KubeObject } from '../src/controller/index.js';
import { ControlPlane } from '@loadlab/sandbox/control-plane';

const NS = 'crd';
const IMAGE_MESSAGE = imageReferenceRule('spec.target.image').message;
const REQUESTS_MESSAGE = requestsWithinLimitsRule('spec.target.resources').message;
const EXPERIMENTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'experiments');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function minimal(name: string): Json {
  return {
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name, namespace: NS },
    spec: { fleet: { devices: 100 }, load: { stages: [{ devices: 100, duration: '1m' }] } },
  };
}

/** Invalid experiments the apiserver must refuse: the field it names and the message it gives (the rule's own). */
const INVALID: readonly { name: string; field: string; message: string; change: (m: Json) => void }[] = [
  { name: 'stages and search both', field: 'spec.load', message: 'set exactly one of stages (fleet sizes you choose) or search (raise the fleet until the SLO breaks)',
    change: (m) => (m.spec.load.search = { startDevices: 10, step: { factor: 2 }, maxDevices: 100 }) },
  { name: 'a zero report interval', field: 'spec.fleet.reportInterval', message: 'must be longer than 0s, e.g. "30s"', change: (m) => (m.spec.fleet.reportInterval = '0s') },
  { name: 'a zero poll interval', field: 'spec.fleet.pollInterval', message: 'must be longer than 0s, e.g. "30s"', change: (m) => (m.spec.fleet.pollInterval = '0ms') },
  { name: 'a stage of zero length', field: 'spec.load.stages[0].duration', message: 'must be longer than 0s, e.g. "2m"', change: (m) => (m.spec.load.stages[0].duration = '0s') },
  { name: 'an empty stage list', field: 'spec.load.stages', message: 'must list at least one stage, e.g. [{devices: 1000, duration: "2m"}]', change: (m) => (m.spec.load.stages = []) },
  { name: 'a search step with factor and devices', field: 'spec.load.search.step', message: 'set exactly one of factor (multiply the fleet at each step, e.g. 1.5) or devices (add this many devices at each step)',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: { factor: 2, devices: 5 }, maxDevices: 100 } }) },
  { name: 'a zero search hold', field: 'spec.load.search.hold', message: 'must be longer than 0s, e.g. "60s"',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: { factor: 2 }, maxDevices: 100, hold: '0s' } }) },
  { name: 'a search whose max is below its start', field: 'spec.load.search.maxDevices', message: 'must be at least startDevices: the search starts at startDevices and stops at maxDevices',
    change: (m) => (m.spec.load = { search: { startDevices: 50, step: { factor: 2 }, maxDevices: 10 } }) },
  { name: 'percentile 100', field: 'spec.slo.latencyPercentile', message: 'must be between 0 and 100, both excluded, e.g. 95 or 99.9', change: (m) => (m.spec.slo = { latencyPercentile: 100 }) },
  { name: 'percentile 0', field: 'spec.slo.latencyPercentile', message: 'must be between 0 and 100, both excluded, e.g. 95 or 99.9', change: (m) => (m.spec.slo = { latencyPercentile: 0 }) },
  { name: 'a zero latency threshold', field: 'spec.slo.latencyThreshold', message: 'must be longer than 0s, e.g. "250ms"', change: (m) => (m.spec.slo = { latencyThreshold: '0s' }) },
  { name: 'env setting DB_POOL_SIZE', field: 'spec.target.env[0].name', message: 'DB_POOL_SIZE is set by spec.target.dbPoolSize: use that field instead', change: (m) => (m.spec.target = { env: [{ name: 'DB_POOL_SIZE', value: '3' }] }) },
  { name: 'env setting WRITE_BATCH_MAX_ROWS', field: 'spec.target.env[0].name', message: 'WRITE_BATCH_MAX_ROWS is set by spec.target.writeBatchMaxRows: use that field instead', change: (m) => (m.spec.target = { env: [{ name: 'WRITE_BATCH_MAX_ROWS', value: '3' }] }) },
  { name: 'env setting CPU_COST_MS', field: 'spec.target.env[0].name', message: 'CPU_COST_MS is set by spec.target.cpuCostMs: use that field instead', change: (m) => (m.spec.target = { env: [{ name: 'CPU_COST_MS', value: '3' }] }) },
  { name: 'env setting QUERY_DELAY_MS', field: 'spec.target.env[0].name', message: 'QUERY_DELAY_MS is set by spec.target.queryDelayMs: use that field instead', change: (m) => (m.spec.target = { env: [{ name: 'QUERY_DELAY_MS', value: '3' }] }) },
  { name: 'env setting LD_PRELOAD', field: 'spec.target.env[0].name', message: `must be one of the API's knobs: ${ENV_KNOBS.join(', ')} (README: the API's configuration)`, change: (m) => (m.spec.target = { env: [{ name: 'LD_PRELOAD', value: '/tmp/x.so' }] }) },
  { name: 'env overriding DATABASE_URL', field: 'spec.target.env[0].name', message: 'is set by loadlab for every API replica (DATABASE_URL, TOKEN_SECRET, PORT, HOST) and cannot be overridden',
    change: (m) => (m.spec.target = { env: [{ name: 'DATABASE_URL', value: 'postgres://x' }] }) },
  { name: 'env naming a variable twice', field: 'spec.target.env', message: 'must not set the same name twice',
    change: (m) => (m.spec.target = { env: [{ name: 'MAX_IN_FLIGHT', value: '1' }, { name: 'MAX_IN_FLIGHT', value: '2' }] }) },
  { name: 'a zero timeout', field: 'spec.timeout', message: 'must be longer than 0s, e.g. "1h"', change: (m) => (m.spec.timeout = '0s') },
  { name: 'a stage beyond the fleet', field: 'spec.load.stages', message: 'every stage must stay within fleet.devices: raise fleet.devices or lower the stage', change: (m) => (m.spec.load.stages[0].devices = 101) },
  { name: 'a search beyond the fleet', field: 'spec.load.search.maxDevices', message: 'must be at most fleet.devices: the search can only use devices the fleet has',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: { factor: 2 }, maxDevices: 200 } }) },
  { name: 'stages longer than the timeout', field: 'spec.timeout', message: 'must be at least the total duration of the stages: raise timeout or shorten the stages',
    change: (m) => {
      m.spec.load.stages.push({ devices: 100, duration: '59m', shape: 'hold' }, { devices: 100, duration: '1s' });
    } },
  { name: 'a name objects cannot be derived from', field: '<root>',
    message: 'metadata.name must be at most 48 characters of lowercase letters, digits and "-", starting with a letter, so the names of the objects loadlab derives from it stay valid',
    change: (m) => (m.metadata.name = 'a-name-that-is-far-too-long-for-the-objects-it-would-name') },
  // What a pod spec, a quantity or an image reference would refuse later, refused here.
  { name: 'an image reference with an upper-case repository', field: 'spec.target.image', message: IMAGE_MESSAGE, change: (m) => (m.spec.target = { image: 'Loadlab/API:dev' }) },
  { name: 'an image reference with a space in its tag', field: 'spec.target.image', message: IMAGE_MESSAGE, change: (m) => (m.spec.target = { image: 'loadlab/api:dev build' }) },
  { name: 'an image digest that is not one', field: 'spec.target.image', message: IMAGE_MESSAGE, change: (m) => (m.spec.target = { image: 'loadlab/api@sha256:xyz' }) },
  { name: 'API requests above their limits', field: 'spec.target.resources', message: REQUESTS_MESSAGE,
    change: (m) => (m.spec.target = { resources: { requests: { cpu: 2 }, limits: { cpu: '1500m' } } }) },
  { name: 'generator memory requested above its limit', field: 'spec.generator.resources', message: REQUESTS_MESSAGE,
    change: (m) => (m.spec.generator = { resources: { requests: { memory: '1Gi' }, limits: { memory: '512Mi' } } }) },
  { name: 'a nodeSelector key a label cannot have', field: 'spec.generator.nodeSelector', message: NODE_SELECTOR_RULES.keys.message,
    change: (m) => (m.spec.generator = { nodeSelector: { 'loadlab.dev/role/load': 'x' } }) },
  { name: 'a nodeSelector value a label cannot have', field: 'spec.generator.nodeSelector', message: NODE_SELECTOR_RULES.values.message,
    change: (m) => (m.spec.generator = { nodeSelector: { 'loadlab.dev/role': 'load generators' } }) },
  { name: 'a toleration key a taint cannot have', field: 'spec.generator.tolerations[0].key', message: TOLERATION_RULES.key.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'role:load', operator: 'Exists' }] }) },
  { name: 'a toleration with neither key nor Exists', field: 'spec.generator.tolerations[0].operator', message: TOLERATION_RULES.emptyKeyNeedsExists.message,
    change: (m) => (m.spec.generator = { tolerations: [{ operator: 'Equal', value: 'load' }] }) },
  { name: 'a toleration with Exists and a value', field: 'spec.generator.tolerations[0].value', message: TOLERATION_RULES.existsHasNoValue.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'loadlab.dev/role', operator: 'Exists', value: 'load' }] }) },
  { name: 'a toleration value a taint cannot have', field: 'spec.generator.tolerations[0].value', message: TOLERATION_RULES.value.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'loadlab.dev/role', value: '-load-' }] }) },
  { name: 'tolerationSeconds without NoExecute', field: 'spec.generator.tolerations[0].tolerationSeconds', message: TOLERATION_RULES.secondsNeedNoExecute.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'loadlab.dev/role', value: 'load', effect: 'NoSchedule', tolerationSeconds: 30 }] }) },
  { name: 'stages that bring no device online', field: 'spec.load.stages', message: 'must bring at least one device online: every stage has devices: 0, so the plan offers no load',
    change: (m) => (m.spec.load.stages = [{ devices: 0, duration: '1m' }, { devices: 0, duration: '1m', shape: 'hold' }]) },
  { name: 'replica counts out of order', field: 'spec.scaling.replicas', message: 'must list each replica count once, in ascending order, e.g. [1, 2, 4]',
    change: (m) => (m.spec.scaling = { replicas: [2, 1, 4] }) },
  { name: 'a replica count twice', field: 'spec.scaling.replicas', message: 'must list each replica count once, in ascending order, e.g. [1, 2, 4]',
    change: (m) => (m.spec.scaling = { replicas: [1, 2, 2] }) },
  { name: 'a scaling study with a baseline', field: 'spec.baseline', message: "cannot be set with spec.scaling: a study's result is its fit over the replica counts, not one run to compare with a baseline",
    change: (m) => { m.spec.scaling = { replicas: [1, 2, 4] }; m.spec.baseline = { previousRun: true }; } },
  // OpenAPI checks, worded by the apiserver itself.
  { name: 'a scaling study of one count', field: 'spec.scaling.replicas', message: 'should have at least 2 items', change: (m) => (m.spec.scaling = { replicas: [2] }) },
  { name: 'a negative CPU request', field: 'spec.target.resources.requests.cpu', message: 'should match', change: (m) => (m.spec.target = { resources: { requests: { cpu: '-1' } } }) },
  { name: 'a nodeSelector of 21 labels', field: 'spec.generator.nodeSelector', message: 'must have at most 20 items',
    change: (m) => (m.spec.generator = { nodeSelector: Object.fromEntries(Array.from({ length: 21 }, (_, index) => [`l${index}`, 'x'])) }) },
  { name: 'a fleet of 0 devices', field: 'spec.fleet.devices', message: 'should be greater than or equal to 1', change: (m) => (m.spec.fleet.devices = 0) },
  { name: 'a string for a number', field: 'spec.fleet.devices', message: 'must be of type integer', change: (m) => (m.spec.fleet.devices = '100') },
  { name: 'a jitter over 1', field: 'spec.fleet.jitter', message: 'should be less than or equal to 1', change: (m) => (m.spec.fleet.jitter = 1.5) },
  { name: '101 replicas', field: 'spec.target.replicas', message: 'should be less than or equal to 100', change: (m) => (m.spec.target = { replicas: 101 }) },
  { name: 'an unknown cleanup policy', field: 'spec.cleanup', message: 'Unsupported value: "sometimes"', change: (m) => (m.spec.cleanup = 'sometimes') },
  { name: 'a load engine that does not exist', field: 'spec.generator.engine', message: 'Unsupported value: "locust": supported values: "k6", "loadlab"', change: (m) => (m.spec.generator = { engine: 'locust' }) },
  { name: 'a saturation threshold of 0', field: 'spec.analysis.thresholds.apiCpuCores', message: 'should be greater than 0',
    change: (m) => (m.spec.analysis = { thresholds: { apiCpuCores: 0 } }) },
  { name: 'a fraction threshold given in percent', field: 'spec.analysis.thresholds.memoryLimitFraction', message: 'should be less than or equal to 1',
    change: (m) => (m.spec.analysis = { thresholds: { memoryLimitFraction: 90 } }) },
  { name: 'a ramp skipped whole', field: 'spec.analysis.thresholds.rampSkipFraction', message: 'should be less than 1',
    change: (m) => (m.spec.analysis = { thresholds: { rampSkipFraction: 1 } }) },
  { name: 'a negative settle time', field: 'spec.analysis.thresholds.settleS', message: 'should be greater than or equal to 0',
    change: (m) => (m.spec.analysis = { thresholds: { settleS: -1 } }) },
  { name: 'a threshold in seconds written as a duration', field: 'spec.analysis.thresholds.poolAcquireP95S', message: 'must be of type number',
    change: (m) => (m.spec.analysis = { thresholds: { poolAcquireP95S: '10ms' } }) },
  { name: 'a baseline that is not an object name', field: 'spec.baseline.experiment', message: 'must be the name of a LoadExperiment in this namespace (lower-case letters, digits, - and ., e.g. quickstart-main)',
    change: (m) => (m.spec.baseline = { experiment: 'Main_Run' }) },
  { name: 'a baseline naming neither an experiment nor the previous run', field: 'spec.baseline', message: 'set exactly one: experiment (another LoadExperiment) or previousRun: true (this experiment\'s run before the current one)',
    change: (m) => (m.spec.baseline = { previousRun: false }) },
];

describe('the LoadExperiment CRD on a real kube-apiserver', () => {
  let cp: ControlPlane;
  let dir: string;
  let client: KubeClient;

  before(async () => {
    cp = await ControlPlane.start();
    dir = mkdtempSync(join(tmpdir(), 'loadlab-crd-'));
    const crdPath = join(dir, 'loadexperiments.json');
    writeFileSync(crdPath, JSON.stringify(loadExperimentCrd()));
    await cp.installCrds([crdPath]);
    await cp.createNamespace(NS);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
  });

  after(async () => {
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const examples = readdirSync(EXPERIMENTS).filter((file) => file.endsWith('.yaml')).sort();

  it('accepts every example in experiments/ as written (kubectl apply, strict field validation)', async () => {
    assert.ok(examples.length >= 5);
    for (const file of examples) {
      const out = await cp.kubectl(['apply', '--server-side', '--field-manager=loadlab-test', '--validate=strict', '-n', NS, '-f', join(EXPERIMENTS, file)]);
      assert.match(out, /loadexperiment\.loadlab\.dev\/\S+ serverside-applied/, file);
    }
    // Defaults filled by the apiserver from the schema, as the CLI fills them.
    const stored = (await client.get<KubeObject & { spec: Json }>(RESOURCES.loadExperiments, NS, 'quickstart')).spec;
    assert.equal(stored.target.replicas, 1);
    assert.equal(stored.cleanup, 'onSuccess');
    assert.equal(stored.fleet.seed, 1);
    assert.equal(stored.generator.engine, 'k6', 'the load engine defaults to k6-operator TestRuns');
    // No analysis block materialised: the analysis library's defaults apply.
    assert.equal(stored.analysis, undefined);
    const dbPool = (await client.get<KubeObject & { spec: Json }>(RESOURCES.loadExperiments, NS, 'bottleneck-db-pool')).spec;
    assert.deepEqual(dbPool.analysis, { thresholds: { dbHoldMeanS: 0.05 } }, 'stored as written, the other thresholds unset');
  });

  it('refuses a threshold the analysis does not have (kubectl apply, strict field validation)', async () => {
    const object = minimal('unknown-threshold');
    object.spec.analysis = { thresholds: { apiCpu: 0.5 } };
    await assert.rejects(
      cp.kubectl(['apply', '--server-side', '--field-manager=loadlab-test', '--validate=strict', '-n', NS, '-f', '-'], { stdin: JSON.stringify(object) }),
      (error: unknown) => error instanceof Error && /\.spec\.analysis\.thresholds\.apiCpu: field not declared in schema/.test(error.message),
    );
  });

  const celMessages = new Set([...SPEC_RULES, ...ROOT_RULES].map((rule) => rule.message));
  for (const testCase of INVALID) {
    it(`refuses ${testCase.name}: ${testCase.field}: ${testCase.message}`, async () => {
      const object = minimal('invalid');
      testCase.change(object);
      try {
        await client.create(RESOURCES.loadExperiments, NS, object);
        assert.fail('the apiserver accepted it');
      } catch (error) {
        assert.ok(error instanceof KubeError, String(error));
        assert.equal(error.status, 422);
        assert.ok(error.message.includes(testCase.message), error.message);
        if (testCase.field !== '<root>') assert.ok(error.message.includes(`${testCase.field}:`), `${testCase.field} in ${error.message}`);
      }
      // The CLI (loadlab render and run parse with the same schema) refuses it too, at the same
      // field; with the same words where the message is one of our rules (OpenAPI checks are
      // worded by the apiserver).
      const parsed = parseExperiment(JSON.stringify(object), 'case.json');
      assert.equal(parsed.ok, false, 'the CLI accepted it');
      if (!parsed.ok) {
        const field = testCase.field === '<root>' ? 'metadata.name' : testCase.field;
        const same = parsed.errors.find((e) => e.path === field || (testCase.field === '<root>' && e.message === testCase.message));
        assert.ok(same, `the CLI refuses ${field}: ${parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
        if (celMessages.has(testCase.message)) assert.equal(same.message, testCase.message);
      }
    });
  }

  it('refuses at least 40 kinds of invalid experiment, over every part of the spec', () => {
    assert.ok(INVALID.length >= 40, `${INVALID.length}`);
    const parts = new Set(INVALID.map((testCase) => testCase.field.split(/[.[]/).slice(0, 2).join('.')));
    for (const part of ['spec.fleet', 'spec.load', 'spec.slo', 'spec.target', 'spec.generator', 'spec.analysis', 'spec.baseline', 'spec.timeout', 'spec.cleanup', '<root>']) {
      assert.ok(parts.has(part), `no case for ${part}`);
    }
  });

  it('has a case above for every CEL rule of the schema, each refused by the apiserver with its own message', () => {
    const celMessages = new Set([...SPEC_RULES, ...ROOT_RULES].filter((rule) => rule.cel !== undefined).map((rule) => rule.message));
    const covered = new Set(INVALID.map((testCase) => testCase.message));
    assert.deepEqual([...celMessages].filter((message) => !covered.has(message)), []);
  });

  it('refuses a status the operator could not have written (the status schema is enforced on /status)', async () => {
    const object = await client.get<KubeObject>(RESOURCES.loadExperiments, NS, 'smoke');
    await assert.rejects(
      client.replace(RESOURCES.loadExperiments, NS, 'smoke', { ...object, status: { phase: 'Exploded' } }, 'status'),
      (error: unknown) => error instanceof KubeError && error.status === 422 && /status\.phase: Unsupported value: "Exploded"/.test(error.message),
    );
    await assert.rejects(
      client.replace(RESOURCES.loadExperiments, NS, 'smoke', { ...object, status: { timeline: Array.from({ length: MAX_TIMELINE_CHECKPOINTS + 1 }, (_, unit) => ({ unit, kind: 'TestRun', name: 'x', phases: { from: 0, to: 1 } })) } }, 'status'),
      (error: unknown) => error instanceof KubeError && /status\.timeline: Too many: 101: must have at most 100 items/.test(error.message),
    );
    // The run id goes into names, labels and PromQL: nothing but what the operator writes.
    await assert.rejects(
      client.replace(RESOURCES.loadExperiments, NS, 'smoke', { ...object, status: { runId: 'r1",run=~".*' } }, 'status'),
      (error: unknown) => error instanceof KubeError && error.status === 422 && /status\.runId: Invalid value/.test(error.message),
    );
  });

  it('accepts the largest status the operator writes and shows it in `kubectl get` columns (and -o wide extras)', async () => {
    const object = await client.get<KubeObject>(RESOURCES.loadExperiments, NS, 'breaking-point');
    const verdict = `The SLO broke at 67,500 devices: pool_acquire.p95 0.031 s ≥ 0.01 s ${'and more evidence '.repeat(20)}`.slice(0, 512);
    const summary = {
      devicesAtBreak: 67500,
      breakingPointRps: 4321,
      rps: 2999,
      p95Ms: 88.5,
      errorRate: 0.0012,
      bottleneck: 'db-pool',
      verdict,
      outcome: 'broke',
      breakReasons: ['p95 412 ms > 250 ms', 'errors 2.1% > 1%', 'served/offered 0.91 < 0.95'],
      lastGood: { stage: 'step 4 hold', devices: 45000, rps: 2999, p95Ms: 88.5, p99Ms: 140, errorRate: 0.0012 },
      peak: { stage: 'step 5 hold', devices: 67500, rps: 4321 },
      evidence: Array.from({ length: 3 }, (_, index) => ({ resource: 'db-pool', signal: 'pool_acquire.p95', query: 'pool_acquire', value: 0.031 + index, threshold: 0.01, unit: 'seconds', stage: 'step 5 hold' })),
      steps: { columns: ['step', 'devices', 'offeredRps', 'achievedRps', 'p95Ms', 'errorRate'], rows: Array.from({ length: 20 }, (_, index) => [index, 1000 * index, 66.67, null, 12.5, null]), total: 97 },
    };
    const status = {
      phase: 'Succeeded',
      observedGeneration: 1,
      runId: 'r1-abcdef',
      startTime: '2026-01-01T00:00:00Z',
      completionTime: '2026-01-01T01:00:00Z',
      databaseSchema: 'loadlab_breaking_point_abcdef',
      grafanaUrl: 'http://grafana.monitoring.svc:3000/d/loadlab-experiment/loadlab?var-run=r1-abcdef',
      conditions: ['Succeeded', 'ApiReady', 'DatabaseReady', 'LoadComplete', 'Analyzed', 'CleanedUp'].map((type) => ({
        type, status: 'True', reason: 'Done', message: 'x'.repeat(1024), lastTransitionTime: '2026-01-01T01:00:00Z', observedGeneration: 1,
      })),
      timeline: Array.from({ length: MAX_TIMELINE_CHECKPOINTS }, (_, unit) => ({
        unit, kind: 'TestRun', name: `breaking-point-r1-abcdef-s${unit}-k6`, uid: '0f8e4c4e-5f5c-4f51-9d58-3c4f0a1b2c3d', phases: { from: 2 * unit, to: 2 * unit + 2 },
        startTime: '2026-01-01T00:00:00.123Z', endTime: '2026-01-01T00:01:10.456Z', outcome: 'Held',
      })),
      summary,
      previousSummary: { ...summary, runId: 'r0-abcdef', generation: 0, phase: 'Failed', completionTime: '2025-12-31T00:00:00Z', grafanaUrl: 'http://grafana/x' },
      // A scaling study of the most counts (its timeline above is its last count's).
      scaling: {
        position: MAX_SCALING_COUNTS - 1,
        runs: Array.from({ length: MAX_SCALING_COUNTS }, (_, index) => ({
          replicas: 93 + index, runId: `r999999-abcdef-n${93 + index}`, loadStart: '2026-01-01T00:00:00.123Z', loadEnd: '2026-01-01T00:01:10.456Z', capacityRps: 1234.5, stage: 'step 5 hold'.padEnd(128, '.'), saturated: true, bottleneck: 'db-pool', verdict: verdict.padEnd(512, '.'),
        })),
        fit: { lambda: 101.5, sigma: 0.05, kappa: 0.0021, rSquared: 0.98, peakReplicas: 21.3 },
        predictedMaxRps: 1400.2,
        notes: Array.from({ length: MAX_SCALING_NOTES }, () => 'n'.repeat(320)),
      },
    };
    const written = await client.replace<KubeObject & { status: Json }>(RESOURCES.loadExperiments, NS, 'breaking-point', { ...object, status }, 'status');
    assert.deepEqual(written.status.summary, summary, 'stored as written: nothing pruned');
    assert.deepEqual(written.status.scaling, status.scaling, 'stored as written: nothing pruned');
    assert.equal(written.status.timeline.length, MAX_TIMELINE_CHECKPOINTS);
    const size = JSON.stringify(written.status).length;
    console.log(`[figures] the largest status the operator writes: ${size} bytes of JSON`);
    assert.ok(size < 64_000, `${size} bytes`);

    const table = await cp.kubectl(['get', 'loadexperiments', '-n', NS]);
    const [header, ...rows] = table.trim().split('\n');
    assert.deepEqual(header!.split(/\s{2,}/), ['NAME', 'PHASE', 'OUTCOME', 'DEVICES', 'RPS', 'P95-MS', 'ERRORS', 'BREAKS-AT', 'BOTTLENECK', 'AGE']);
    const row = rows.find((line) => line.startsWith('breaking-point'))!.split(/\s+/);
    assert.deepEqual(row.slice(0, 8), ['breaking-point', 'Succeeded', '1000000', '2999', '88.5', '0.0012', '67500', 'db-pool']);
    assert.equal(rows.length, examples.length);
    const wide = await cp.kubectl(['get', 'lex', 'breaking-point', '-n', NS, '-o', 'wide']);
    const [wideHeader, wideRow] = wide.trim().split('\n');
    assert.deepEqual(wideHeader!.split(/\s{2,}/), ['NAME', 'PHASE', 'OUTCOME', 'DEVICES', 'RPS', 'P95-MS', 'ERRORS', 'BREAKS-AT', 'BOTTLENECK', 'AGE', 'BREAK-RPS', 'REPLICAS', 'PEAK-REPLICAS', 'ENGINE', 'VERDICT']);
    assert.match(wideRow!, /4321\s+1\s+21\.3\s+k6\s+The SLO broke at 67,500 devices/);
    console.log(`[kubectl get loadexperiments]\n${table}`);
  });

  it('documents the fields for kubectl explain', async () => {
    const out = await cp.kubectl(['explain', 'loadexperiment.spec.fleet.reportInterval']);
    assert.match(out, /How often each device posts a measurement/);
    const threshold = await cp.kubectl(['explain', 'loadexperiment.spec.analysis.thresholds.dbHoldMeanS']);
    assert.match(threshold, /holds its connection this many\s+seconds[\s\S]*Default 0\.02; greater\s+than 0 and at most 60/);
    const status = await cp.kubectl(['explain', 'loadexperiment.status.timeline']);
    assert.match(status, /one checkpoint per TestRun\s+or Job/);
    const engine = await cp.kubectl(['explain', 'loadexperiment.spec.generator.engine']);
    assert.match(engine, /What generates the load in a cluster\. k6:[\s\S]*loadlab:[\s\S]*loadlab\s+driver/);
  });
});
