import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_THRESHOLDS } from '../src/schema/thresholds.js';
import { ENV_KNOBS } from '../src/schema/spec.js';
import { RESOURCES_RULES } from '../src/schema/fields.js';
import { imageReferenceRule, NODE_SELECTOR_RULES, TOLERATION_RULES } from '../src/schema/pod-fields.js';
import {
  ROOT_RULES,
  SPEC_RULES,
  formatErrors,
  parseExperiment,
  type ExperimentError,
  type LoadExperiment,
} from '../src/schema/index.js';

const EXPERIMENTS = new URL('../../../experiments/', import.meta.url);

// The invalid cases write values the schema's types forbid (that is their point), so manifests are untyped here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = Record<string, any>;

/** The smallest valid manifest; each invalid case below changes one thing in a fresh copy. */
function minimal(): Manifest {
  return {
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name: 'case' },
    spec: {
      fleet: { devices: 100 },
      load: { stages: [{ devices: 100, duration: '1m' }] },
    },
  };
}

function parseObject(manifest: unknown) {
  return parseExperiment(JSON.stringify(manifest, null, 2), 'case.json');
}

function errorsOf(manifest: unknown): ExperimentError[] {
  const result = parseObject(manifest);
  assert.equal(result.ok, false, 'expected the manifest to be refused');
  return result.ok ? [] : result.errors;
}

describe('the experiments/ examples', () => {
  const files = readdirSync(EXPERIMENTS).filter((file) => file.endsWith('.yaml'));

  it('include the documented ones', () => {
    for (const name of ['quickstart', 'seed-20k', 'breaking-point', 'smoke', 'bottleneck-db-pool']) {
      assert.ok(files.includes(`${name}.yaml`), `experiments/${name}.yaml is missing`);
    }
  });

  for (const file of files) {
    it(`${file} is a valid LoadExperiment that starts with a comment and is named after its file`, () => {
      const text = readFileSync(new URL(file, EXPERIMENTS), 'utf8');
      assert.match(text, /^# /, 'starts with comments explaining what it shows');
      const result = parseExperiment(text, `experiments/${file}`);
      assert.ok(result.ok, result.ok ? '' : formatErrors(result.errors));
      assert.equal(result.experiment.metadata.name, file.replace(/\.yaml$/, ''));
    });
  }
});

describe('defaults', () => {
  it('fills every optional field the way the CRD defaults it', () => {
    const result = parseObject(minimal());
    assert.ok(result.ok);
    const spec: LoadExperiment['spec'] = result.experiment.spec;
    assert.deepEqual(spec.fleet, {
      devices: 100,
      reportInterval: '30s',
      pollInterval: '30s',
      jitter: 0.1,
      seed: 1,
      realism: { enabled: true },
      serialPrefix: 'kettle',
    });
    assert.deepEqual(spec.load.stages, [{ devices: 100, duration: '1m', shape: 'ramp' }]);
    assert.deepEqual(spec.slo, { latencyPercentile: 95, latencyThreshold: '250ms', maxErrorRate: 0.01 });
    assert.deepEqual(spec.target, { replicas: 1, dbPoolSize: 10, image: 'loadlab/api:dev' });
    assert.deepEqual(spec.database, { mode: 'reset', preloadDays: 0 });
    assert.deepEqual(spec.generator, { engine: 'k6', parallelism: 1 });
    assert.equal(spec.cleanup, 'onSuccess');
    assert.equal(spec.timeout, '1h');
    // The analysis' own defaults apply; the experiment does not store a copy of them.
    assert.equal(spec.analysis, undefined);
  });

  it('keeps the analysis thresholds an experiment sets, and leaves the others unset', () => {
    const manifest = minimal();
    manifest.spec.analysis = { thresholds: { dbHoldMeanS: 0.05, kneeRatio: 0, settleS: 0 } };
    const result = parseObject(manifest);
    assert.ok(result.ok, result.ok ? '' : formatErrors(result.errors));
    assert.deepEqual(result.experiment.spec.analysis, { thresholds: { dbHoldMeanS: 0.05, kneeRatio: 0, settleS: 0 } });
    const empty = minimal();
    empty.spec.analysis = {};
    const parsed = parseObject(empty);
    assert.ok(parsed.ok && parsed.experiment.spec.analysis !== undefined && parsed.experiment.spec.analysis.thresholds === undefined);
  });

  it('accepts every analysis default as a threshold (the defaults are within the ranges the schema allows)', () => {
    const manifest = minimal();
    manifest.spec.analysis = { thresholds: { ...DEFAULT_THRESHOLDS } };
    const result = parseObject(manifest);
    assert.ok(result.ok, result.ok ? '' : formatErrors(result.errors));
    assert.deepEqual(result.experiment.spec.analysis?.thresholds, DEFAULT_THRESHOLDS);
  });

  it('fills a search\'s hold and rampUp', () => {
    const manifest = minimal();
    manifest.spec.fleet.devices = 1000;
    manifest.spec.load = { search: { startDevices: 100, step: { devices: 100 }, maxDevices: 1000 } };
    const result = parseObject(manifest);
    assert.ok(result.ok, result.ok ? '' : formatErrors(result.errors));
    assert.deepEqual(result.experiment.spec.load.search, {
      startDevices: 100,
      step: { devices: 100 },
      maxDevices: 1000,
      hold: '60s',
      rampUp: '10s',
    });
  });

  it('keeps what the user wrote over the defaults, and accepts int-or-string quantities', () => {
    const manifest = minimal();
    manifest.spec.fleet.jitter = 0;
    manifest.spec.target = { replicas: 3, resources: { requests: { cpu: 1, memory: '512Mi' }, limits: { cpu: '1500m' } } };
    const result = parseObject(manifest);
    assert.ok(result.ok, result.ok ? '' : formatErrors(result.errors));
    assert.equal(result.experiment.spec.fleet.jitter, 0);
    assert.equal(result.experiment.spec.target.replicas, 3);
    assert.deepEqual(result.experiment.spec.target.resources?.requests, { cpu: 1, memory: '512Mi' });
  });
});

describe('what a pod spec accepts, the schema accepts', () => {
  const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
  for (const image of ['loadlab/api:dev', 'api', 'localhost/api', 'registry.example.com:5000/team/api:1.2', 'ghcr.io/a/b-c__d.e:v1.0-rc.1', `loadlab/api@${DIGEST}`, `loadlab/api:1.2@${DIGEST}`]) {
    it(`image ${image}`, () => {
      const manifest = minimal();
      manifest.spec.target = { image };
      const result = parseObject(manifest);
      assert.ok(result.ok, result.ok ? '' : formatErrors(result.errors));
    });
  }

  it('placement as kubectl writes it, and requests equal to limits in other units', () => {
    const manifest = minimal();
    manifest.spec.target = { resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1000m', memory: '1024Mi' } } };
    manifest.spec.generator = {
      resources: { requests: { cpu: '0.5' }, limits: { cpu: '500m', memory: '1e9' } },
      nodeSelector: { 'kubernetes.io/hostname': 'node-1', zone: '', 'loadlab.dev/role': 'load' },
      tolerations: [{ operator: 'Exists' }, { key: 'loadlab.dev/role', value: 'load', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }],
    };
    manifest.spec.load.stages = [{ devices: 0, duration: '10s' }, { devices: 100, duration: '1m' }];
    const result = parseObject(manifest);
    assert.ok(result.ok, result.ok ? '' : formatErrors(result.errors));
  });
});

type Mutation = (manifest: Manifest) => void;

/** Invalid manifests: what is changed, the path the error must name, and its message (or a part of it). */
const INVALID: readonly { name: string; change: Mutation; path: string; message: string | RegExp }[] = [
  { name: 'stages and search both set', path: 'spec.load', message: 'set exactly one of stages (fleet sizes you choose) or search (raise the fleet until the SLO breaks)',
    change: (m) => (m.spec.load.search = { startDevices: 10, step: { factor: 2 }, maxDevices: 100 }) },
  { name: 'neither stages nor search', path: 'spec.load', message: 'set exactly one of stages (fleet sizes you choose) or search (raise the fleet until the SLO breaks)',
    change: (m) => (m.spec.load = {}) },
  { name: 'an empty stage list', path: 'spec.load.stages', message: 'must list at least one stage, e.g. [{devices: 1000, duration: "2m"}]',
    change: (m) => (m.spec.load.stages = []) },
  { name: 'replica counts not ascending', path: 'spec.scaling.replicas', message: 'must list each replica count once, in ascending order, e.g. [1, 2, 4]',
    change: (m) => (m.spec.scaling = { replicas: [1, 4, 2] }) },
  { name: 'a scaling study with a baseline', path: 'spec.baseline', message: "cannot be set with spec.scaling: a study's result is its fit over the replica counts, not one run to compare with a baseline",
    change: (m) => { m.spec.scaling = { replicas: [1, 2, 4] }; m.spec.baseline = { previousRun: true }; } },
  { name: 'a scaling study of one count', path: 'spec.scaling.replicas', message: 'must list at least 2 replica counts (3 or more for a Universal Scalability Law fit)',
    change: (m) => (m.spec.scaling = { replicas: [2] }) },
  { name: '51 stages', path: 'spec.load.stages', message: 'must have at most 50 items',
    change: (m) => (m.spec.load.stages = Array.from({ length: 51 }, () => ({ devices: 1, duration: '1s' }))) },
  { name: 'a zero report interval', path: 'spec.fleet.reportInterval', message: 'must be longer than 0s, e.g. "30s"',
    change: (m) => (m.spec.fleet.reportInterval = '0s') },
  { name: 'a zero poll interval', path: 'spec.fleet.pollInterval', message: 'must be longer than 0s, e.g. "30s"',
    change: (m) => (m.spec.fleet.pollInterval = '0ms') },
  { name: 'an interval that is not a duration', path: 'spec.fleet.reportInterval', message: 'must be a duration like "30s", "5m", "1h30m" or "250ms"',
    change: (m) => (m.spec.fleet.reportInterval = '30 seconds') },
  { name: 'an interval given as a bare number', path: 'spec.fleet.pollInterval', message: 'must be a duration like "30s", "5m", "1h30m" or "250ms"',
    change: (m) => (m.spec.fleet.pollInterval = 30) },
  { name: 'a stage of zero length', path: 'spec.load.stages[0].duration', message: 'must be longer than 0s, e.g. "2m"',
    change: (m) => (m.spec.load.stages[0].duration = '0s') },
  { name: 'a stage without a duration', path: 'spec.load.stages[0].duration', message: /^is required/,
    change: (m) => delete m.spec.load.stages[0].duration },
  { name: 'a stage shape that does not exist', path: 'spec.load.stages[0].shape', message: 'must be "ramp" or "hold"',
    change: (m) => (m.spec.load.stages[0].shape = 'spike') },
  { name: 'a percentile of 100', path: 'spec.slo.latencyPercentile', message: 'must be between 0 and 100, both excluded, e.g. 95 or 99.9',
    change: (m) => (m.spec.slo = { latencyPercentile: 100 }) },
  { name: 'a percentile of 0', path: 'spec.slo.latencyPercentile', message: 'must be between 0 and 100, both excluded, e.g. 95 or 99.9',
    change: (m) => (m.spec.slo = { latencyPercentile: 0 }) },
  { name: 'a zero latency threshold', path: 'spec.slo.latencyThreshold', message: 'must be longer than 0s, e.g. "250ms"',
    change: (m) => (m.spec.slo = { latencyThreshold: '0s' }) },
  { name: 'an error rate given in percent', path: 'spec.slo.maxErrorRate', message: 'must be at most 1 (a fraction: 0.01 is 1%)',
    change: (m) => (m.spec.slo = { maxErrorRate: 5 }) },
  { name: 'a jitter over 1', path: 'spec.fleet.jitter', message: 'must be at most 1 (a fraction of the interval, e.g. 0.1)',
    change: (m) => (m.spec.fleet.jitter = 1.5) },
  { name: 'a fleet of 0', path: 'spec.fleet.devices', message: 'must be at least 1',
    change: (m) => (m.spec.fleet.devices = 0) },
  { name: 'a fractional fleet', path: 'spec.fleet.devices', message: 'must be a whole number from 1 to 10000000',
    change: (m) => (m.spec.fleet.devices = 10.5) },
  { name: 'no fleet size', path: 'spec.fleet.devices', message: 'is required: a whole number from 1 to 10000000',
    change: (m) => delete m.spec.fleet.devices },
  { name: 'a misspelt field', path: 'spec.fleet.device', message: 'unknown field: check the spelling (kubectl explain loadexperiment.spec.fleet lists the fields)',
    change: (m) => (m.spec.fleet.device = 3) },
  { name: 'a load engine that does not exist', path: 'spec.generator.engine', message: 'must be "k6" or "loadlab"',
    change: (m) => (m.spec.generator = { engine: 'locust' }) },
  { name: 'a serial prefix the API refuses', path: 'spec.fleet.serialPrefix', message: /may only contain letters, digits/,
    change: (m) => (m.spec.fleet.serialPrefix = 'my kettle') },
  { name: 'search: max below start', path: 'spec.load.search.maxDevices', message: 'must be at least startDevices: the search starts at startDevices and stops at maxDevices',
    change: (m) => (m.spec.load = { search: { startDevices: 50, step: { factor: 2 }, maxDevices: 10 } }) },
  { name: 'search: factor and devices both set', path: 'spec.load.search.step', message: 'set exactly one of factor (multiply the fleet at each step, e.g. 1.5) or devices (add this many devices at each step)',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: { factor: 2, devices: 5 }, maxDevices: 100 } }) },
  { name: 'search: no step size', path: 'spec.load.search.step', message: 'set exactly one of factor (multiply the fleet at each step, e.g. 1.5) or devices (add this many devices at each step)',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: {}, maxDevices: 100 } }) },
  { name: 'search: a factor of 1', path: 'spec.load.search.step.factor', message: 'must be greater than 1, e.g. 1.5 (each step multiplies the fleet by it)',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: { factor: 1 }, maxDevices: 100 } }) },
  { name: 'search: a zero hold', path: 'spec.load.search.hold', message: 'must be longer than 0s, e.g. "60s"',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: { factor: 2 }, maxDevices: 100, hold: '0s' } }) },
  { name: 'search: too many steps', path: 'spec.load.search', message: 'must reach maxDevices in at most 100 steps: use a larger step or a smaller maxDevices',
    change: (m) => {
      m.spec.fleet.devices = 1000;
      m.spec.load = { search: { startDevices: 1, step: { devices: 1 }, maxDevices: 200 } };
    } },
  { name: 'a stage beyond the fleet', path: 'spec.load.stages', message: 'every stage must stay within fleet.devices: raise fleet.devices or lower the stage',
    change: (m) => (m.spec.load.stages[0].devices = 101) },
  { name: 'a search beyond the fleet', path: 'spec.load.search.maxDevices', message: 'must be at most fleet.devices: the search can only use devices the fleet has',
    change: (m) => (m.spec.load = { search: { startDevices: 10, step: { factor: 2 }, maxDevices: 200 } }) },
  { name: 'stages longer than the timeout', path: 'spec.timeout', message: 'must be at least the total duration of the stages: raise timeout or shorten the stages',
    change: (m) => {
      m.spec.load.stages.push({ devices: 100, duration: '59m', shape: 'hold' }, { devices: 100, duration: '1s' });
    } },
  { name: 'a search longer than the timeout', path: 'spec.timeout',
    message: 'must be at least the planned duration of the search, (rampUp + hold) for every step up to maxDevices: raise timeout or use fewer or shorter steps',
    // 7 steps (10, 15, 23, 35, 53, 80, then 100: clamped) of 10s + 60s = 8m10s > 5m.
    change: (m) => {
      m.spec.load = { search: { startDevices: 10, step: { factor: 1.5 }, maxDevices: 100 } };
      m.spec.timeout = '5m';
    } },
  { name: 'a zero timeout', path: 'spec.timeout', message: 'must be longer than 0s, e.g. "1h"',
    change: (m) => (m.spec.timeout = '0s') },
  { name: 'a baseline that is not an object name', path: 'spec.baseline.experiment', message: 'must be the name of a LoadExperiment in this namespace (lower-case letters, digits, - and ., e.g. quickstart-main)',
    change: (m) => (m.spec.baseline = { experiment: 'Main_Run' }) },
  { name: 'a baseline naming both an experiment and the previous run', path: 'spec.baseline', message: 'set exactly one: experiment (another LoadExperiment) or previousRun: true (this experiment\'s run before the current one)',
    change: (m) => (m.spec.baseline = { experiment: 'quickstart-main', previousRun: true }) },
  { name: 'env setting a typed knob', path: 'spec.target.env[0].name', message: 'DB_POOL_SIZE is set by spec.target.dbPoolSize: use that field instead',
    change: (m) => (m.spec.target = { env: [{ name: 'DB_POOL_SIZE', value: '3' }] }) },
  { name: 'env setting WRITE_BATCH_MAX_ROWS', path: 'spec.target.env[1].name', message: 'WRITE_BATCH_MAX_ROWS is set by spec.target.writeBatchMaxRows: use that field instead',
    change: (m) => (m.spec.target = { env: [{ name: 'MAX_IN_FLIGHT', value: '100' }, { name: 'WRITE_BATCH_MAX_ROWS', value: '3' }] }) },
  { name: 'env setting CPU_COST_MS', path: 'spec.target.env[0].name', message: 'CPU_COST_MS is set by spec.target.cpuCostMs: use that field instead',
    change: (m) => (m.spec.target = { env: [{ name: 'CPU_COST_MS', value: '3' }] }) },
  { name: 'env setting QUERY_DELAY_MS', path: 'spec.target.env[0].name', message: 'QUERY_DELAY_MS is set by spec.target.queryDelayMs: use that field instead',
    change: (m) => (m.spec.target = { env: [{ name: 'QUERY_DELAY_MS', value: '3' }] }) },
  { name: 'env setting what the API does not read (NODE_OPTIONS would run code in its pods)', path: 'spec.target.env[0].name', message: `must be one of the API's knobs: ${ENV_KNOBS.join(', ')} (README: the API's configuration)`,
    change: (m) => (m.spec.target = { env: [{ name: 'NODE_OPTIONS', value: '--require /tmp/x.js' }] }) },
  { name: 'env overriding the database URL', path: 'spec.target.env[0].name', message: 'is set by loadlab for every API replica (DATABASE_URL, TOKEN_SECRET, PORT, HOST) and cannot be overridden',
    change: (m) => (m.spec.target = { env: [{ name: 'DATABASE_URL', value: 'postgres://x' }] }) },
  { name: 'env naming a variable twice', path: 'spec.target.env', message: 'must not set the same name twice',
    change: (m) => (m.spec.target = { env: [{ name: 'MAX_IN_FLIGHT', value: '1' }, { name: 'MAX_IN_FLIGHT', value: '2' }] }) },
  { name: 'env with a numeric value', path: 'spec.target.env[0].value', message: 'must be a string (quote numbers: "4")',
    change: (m) => (m.spec.target = { env: [{ name: 'MAX_IN_FLIGHT', value: 4 }] }) },
  { name: 'a quantity that is not one', path: 'spec.target.resources.limits.memory', message: /Kubernetes quantity/,
    change: (m) => (m.spec.target = { resources: { limits: { memory: 'lots' } } }) },
  { name: '101 replicas', path: 'spec.target.replicas', message: 'must be at most 100',
    change: (m) => (m.spec.target = { replicas: 101 }) },
  { name: 'a pool of 0', path: 'spec.target.dbPoolSize', message: 'must be at least 1',
    change: (m) => (m.spec.target = { dbPoolSize: 0 }) },
  { name: 'a preload longer than a year', path: 'spec.database.preloadDays', message: 'must be at most 365',
    change: (m) => (m.spec.database = { preloadDays: 366 }) },
  { name: 'an unknown database mode', path: 'spec.database.mode', message: 'must be "reset" or "keep"',
    change: (m) => (m.spec.database = { mode: 'wipe' }) },
  { name: '65 generators', path: 'spec.generator.parallelism', message: 'must be at most 64',
    change: (m) => (m.spec.generator = { parallelism: 65 }) },
  { name: 'an unknown cleanup policy', path: 'spec.cleanup', message: 'must be "always", "onSuccess" or "never"',
    change: (m) => (m.spec.cleanup = 'sometimes') },
  { name: 'a saturation threshold of 0 (every resource would be saturated)', path: 'spec.analysis.thresholds.apiCpuCores', message: 'must be greater than 0 (CPU cores; default 0.9)',
    change: (m) => (m.spec.analysis = { thresholds: { apiCpuCores: 0 } }) },
  { name: 'a fraction threshold given in percent', path: 'spec.analysis.thresholds.memoryLimitFraction', message: 'must be at most 1 (a fraction: 0.2 is 20%; default 0.9)',
    change: (m) => (m.spec.analysis = { thresholds: { memoryLimitFraction: 90 } }) },
  { name: 'a negative settle time', path: 'spec.analysis.thresholds.settleS', message: 'must be at least 0 (seconds; default 10)',
    change: (m) => (m.spec.analysis = { thresholds: { settleS: -1 } }) },
  { name: 'a ramp skipped whole', path: 'spec.analysis.thresholds.rampSkipFraction', message: 'must be less than 1 (a fraction: 0.2 is 20%; default 0.5)',
    change: (m) => (m.spec.analysis = { thresholds: { rampSkipFraction: 1 } }) },
  { name: 'a threshold in seconds written as a duration', path: 'spec.analysis.thresholds.poolAcquireP95S', message: 'must be a number greater than 0 and at most 60 (seconds; default 0.01)',
    change: (m) => (m.spec.analysis = { thresholds: { poolAcquireP95S: '10ms' } }) },
  { name: 'a threshold the analysis does not have', path: 'spec.analysis.thresholds.apiCpu',
    message: 'unknown field: check the spelling (kubectl explain loadexperiment.spec.analysis.thresholds lists the fields)',
    change: (m) => (m.spec.analysis = { thresholds: { apiCpu: 0.5 } }) },
  { name: 'a wrong apiVersion', path: 'apiVersion', message: 'must be loadlab.dev/v1alpha1',
    change: (m) => (m.apiVersion = 'loadlab.dev/v1') },
  { name: 'a wrong kind', path: 'kind', message: 'must be LoadExperiment',
    change: (m) => (m.kind = 'LoadTest') },
  { name: 'no name', path: 'metadata.name', message: /^is required/,
    change: (m) => (m.metadata = {}) },
  { name: 'a name loadlab cannot derive object names from', path: '',
    message: 'metadata.name must be at most 48 characters of lowercase letters, digits and "-", starting with a letter, so the names of the objects loadlab derives from it stay valid',
    change: (m) => (m.metadata.name = 'My_Experiment') },
  { name: 'an image reference that cannot be parsed', path: 'spec.target.image', message: imageReferenceRule('spec.target.image').message,
    change: (m) => (m.spec.target = { image: 'loadlab/api:dev:2' }) },
  { name: 'an image reference with a registry but no repository', path: 'spec.target.image', message: imageReferenceRule('spec.target.image').message,
    change: (m) => (m.spec.target = { image: 'registry.local:5000/' }) },
  { name: 'API requests above limits', path: 'spec.target.resources', message: RESOURCES_RULES.target.message,
    change: (m) => (m.spec.target = { resources: { requests: { memory: '2Gi', cpu: '100m' }, limits: { memory: '2000Mi', cpu: '0.1' } } }) },
  { name: 'generator requests above limits', path: 'spec.generator.resources', message: RESOURCES_RULES.generator.message,
    change: (m) => (m.spec.generator = { resources: { requests: { cpu: '1001m' }, limits: { cpu: 1 } } }) },
  { name: 'a negative quantity', path: 'spec.target.resources.limits.cpu', message: 'must be a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi" (not negative)',
    change: (m) => (m.spec.target = { resources: { limits: { cpu: '-1' } } }) },
  { name: 'a nodeSelector key with two slashes', path: 'spec.generator.nodeSelector', message: NODE_SELECTOR_RULES.keys.message,
    change: (m) => (m.spec.generator = { nodeSelector: { 'a/b/c': 'x' } }) },
  { name: 'a nodeSelector key prefix over 253 characters', path: 'spec.generator.nodeSelector', message: NODE_SELECTOR_RULES.keys.message,
    change: (m) => (m.spec.generator = { nodeSelector: { [`${'a'.repeat(60)}.`.repeat(5) + 'x/role']: 'x' } }) },
  { name: 'a nodeSelector value over 63 characters', path: 'spec.generator.nodeSelector.role', message: 'must be at most 63 characters',
    change: (m) => (m.spec.generator = { nodeSelector: { role: 'x'.repeat(64) } }) },
  { name: 'a nodeSelector value ending in a dash', path: 'spec.generator.nodeSelector', message: NODE_SELECTOR_RULES.values.message,
    change: (m) => (m.spec.generator = { nodeSelector: { role: 'load-' } }) },
  { name: 'a toleration key with a space', path: 'spec.generator.tolerations[0].key', message: TOLERATION_RULES.key.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'role load', operator: 'Exists' }] }) },
  { name: 'a toleration without key or Exists', path: 'spec.generator.tolerations[0].operator', message: TOLERATION_RULES.emptyKeyNeedsExists.message,
    change: (m) => (m.spec.generator = { tolerations: [{ effect: 'NoSchedule' }] }) },
  { name: 'a toleration with Exists and a value', path: 'spec.generator.tolerations[0].value', message: TOLERATION_RULES.existsHasNoValue.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }) },
  { name: 'a toleration value with a slash', path: 'spec.generator.tolerations[0].value', message: TOLERATION_RULES.value.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'k', value: 'a/b' }] }) },
  { name: 'tolerationSeconds without an effect', path: 'spec.generator.tolerations[0].tolerationSeconds', message: TOLERATION_RULES.secondsNeedNoExecute.message,
    change: (m) => (m.spec.generator = { tolerations: [{ key: 'k', operator: 'Exists', tolerationSeconds: 5 }] }) },
  { name: 'stages that offer no load', path: 'spec.load.stages', message: 'must bring at least one device online: every stage has devices: 0, so the plan offers no load',
    change: (m) => (m.spec.load.stages = [{ devices: 0, duration: '1m' }]) },
  { name: 'no spec', path: 'spec', message: 'is required',
    change: (m) => delete m.spec },
];

describe('invalid experiments are refused with the path and a message a person can act on', () => {
  for (const { name, change, path, message } of INVALID) {
    it(name, () => {
      const manifest = minimal();
      change(manifest);
      const errors = errorsOf(manifest);
      const found = errors.find(
        (error) => error.path === path && (typeof message === 'string' ? error.message === message : message.test(error.message)),
      );
      assert.ok(found, `expected ${path}: ${String(message)}\ngot:\n${formatErrors(errors)}`);
    });
  }

  it('covers every rule (each rule\'s message is expected by at least one case)', () => {
    const expected = new Set(INVALID.map((entry) => entry.message).filter((message) => typeof message === 'string'));
    for (const rule of [...SPEC_RULES, ...ROOT_RULES]) {
      assert.ok(expected.has(rule.message), `no invalid case for the rule at ${rule.path}: ${rule.message}`);
    }
  });

  it('reports every problem of a manifest at once, not one per run', () => {
    const manifest = minimal();
    manifest.spec.fleet.reportInterval = '0s';
    manifest.spec.slo = { latencyPercentile: 100 };
    manifest.spec.target = { env: [{ name: 'DB_POOL_SIZE', value: '1' }] };
    const paths = errorsOf(manifest).map((error) => error.path);
    assert.deepEqual(paths.sort(), ['spec.fleet.reportInterval', 'spec.slo.latencyPercentile', 'spec.target.env[0].name']);
  });
});

describe('errors point into the source', () => {
  it('gives line and column for a field in YAML', () => {
    const yaml = [
      'apiVersion: loadlab.dev/v1alpha1',
      'kind: LoadExperiment',
      'metadata:',
      '  name: located',
      'spec:',
      '  fleet:',
      '    devices: 10',
      '    reportInterval: 0s',
      '  load:',
      '    stages: [{devices: 10, duration: 1m}]',
      '',
    ].join('\n');
    const result = parseExperiment(yaml, 'located.yaml');
    assert.ok(!result.ok);
    assert.deepEqual(result.errors, [
      { path: 'spec.fleet.reportInterval', message: 'must be longer than 0s, e.g. "30s"', line: 8, column: 21, source: 'located.yaml' },
    ]);
    assert.equal(formatErrors(result.errors), 'located.yaml:8:21: spec.fleet.reportInterval: must be longer than 0s, e.g. "30s"');
  });

  it('reports a YAML syntax error with its line and column', () => {
    const result = parseExperiment('apiVersion: loadlab.dev/v1alpha1\nspec:\n  fleet: {devices: 10\n  load: x\n', 'broken.yaml');
    assert.ok(!result.ok);
    const [first] = result.errors;
    assert.equal(first?.source, 'broken.yaml');
    assert.equal(first?.line, 4);
    assert.ok(typeof first?.column === 'number');
    assert.match(formatErrors(result.errors), /^broken\.yaml:4:\d+: /);
  });

  it('refuses an empty file and a file with two documents', () => {
    const empty = parseExperiment('', 'empty.yaml');
    assert.ok(!empty.ok);
    assert.match(empty.errors[0]!.message, /empty/);
    const two = parseExperiment(`${JSON.stringify(minimal())}\n---\n${JSON.stringify(minimal())}\n`, 'two.yaml');
    assert.ok(!two.ok);
    assert.match(two.errors[0]!.message, /2 YAML documents/);
    assert.equal(two.errors[0]!.line, 2); // the --- that starts the second document
  });

  it('reads JSON as well as YAML', () => {
    assert.ok(parseObject(minimal()).ok);
  });
});
