// The operator's pure parts, without a cluster: the builders of every child object, names,
// configuration, conditions, the run's timeline, the work queue and the exported RBAC rules.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseExperiment } from '../src/schema/index.js';
import { DEFAULT_POLICY, experimentConnectionLimit, policyProblems, preloadRows, type Policy } from '../src/controller/policy.js';
import { withDefaultPlacement } from '../src/controller/load-objects.js';
import { atStudyCount, runStart } from '../src/controller/scaling-step.js';
import { checkRunId, scalingRunIdFor, uidTag, unitRunId } from '../src/contract/names.js';
import { MAX_SEARCH_STEPS } from '../src/schema/search-steps.js';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { buildScriptConfigMap, buildTestRun, renderK6Script } from '../src/k6/index.js';
import {
  allRules,
  analysisSettings,
  analysisTimeline,
  apiImage,
  apiPodEnvironment,
  apiSecretName,
  buildApiSecret,
  buildApiDeployment,
  buildApiService,
  ConfigError,
  conditionDiffers,
  databaseSchemaName,
  deploymentAvailable,
  eventName,
  experimentDatabaseUrl,
  grafanaLink,
  Informer,
  isNewer,
  KubeClient,
  silentLogger,
  loadOperatorConfig,
  microTime,
  nameConflictMessage,
  ownerKey,
  ranPhases,
  rbacManifests,
  resourceOfPath,
  resourcePath,
  RESOURCES,
  runIdFor,
  runSelector,
  promString,
  promRegexLiteral,
  resourceSelector,
  runUnits,
  setCondition,
  SPEC_HASH_ANNOTATION,
  LOAD_OBJECTS,
  testRunTimes,
  unitLoadObjectName,
  WorkQueue,
  type Checkpoint,
  type KubeObject,
  type StepContext,
} from '../src/controller/index.js';
import { waitFor } from './support/stand-ins.js';
import { loadExperimentSchema, type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan } from '../src/traffic/plan.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function experiment(spec: Json = {}, name = 'quickstart'): LoadExperiment {
  return loadExperimentSchema.parse({
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name, namespace: 'lab' },
    spec: { fleet: { devices: 1000 }, load: { stages: [{ devices: 1000, duration: '1m' }] }, ...spec },
  }) as LoadExperiment;
}

const BUILD = { ownerUid: 'uid-1', runId: 'r1-abcdef', databaseUrl: 'postgres://loadlab_q_abcdef:pw@db:5432/loadlab?options=-c+search_path%3Dloadlab_q_abcdef%2Cpublic', tokenSecret: 'secret-0123456789abcdef' };

describe('buildApiDeployment', () => {
  const cases: { name: string; spec: Json; defaultImage?: string; check: (deployment: Json) => void }[] = [
    {
      name: 'defaults: one replica, the placeholder image, pool 10, restricted pod',
      spec: {},
      check: (d) => {
        assert.equal(d.spec.replicas, 1);
        const container = d.spec.template.spec.containers[0];
        assert.equal(container.image, 'loadlab/api:dev');
        assert.equal(container.name, 'api');
        assert.deepEqual(container.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true, runAsNonRoot: true });
        assert.deepEqual(d.spec.template.spec.securityContext, { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
        assert.deepEqual(d.spec.template.spec.volumes, [{ name: 'tmp', emptyDir: {} }]);
        assert.equal(d.spec.template.spec.automountServiceAccountToken, false);
        assert.equal(container.readinessProbe.httpGet.path, '/readyz');
        assert.equal(container.resources, undefined);
      },
    },
    {
      name: 'the operator\'s API_IMAGE replaces the placeholder',
      spec: {},
      defaultImage: 'registry.example/loadlab/api:1.2.3',
      check: (d) => assert.equal(d.spec.template.spec.containers[0].image, 'registry.example/loadlab/api:1.2.3'),
    },
    {
      name: 'an image the experiment names wins over API_IMAGE',
      spec: { target: { image: 'mine/api:x' } },
      defaultImage: 'registry.example/loadlab/api:1.2.3',
      check: (d) => assert.equal(d.spec.template.spec.containers[0].image, 'mine/api:x'),
    },
    {
      name: 'replicas, resources and the typed knobs',
      spec: { target: { replicas: 3, dbPoolSize: 4, cpuCostMs: 2, queryDelayMs: 20, writeBatchMaxRows: 50, resources: { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: 0 } } } },
      check: (d) => {
        assert.equal(d.spec.replicas, 3);
        const container = d.spec.template.spec.containers[0];
        assert.deepEqual(container.resources, { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '0' } });
        const env = Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value]));
        assert.deepEqual([env.DB_POOL_SIZE, env.CPU_COST_MS, env.QUERY_DELAY_MS, env.WRITE_BATCH_MAX_ROWS], ['4', '2', '20', '50']);
      },
    },
    {
      name: 'extra env, the managed variables and the pod\'s listen address',
      spec: { target: { env: [{ name: 'MAX_IN_FLIGHT', value: '100' }, { name: 'LOG_LEVEL', value: 'debug' }] } },
      check: (d) => {
        const env = Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]));
        assert.equal(env.MAX_IN_FLIGHT, '100');
        assert.equal(env.LOG_LEVEL, 'debug');
        assert.equal(env.HOST, '0.0.0.0');
        assert.equal(env.PORT, '3000');
        // The secrets by reference to the API's Secret, never as values in the pod spec.
        const refs = Object.fromEntries(d.spec.template.spec.containers[0].env.filter((e: Json) => e.valueFrom).map((e: Json) => [e.name, e.valueFrom.secretKeyRef]));
        const secret = buildApiSecret(experiment(), BUILD);
        assert.deepEqual(refs, { DATABASE_URL: { name: secret.metadata.name, key: 'DATABASE_URL' }, TOKEN_SECRET: { name: secret.metadata.name, key: 'TOKEN_SECRET' } });
        assert.ok(!JSON.stringify(d).includes(BUILD.tokenSecret) && !JSON.stringify(d).includes(':pw@'), 'no secret value in the Deployment');
      },
    },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const deployment = buildApiDeployment(experiment(testCase.spec), { ...BUILD, ...(testCase.defaultImage ? { defaultImage: testCase.defaultImage } : {}) }) as Json;
      testCase.check(deployment);
      // Always: deterministic name, owned, selector within the pod labels and free of the run.
      assert.equal(deployment.metadata.name, 'quickstart-api');
      assert.equal(deployment.metadata.namespace, 'lab');
      assert.deepEqual(deployment.metadata.ownerReferences, [{ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', name: 'quickstart', uid: 'uid-1', controller: true, blockOwnerDeletion: true }]);
      const selector = deployment.spec.selector.matchLabels;
      for (const [key, value] of Object.entries(selector)) assert.equal(deployment.spec.template.metadata.labels[key], value);
      assert.ok(!('loadlab.dev/run' in selector), 'a Deployment selector is immutable: it must not change with the run');
      assert.equal(deployment.spec.template.metadata.labels['loadlab.dev/run'], 'r1-abcdef');
    });
  }

  it('is deterministic, and its spec hash changes with the spec and the run only', () => {
    const hash = (spec: Json, runId = 'r1-abcdef') => (buildApiDeployment(experiment(spec), { ...BUILD, runId }).metadata.annotations as Record<string, string>)[SPEC_HASH_ANNOTATION];
    assert.deepEqual(buildApiDeployment(experiment(), BUILD), buildApiDeployment(experiment(), BUILD));
    assert.equal(hash({}), hash({}));
    assert.notEqual(hash({}), hash({ target: { replicas: 2 } }));
    assert.notEqual(hash({}), hash({}, 'r2-abcdef'));
    assert.equal(hash({}), hash({ slo: { latencyThreshold: '1s' } }), 'the SLO does not touch the API');
  });

  it('puts the API\'s secrets in an immutable Secret named after its content, owned by the experiment', () => {
    const secret = buildApiSecret(experiment(), BUILD);
    assert.match(secret.metadata.name, /^quickstart-api-[0-9a-f]{10}$/);
    assert.deepEqual(secret.stringData, { DATABASE_URL: BUILD.databaseUrl, TOKEN_SECRET: BUILD.tokenSecret });
    assert.equal(secret.immutable, true);
    assert.equal(secret.metadata.ownerReferences?.[0]?.uid, 'uid-1');
    assert.equal(buildApiSecret(experiment(), BUILD).metadata.name, secret.metadata.name, 'the same content, the same name');
    assert.notEqual(buildApiSecret(experiment(), { ...BUILD, tokenSecret: 'another-run' }).metadata.name, secret.metadata.name, 'a new run\'s token: a new Secret');
    assert.notEqual(apiSecretName(experiment(), { ...BUILD, databaseUrl: BUILD.databaseUrl.replace(':pw@', ':rotated@') }), secret.metadata.name, 'a new password: a new Secret');
  });

  it('keeps the env sorted (a stable object) and uses the local-mode knob mapping', () => {
    const names = apiPodEnvironment(experiment({ target: { env: [{ name: 'SHUTDOWN_GRACE_MS', value: '1' }] } }), BUILD).map((entry) => entry.name);
    assert.deepEqual(names, [...names].sort());
    assert.equal(apiImage(experiment(), undefined), 'loadlab/api:dev');
  });
});

describe('buildApiService', () => {
  it('exposes the API on port 3000 under <experiment>-api, selecting the Deployment\'s pods', () => {
    const service = buildApiService(experiment(), BUILD) as Json;
    const deployment = buildApiDeployment(experiment(), BUILD) as Json;
    assert.equal(service.metadata.name, 'quickstart-api');
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
    assert.deepEqual(service.spec.ports, [{ name: 'http', port: 3000, targetPort: 'http', protocol: 'TCP' }]);
    assert.equal(service.metadata.ownerReferences[0].uid, 'uid-1');
  });
});

describe('the run\'s ConfigMap and TestRun as the operator asks for them', () => {
  it('one TestRun per search step, named after the run and the step, with the step\'s phases only', () => {
    const search = experiment({ fleet: { devices: 1000 }, load: { search: { startDevices: 100, step: { factor: 2 }, maxDevices: 1000, hold: '30s', rampUp: '10s' } } }, 'bp');
    const plan = buildTrafficPlan(search);
    const units = runUnits(plan);
    assert.deepEqual(units.map((unit) => unit.phases), [{ from: 0, to: 2 }, { from: 2, to: 4 }, { from: 4, to: 6 }, { from: 6, to: 8 }, { from: 8, to: 10 }]);
    assert.equal(unitLoadObjectName('TestRun', search, 'r1-abcdef', 'search', 2), 'bp-r1-abcdef-s2-k6');
    const script = renderK6Script(search, { plan, phaseRange: units[2]!.phases });
    const identity = { runId: 'r1-abcdef-s2', namespace: 'lab', ownerUid: 'uid-1' };
    const testRun = buildTestRun(search, { ...identity, tokenSecret: 'secret', phaseRange: units[2]!.phases, k6Cleanup: 'none' }) as Json;
    const configMap = buildScriptConfigMap(search, script, identity) as Json;
    assert.equal(testRun.metadata.name, 'bp-r1-abcdef-s2-k6');
    assert.equal(configMap.metadata.name, testRun.metadata.name);
    assert.equal(testRun.metadata.annotations['loadlab.dev/phases'], '4-5');
    assert.equal(testRun.spec.cleanup, undefined);
  });

  it('one TestRun over the whole plan for stages', () => {
    const plan = buildTrafficPlan(experiment({ load: { stages: [{ devices: 10, duration: '10s' }, { devices: 10, duration: '20s', shape: 'hold' }] } }));
    assert.deepEqual(runUnits(plan), [{ unit: 0, phases: { from: 0, to: 2 }, durationS: 30 }]);
    assert.equal(unitLoadObjectName('TestRun', experiment(), 'r1-abcdef', 'stages', 0), 'quickstart-r1-abcdef-k6');
  });
});

describe('deploymentAvailable (kubectl rollout status)', () => {
  const cases: [string, Json | undefined, boolean, RegExp?][] = [
    ['missing', undefined, false, /does not exist/],
    ['not yet observed', { metadata: { generation: 2 }, spec: { replicas: 1 }, status: { observedGeneration: 1, updatedReplicas: 1, availableReplicas: 1, replicas: 1 } }, false, /observe/],
    ['updating', { metadata: { generation: 2 }, spec: { replicas: 3 }, status: { observedGeneration: 2, updatedReplicas: 1, availableReplicas: 1, replicas: 3 } }, false, /1 of 3 API replicas updated/],
    ['old replicas left', { metadata: { generation: 2 }, spec: { replicas: 2 }, status: { observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2, replicas: 3 } }, false, /old API replicas/],
    ['not available', { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, updatedReplicas: 2, availableReplicas: 1, replicas: 2 } }, false, /1 of 2 API replicas available/],
    ['available', { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, updatedReplicas: 2, availableReplicas: 2, replicas: 2, conditions: [{ type: 'Available', status: 'True' }] } }, true],
  ];
  for (const [name, deployment, available, message] of cases) {
    it(name, () => {
      const result = deploymentAvailable(deployment as never);
      assert.equal(result.available, available);
      if (message) assert.match(result.message, message);
    });
  }
});

const EXPERIMENTS = new URL('../../../experiments/', import.meta.url).pathname;

describe("the installation's policy (policy.ts): refused before anything is created, with the knob that sets the limit", () => {
  const refusals = (spec: Json, policy: Partial<Policy> = {}) => {
    const e = experiment(spec);
    return policyProblems(e, buildTrafficPlan(e), { ...DEFAULT_POLICY, ...policy });
  };

  it('allows every example in experiments/ under the default policy', () => {
    for (const file of readdirSync(EXPERIMENTS).filter((name) => name.endsWith('.yaml'))) {
      const parsed = parseExperiment(readFileSync(join(EXPERIMENTS, file), 'utf8'), file);
      assert.ok(parsed.ok, file);
      if (!parsed.ok) continue;
      const problems = policyProblems(parsed.experiment, buildTrafficPlan(parsed.experiment), DEFAULT_POLICY);
      assert.deepEqual(problems, [], file);
    }
  });

  it('runs a scaling study, and budgets its connections at its largest replica count', () => {
    assert.deepEqual(refusals({ scaling: { replicas: [1, 2, 4] } }), []);
    assert.equal(experimentConnectionLimit(experiment({ scaling: { replicas: [1, 4] }, target: { dbPoolSize: 10 } })), experimentConnectionLimit(experiment({ target: { replicas: 4, dbPoolSize: 10 } })));
    const budget = refusals({ scaling: { replicas: [1, 4] }, target: { dbPoolSize: 10 } }, { databaseConnectionsPerExperiment: 58 }).find((p) => /need up to/.test(p));
    assert.match(budget!, /^spec\.scaling: its largest count, 4 replicas, x dbPoolSize 10 need up to 59 database connections/);
  });

  it('gives an experiment\'s role the connections of its pools and readiness probes, a rolling update\'s extra pods and the operator\'s, and refuses more than the installation allows', () => {
    const withTarget = (replicas: number, dbPoolSize: number) => experiment({ target: { replicas, dbPoolSize } });
    assert.equal(experimentConnectionLimit(withTarget(1, 10)), 26);
    assert.equal(experimentConnectionLimit(withTarget(4, 10)), 59);
    assert.equal(experimentConnectionLimit(withTarget(5, 1)), 18);
    assert.deepEqual(refusals({ target: { replicas: 4, dbPoolSize: 10 } }, { databaseConnectionsPerExperiment: 59 }), []);
    const [problem] = refusals({ target: { replicas: 4, dbPoolSize: 10 } }, { databaseConnectionsPerExperiment: 58 });
    assert.match(problem!, /^spec\.target: 4 replicas x dbPoolSize 10 need up to 59 database connections .* allows 58 per experiment \(the operator's DATABASE_CONNECTIONS_PER_EXPERIMENT\): lower replicas or dbPoolSize$/);
  });

  it('refuses more requests per second per generator pod than the installation allows, naming the parallelism that would do', () => {
    // 1,000,000 devices, every 30 s on two endpoints: 66,667 requests/s at the peak.
    const big = { fleet: { devices: 1_000_000 }, load: { stages: [{ devices: 1_000_000, duration: '1m' }] } };
    const [problem] = refusals(big);
    assert.match(problem!, /^spec\.generator\.parallelism: at its peak the plan offers 66,667 requests\/s, 66,667 per generator pod with parallelism 1; this installation allows 20,000 per pod \(the operator's MAX_REQUESTS_PER_SECOND_PER_GENERATOR\): set parallelism to at least 4$/);
    assert.deepEqual(refusals({ ...big, generator: { parallelism: 4 } }), []);
    assert.match(refusals({ ...big, fleet: { devices: 1_000_000, reportInterval: '100ms' } }, {})[0]!, /set parallelism to at least 502 \(at most 64: lower the fleet or lengthen the intervals\)/);
  });

  it('refuses a plan that offers less than one request', () => {
    const [problem] = refusals({ fleet: { devices: 1, reportInterval: '24h', pollInterval: '24h' }, load: { stages: [{ devices: 1, duration: '1m' }] } });
    assert.match(problem!, /^spec\.load: the plan offers 0\.\d+ requests in all .*: no load; bring more devices online/);
  });

  it('refuses a preload larger than the installation allows', () => {
    const spec = { fleet: { devices: 100_000, reportInterval: '10s' }, load: { stages: [{ devices: 10, duration: '1m' }] }, database: { preloadDays: 365 } };
    assert.equal(preloadRows(experiment(spec)), 100_000 * 365 * 8640);
    const [problem] = refusals(spec);
    assert.match(problem!, /^spec\.database\.preloadDays: 365 days for 100,000 devices reporting every 10s preload 315,360,000,000 rows; this installation allows 100,000,000 \(the operator's MAX_PRELOAD_ROWS\): preload fewer days$/);
    assert.deepEqual(refusals({ ...spec, fleet: { devices: 10_000, reportInterval: '10s' }, database: { preloadDays: 1 } }), [], '86,400,000 rows');
  });

  it('runs only the API images the installation allows (default: its own)', () => {
    assert.deepEqual(refusals({}), [], 'the placeholder default');
    assert.deepEqual(refusals({}, { apiImage: 'registry.local/loadlab/api:1.4' }), [], 'the placeholder becomes the installation\'s API_IMAGE');
    assert.deepEqual(refusals({ target: { image: 'registry.local/loadlab/api:1.4' } }, { apiImage: 'registry.local/loadlab/api:1.4' }), []);
    const [problem] = refusals({ target: { image: 'evil.example/miner:latest' } }, { apiImage: 'registry.local/loadlab/api:1.4' });
    assert.match(problem!, /^spec\.target\.image: evil\.example\/miner:latest is not an image this installation runs \(the operator's ALLOWED_API_IMAGES: registry\.local\/loadlab\/api:1\.4\)/);
    const prefix = { allowedApiImages: ['registry.local/loadlab/api:*', 'loadlab/api:dev'] };
    assert.deepEqual(refusals({ target: { image: 'registry.local/loadlab/api:pr-17' } }, prefix), []);
    assert.equal(refusals({ target: { image: 'registry.local/loadlab/api-fork:1' } }, prefix).length, 1);
  });

  it('keeps the load generators within the installation\'s placement: labels may narrow it, tolerations only its own', () => {
    const placement = { nodeSelector: { 'loadlab.dev/role': 'load' }, tolerations: [{ key: 'loadlab.dev/role', value: 'load', effect: 'NoSchedule' as const }] };
    assert.deepEqual(refusals({ generator: { nodeSelector: { zone: 'a' }, tolerations: [{ key: 'loadlab.dev/role', operator: 'Equal', value: 'load', effect: 'NoSchedule' }] } }, { generatorPlacement: placement }), []);
    const [selector] = refusals({ generator: { nodeSelector: { 'loadlab.dev/role': 'sut' } } }, { generatorPlacement: placement });
    assert.match(selector!, /^spec\.generator\.nodeSelector: loadlab\.dev\/role: sut would take the load generators off this installation's nodes \(its GENERATOR_PLACEMENT selects loadlab\.dev\/role: load\)/);
    const [toleration] = refusals({ generator: { tolerations: [{ operator: 'Exists' }] } }, { generatorPlacement: placement });
    assert.match(toleration!, /^spec\.generator\.tolerations\[0\]: \{"operator":"Exists"\} is not one this installation allows its load generators \(its GENERATOR_PLACEMENT tolerates \{"key":"loadlab\.dev\/role"/);
    assert.match(refusals({ generator: { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] } })[0]!, /GENERATOR_PLACEMENT tolerates nothing/);

    // What the generator pods get: the installation's labels plus the experiment's, its tolerations unless the experiment names some of them.
    const placed = withDefaultPlacement(experiment({ generator: { nodeSelector: { zone: 'a' } } }), placement).spec.generator;
    assert.deepEqual(placed.nodeSelector, { 'loadlab.dev/role': 'load', zone: 'a' });
    assert.deepEqual(placed.tolerations, placement.tolerations);
    assert.deepEqual(withDefaultPlacement(experiment({}), placement).spec.generator.nodeSelector, placement.nodeSelector);
    const unplaced = experiment({ generator: { nodeSelector: { zone: 'a' } } });
    assert.equal(withDefaultPlacement(unplaced, undefined), unplaced);
  });
});

describe('names', () => {
  it('derives PostgreSQL identifiers of at most 63 characters from namespace, name and the whole uid', () => {
    const uid = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const long = 'a'.repeat(63);
    for (const [namespace, name] of [['default', 'quickstart'], ['team-a', 'seed-20k'], [long, long]]) {
      const schema = databaseSchemaName(namespace!, name!, uid);
      assert.ok(schema.length <= 63, schema);
      assert.match(schema, /^loadlab_[a-z0-9_]+_0f8fad5bd9cb469fa16570867728950e$/);
    }
    assert.equal(databaseSchemaName('team-a', 'seed-20k', uid), 'loadlab_team_a_seed_20k_0f8fad5bd9cb469fa16570867728950e');
    // Uids that share their first 24 bits (the old tag's length) still give different names.
    assert.notEqual(databaseSchemaName('a', 'x', '0f8fad5b-0000-0000-0000-000000000001'), databaseSchemaName('a', 'x', '0f8fad5b-0000-0000-0000-000000000002'));
    // Same name in two namespaces: different objects, different schemas.
    assert.notEqual(databaseSchemaName('a', 'x', uid), databaseSchemaName('b', 'x', uid.replace('0f', '1f')));
    assert.throws(() => databaseSchemaName('a', 'x', ''), /no uid/);
  });

  it('names runs r<generation>-<uid tag> and TestRuns within k6-operator\'s 51 characters', () => {
    assert.match(runIdFor('uid-1', 7), /^r7-[0-9a-f]{6}$/);
    const long = experiment({}, 'a'.repeat(48));
    assert.ok(unitLoadObjectName('TestRun', long, runIdFor('uid', 123456), 'search', 99).length <= 51);
  });

  it('escapes what it puts into PromQL: a value never ends its literal, and matches itself only inside a regex', () => {
    assert.equal(runSelector('lab', 'bp', 'r1",run=~".*'), 'experiment="lab/bp",run=~"r1\\",run=~\\"\\\\.\\\\*(-s[0-9]+)?"');
    assert.equal(promString('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.equal(promRegexLiteral('x.y+(z)'), 'x\\\\.y\\\\+\\\\(z\\\\)');
    // What PromQL unquotes it to is a regex that matches the value itself and nothing else.
    const value = 'r1.a+(b)|c';
    const unquoted = JSON.parse(`"${promRegexLiteral(value)}"`) as string;
    assert.ok(new RegExp(`^${unquoted}$`).test(value));
    assert.ok(!new RegExp(`^${unquoted}$`).test('r1Xa(b)'));
    assert.equal(resourceSelector('lab', 'a.b'), 'namespace="lab",pod=~"a\\\\.b-.*"');
  });

  it('selects a run\'s series across its step TestRuns, and the pods of the experiment', () => {
    const selector = runSelector('lab', 'bp', 'r1-abcdef');
    assert.equal(selector, 'experiment="lab/bp",run=~"r1-abcdef(-s[0-9]+)?"');
    const pattern = new RegExp(`^${/run=~"(.+)"/.exec(selector)![1]!}$`);
    assert.ok(pattern.test('r1-abcdef') && pattern.test('r1-abcdef-s12'));
    assert.ok(!pattern.test('r1-abcdef0') && !pattern.test('r11-abcdef'));
  });

  it('names Events after the run and what happened (a retried step cannot report twice)', () => {
    assert.equal(eventName('quickstart', 'r1-abcdef', 'TestRunCreated', 3), 'quickstart.r1-abcdef.testruncreated.3');
    assert.ok(eventName('a'.repeat(48), 'r1', 'X'.repeat(300)).length <= 253);
  });

  it('gives the experiment\'s role its schema first on the search_path, keeping host, database and TLS settings', () => {
    const url = new URL(experimentDatabaseUrl('postgres://postgres:adm%40n@db.svc:5432/loadlab?sslmode=require', 'loadlab_q_abc123', 'p@ss/word'));
    assert.equal(url.username, 'loadlab_q_abc123');
    assert.equal(decodeURIComponent(url.password), 'p@ss/word');
    assert.equal(url.host, 'db.svc:5432');
    assert.equal(url.pathname, '/loadlab');
    assert.equal(url.searchParams.get('sslmode'), 'require');
    assert.equal(url.searchParams.get('options'), '-c search_path=loadlab_q_abc123,public');
  });
});

describe('`loadlab operator`', () => {
  it('refuses to start with an invalid environment: exit 2 and every problem named', async () => {
    const { main } = await import('../src/cli/main.js');
    let stderr = '';
    const code = await main(['operator'], { stdout: () => undefined, stderr: (text) => (stderr += text), env: { PROMETHEUS_URL: 'nope' } });
    assert.equal(code, 2);
    assert.match(stderr, /PROMETHEUS_URL: must be an http/);
    assert.match(stderr, /DATABASE_URL: is required/);
  });
  it('documents its environment in --help', async () => {
    const { main } = await import('../src/cli/main.js');
    let stdout = '';
    assert.equal(await main(['operator', '--help'], { stdout: (text) => (stdout += text), stderr: () => undefined, env: {} }), 0);
    for (const name of ['PROMETHEUS_URL', 'DATABASE_URL', 'WATCH_NAMESPACES', 'API_IMAGE', 'GRAFANA_URL', 'LEADER_ELECTION', 'LEASE_NAMESPACE', 'POD_NAME']) assert.match(stdout, new RegExp(name));
    assert.match(stdout, /ANALYSIS_DELAY_SECONDS +the wait after the load ends before analysing \(default: two scrape\s+intervals/);
  });
});

describe('configuration', () => {
  const base = { PROMETHEUS_URL: 'http://prometheus:9090/', DATABASE_URL: 'postgres://u:p@db:5432/loadlab', LEASE_NAMESPACE: 'loadlab-system' };
  const valid: [string, Json, (config: ReturnType<typeof loadOperatorConfig>) => void][] = [
    ['the minimum', base, (c) => {
      assert.equal(c.prometheusUrl, 'http://prometheus:9090');
      assert.equal(c.watchNamespaces, 'all');
      assert.equal(c.leaderElection.enabled, true);
      assert.equal(c.leaderElection.leaseDurationMs, 15_000);
      assert.equal(c.leaderElection.renewDeadlineMs, 10_000);
      assert.equal(c.leaderElection.retryPeriodMs, 2_000);
      assert.equal(c.grafanaUrl, undefined);
    }],
    ['a namespace list', { ...base, WATCH_NAMESPACES: 'lab, team-a,lab' }, (c) => assert.deepEqual(c.watchNamespaces, ['lab', 'team-a'])],
    ['all, spelt out', { ...base, WATCH_NAMESPACES: 'ALL' }, (c) => assert.equal(c.watchNamespaces, 'all')],
    ['no leader election, no lease namespace needed', { ...base, LEASE_NAMESPACE: undefined, LEADER_ELECTION: 'false' }, (c) => assert.equal(c.leaderElection.enabled, false)],
    ['the pod\'s namespace for the Lease, the pod\'s name as identity', { ...base, LEASE_NAMESPACE: undefined, POD_NAMESPACE: 'ops', POD_NAME: 'op-0' }, (c) => {
      assert.equal(c.leaderElection.namespace, 'ops');
      assert.match(c.leaderElection.identity, /^op-0_/);
    }],
    ['a generator placement, the database matchers and the metrics port', {
      ...base,
      GENERATOR_PLACEMENT: '{"nodeSelector":{"loadlab.dev/role":"load"},"tolerations":[{"key":"loadlab.dev/role","value":"load","effect":"NoSchedule"}]}',
      DATABASE_METRICS_SELECTOR: 'job="pg", namespace=~"db.*"',
      METRICS_PORT: '9100',
    }, (c) => {
      assert.deepEqual(c.generatorPlacement, { nodeSelector: { 'loadlab.dev/role': 'load' }, tolerations: [{ key: 'loadlab.dev/role', value: 'load', effect: 'NoSchedule' }] });
      assert.equal(c.databaseMetricsSelector, 'job="pg", namespace=~"db.*"');
      assert.equal(c.metricsPort, 9100);
    }],
    ['the defaults of the new knobs', base, (c) => {
      assert.equal(c.generatorPlacement, undefined);
      assert.equal(c.databaseMetricsSelector, 'job="timescaledb"');
      assert.equal(c.metricsPort, 8080);
    }],
    ['an analysis delay of two scrape intervals by default (the last scrape after the load must land)', base, (c) => {
      assert.equal(c.analysis.scrapeIntervalS, 15);
      assert.equal(c.analysis.delayS, 30);
    }],
    ['an analysis delay that follows the scrape interval', { ...base, SCRAPE_INTERVAL_SECONDS: '30' }, (c) => assert.equal(c.analysis.delayS, 60)],
    ['an analysis delay set explicitly, 0 included', { ...base, SCRAPE_INTERVAL_SECONDS: '30', ANALYSIS_DELAY_SECONDS: '0' }, (c) => assert.equal(c.analysis.delayS, 0)],
  ];
  for (const [name, env, check] of valid) it(`accepts ${name}`, () => check(loadOperatorConfig(env)));

  const invalid: [string, Json, RegExp][] = [
    ['nothing', {}, /PROMETHEUS_URL: is required[\s\S]*DATABASE_URL: is required/],
    ['a Prometheus URL without a scheme', { ...base, PROMETHEUS_URL: 'prometheus:9090' }, /PROMETHEUS_URL: must be an http:\/\/ or https:\/\/ URL/],
    ['a database URL that is not PostgreSQL', { ...base, DATABASE_URL: 'mysql://db/x' }, /DATABASE_URL: must be a postgres:\/\/ URL with a database name/],
    ['a bad namespace', { ...base, WATCH_NAMESPACES: 'lab,Team_A' }, /WATCH_NAMESPACES: "Team_A" is not a namespace name/],
    ['leader election without a lease namespace', { ...base, LEASE_NAMESPACE: undefined }, /LEASE_NAMESPACE: is required with LEADER_ELECTION=true/],
    ['a renew deadline longer than the lease', { ...base, LEASE_DURATION_SECONDS: '5' }, /RENEW_DEADLINE_SECONDS: must be shorter than LEASE_DURATION_SECONDS/],
    ['a yes-or-no that is neither', { ...base, LEADER_ELECTION: 'maybe' }, /must be true or false/],
    ['a short secret key', { ...base, SECRET_KEY: 'short' }, /SECRET_KEY: must be at least 32 characters/],
    ['a generator placement that is not JSON', { ...base, GENERATOR_PLACEMENT: 'role=load' }, /GENERATOR_PLACEMENT: must be JSON such as/],
    ['a generator placement with a bad toleration', { ...base, GENERATOR_PLACEMENT: '{"tolerations":[{"effect":"Sometimes"}]}' }, /GENERATOR_PLACEMENT: must be .*tolerations\.0\.effect must be NoSchedule/],
    ['database matchers that are not PromQL matchers', { ...base, DATABASE_METRICS_SELECTOR: '{job=timescaledb}' }, /DATABASE_METRICS_SELECTOR: must be PromQL label matchers/],
    ['a metrics port out of range', { ...base, METRICS_PORT: '70000' }, /METRICS_PORT: must be a port number/],
  ];
  for (const [name, env, message] of invalid) {
    it(`refuses ${name} with a message that names the variable`, () => {
      assert.throws(() => loadOperatorConfig(env), (error: unknown) => error instanceof ConfigError && message.test(error.message));
    });
  }
});

describe('conditions (API conventions)', () => {
  const t1 = new Date('2026-01-01T00:00:00.123Z');
  const t2 = new Date('2026-01-01T00:05:00Z');
  it('moves lastTransitionTime only when the status flips', () => {
    const first = setCondition(undefined, { type: 'Succeeded', status: 'Unknown', reason: 'Pending', message: 'a' }, 1, t1);
    assert.equal(first[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
    const sameStatus = setCondition(first, { type: 'Succeeded', status: 'Unknown', reason: 'Running', message: 'b' }, 1, t2);
    assert.equal(sameStatus[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(sameStatus[0]!.reason, 'Running');
    const flipped = setCondition(sameStatus, { type: 'Succeeded', status: 'True', reason: 'SloHeld', message: 'c' }, 2, t2);
    assert.equal(flipped[0]!.lastTransitionTime, '2026-01-01T00:05:00Z');
    assert.equal(flipped[0]!.observedGeneration, 2);
  });
  it('keeps one entry per type, the summary condition first', () => {
    let list = setCondition(undefined, { type: 'ApiReady', status: 'True', reason: 'DeploymentAvailable', message: '' }, 1, t1);
    list = setCondition(list, { type: 'Succeeded', status: 'Unknown', reason: 'Running', message: '' }, 1, t1);
    list = setCondition(list, { type: 'ApiReady', status: 'False', reason: 'RollingOut', message: '' }, 1, t1);
    assert.deepEqual(list.map((entry) => entry.type), ['Succeeded', 'ApiReady']);
  });
  it('refuses a reason that is not CamelCase, and tells when an update changes nothing', () => {
    assert.throws(() => setCondition(undefined, { type: 'X', status: 'True', reason: 'not camel', message: '' }, 1, t1), /CamelCase/);
    const list = setCondition(undefined, { type: 'X', status: 'True', reason: 'Ok', message: 'm' }, 1, t1);
    assert.equal(conditionDiffers(list, { type: 'X', status: 'True', reason: 'Ok', message: 'm' }, 1), false);
    assert.equal(conditionDiffers(list, { type: 'X', status: 'True', reason: 'Ok', message: 'm' }, 2), true);
  });
});

describe('the timeline: checkpoints to the analysis\' stages', () => {
  const search = experiment({ fleet: { devices: 1000 }, load: { search: { startDevices: 100, step: { devices: 100 }, maxDevices: 300, hold: '60s', rampUp: '10s' } } });
  const plan = buildTrafficPlan(search);
  const at = (s: number) => new Date(1_700_000_000_000 + s * 1000).toISOString();
  const checkpoints: Checkpoint[] = [
    { unit: 0, kind: 'TestRun', name: 'a', phases: { from: 0, to: 2 }, startTime: at(0), endTime: at(70), outcome: 'Held' },
    { unit: 1, kind: 'TestRun', name: 'b', phases: { from: 2, to: 4 }, startTime: at(80), endTime: at(150), outcome: 'Held' },
    // Stopped halfway through its hold.
    { unit: 2, kind: 'TestRun', name: 'c', phases: { from: 4, to: 6 }, startTime: at(160), endTime: at(200), outcome: 'Stopped' },
    // Created but never started: no load to analyse.
  ];
  it('places each phase at its TestRun\'s own start, cutting a unit stopped early', () => {
    const ran = ranPhases(plan, checkpoints);
    const base = 1_700_000_000;
    assert.deepEqual(ran, [
      { index: 0, startUnixS: base, endUnixS: base + 10 },
      { index: 1, startUnixS: base + 10, endUnixS: base + 70 },
      { index: 2, startUnixS: base + 80, endUnixS: base + 90 },
      { index: 3, startUnixS: base + 90, endUnixS: base + 150 },
      { index: 4, startUnixS: base + 160, endUnixS: base + 170 },
      { index: 5, startUnixS: base + 170, endUnixS: base + 200 },
    ]);
    const timeline = analysisTimeline(plan, [...checkpoints, { unit: 3, kind: 'TestRun', name: 'd', phases: { from: 6, to: 6 } } as Checkpoint], 2);
    assert.deepEqual(timeline.map((stage) => [stage.name, stage.devicesEnd, stage.replicas]), [
      ['step 1 ramp', 100, 2], ['step 1 hold', 100, 2], ['step 2 ramp', 200, 2], ['step 2 hold', 200, 2], ['step 3 ramp', 300, 2], ['step 3 hold', 300, 2],
    ]);
  });
  it('reads the start and end of the load from k6-operator\'s TestRunRunning condition', () => {
    const running = { metadata: { name: 'x' }, status: { stage: 'started', conditions: [{ type: 'TestRunRunning', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }] } };
    assert.deepEqual(testRunTimes(running), { runningSince: '2026-01-01T00:00:00Z' });
    const finished = { metadata: { name: 'x' }, status: { stage: 'finished', conditions: [{ type: 'TestRunRunning', status: 'False', lastTransitionTime: '2026-01-01T00:02:00Z', message: '' }] } };
    assert.deepEqual(testRunTimes(finished), { stoppedAt: '2026-01-01T00:02:00Z' });
  });
  it('reads a driver Job\'s status as its unit\'s progress: waiting until its start time, started once its pods run, ended when Complete, failed with its reason', () => {
    const progress = (status: Json, now: string) =>
      LOAD_OBJECTS.Job.progress({ metadata: { name: 'x-r1-driver', namespace: 'lab', annotations: { 'loadlab.dev/start-at': '2026-01-01T00:00:20Z' } }, spec: { completions: 2 }, status }, new Date(now));
    assert.deepEqual(progress({ active: 2 }, '2026-01-01T00:00:10Z'), { state: 'waiting', wakeAtMs: Date.parse('2026-01-01T00:00:20Z') });
    assert.deepEqual(progress({}, '2026-01-01T00:00:30Z'), { state: 'waiting' }, 'no pod yet');
    assert.deepEqual(progress({ active: 2 }, '2026-01-01T00:00:30Z'), { state: 'started', startTime: '2026-01-01T00:00:20Z' }, 'the schedule began at the start time');
    const complete = { succeeded: 2, completionTime: '2026-01-01T00:05:01Z', conditions: [{ type: 'SuccessCriteriaMet', status: 'True' }, { type: 'Complete', status: 'True', lastTransitionTime: '2026-01-01T00:05:00Z' }] };
    assert.deepEqual(progress(complete, '2026-01-01T00:06:00Z'), { state: 'ended', startTime: '2026-01-01T00:00:20Z', endTime: '2026-01-01T00:05:00Z' });
    const failed = progress({ failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }] }, '2026-01-01T00:06:00Z');
    assert.equal(failed.state, 'failed');
    assert.match((failed as { message: string }).message, /^Job x-r1-driver failed \(DeadlineExceeded: Job was active longer than specified deadline; 1 of 2 runners failed\) \(kubectl logs -n lab -l job-name=x-r1-driver --prefix/);
    assert.equal((failed as { loadStopped: boolean }).loadStopped, true, 'a failed Job\'s pods have ended: kept for inspection');
    assert.equal((LOAD_OBJECTS.TestRun.progress({ metadata: { name: 't', namespace: 'lab' }, status: { stage: 'error' } }, new Date()) as { loadStopped: boolean }).loadStopped, false, 'a TestRun in error may leave runners: deleted');
  });
});

describe('WorkQueue', () => {
  it('holds a key once however often it is added, and hands each key to one worker at a time', async () => {
    const queue = new WorkQueue({ baseMs: 10, maxMs: 100 });
    queue.add('a');
    queue.add('a');
    queue.add('b');
    assert.equal(queue.length, 2);
    const first = await queue.get();
    assert.equal(first, 'a');
    queue.add('a'); // while processing: marked dirty, not queued twice
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), 'b');
    const waiting = queue.get();
    queue.done('a'); // dirty: queued again, straight to the waiting worker
    assert.equal(await waiting, 'a');
    queue.shutdown();
    assert.equal(await queue.get(), undefined);
  });

  it('keeps the earliest of several delayed adds, and backs off exponentially until forget()', async () => {
    const queue = new WorkQueue({ baseMs: 10, maxMs: 80 });
    const delays = [1, 2, 3, 4, 5].map(() => queue.backoff.next('k'));
    assert.ok(delays[0]! >= 9 && delays[0]! <= 11);
    assert.ok(delays[3]! >= 72 && delays[4]! <= 88, String(delays));
    queue.forget('k');
    assert.ok(queue.backoff.next('k') <= 11);
    queue.addAfter('x', 5000);
    queue.addAfter('x', 20);
    const started = Date.now();
    assert.equal(await queue.get(), 'x');
    assert.ok(Date.now() - started < 1000);
    queue.shutdown();
  });
});

describe('RBAC rules as data', () => {
  it('lists exactly the verbs the code uses, without wildcards; Secrets only created', () => {
    const byResource = Object.fromEntries(allRules().flatMap((rule) => rule.resources.map((resource) => [`${rule.apiGroups[0]}/${resource}`, [...rule.verbs].sort().join(',')])));
    assert.deepEqual(byResource, {
      'loadlab.dev/loadexperiments': 'get,list,patch,watch',
      'loadlab.dev/loadexperiments/status': 'update',
      'loadlab.dev/loadexperiments/finalizers': 'update',
      'apps/deployments': 'create,delete,get,list,patch,watch',
      '/services': 'create,delete,get,patch',
      '/configmaps': 'create,delete,get,patch',
      '/secrets': 'create',
      'batch/jobs': 'create,delete,get,list,watch',
      'k6.io/testruns': 'create,delete,get,list,watch',
      'events.k8s.io/events': 'create',
      'coordination.k8s.io/leases': 'create,get,update',
    });
  });
  it('renders a ClusterRole for all namespaces, or a Role per namespace, plus the lease Role', () => {
    const all = rbacManifests({ serviceAccount: 'sa', namespace: 'sys', watchNamespaces: 'all', leaseNamespace: 'sys' }).map((object) => `${object.kind}`);
    assert.deepEqual(all, ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
    const some = rbacManifests({ serviceAccount: 'sa', namespace: 'sys', watchNamespaces: ['a', 'b'], leaseNamespace: 'sys' }).map((object) => `${object.kind}/${(object.metadata as Json).namespace}`);
    assert.deepEqual(some, ['Role/a', 'RoleBinding/a', 'Role/b', 'RoleBinding/b', 'Role/sys', 'RoleBinding/sys']);
  });
});

describe('the analysis settings', () => {
  const config = loadOperatorConfig({ PROMETHEUS_URL: 'http://prometheus:9090/', DATABASE_URL: 'postgres://u:p@db:5432/loadlab', LEADER_ELECTION: 'false' });
  const settings = (spec: Json) => analysisSettings({ namespace: 'lab', name: 'quickstart', deps: { config } as StepContext['deps'], experiment: experiment(spec) }, 'r1-abcdef');
  it('judges the run by the experiment\'s SLO and spec.analysis.thresholds', () => {
    const set = settings({ slo: { latencyThreshold: '100ms' }, analysis: { thresholds: { dbHoldMeanS: 0.05 } } });
    assert.deepEqual(set.thresholds, { dbHoldMeanS: 0.05 });
    assert.equal(set.slo.latencyThreshold, '100ms');
    assert.equal(set.source, 'kubernetes');
  });
  it('leaves the thresholds to the analysis\' defaults when the experiment sets none', () => {
    assert.equal(settings({}).thresholds, undefined);
  });
});

describe('small helpers', () => {
  it('builds API paths and names the resource of a path (for request counts)', () => {
    assert.equal(resourcePath(RESOURCES.loadExperiments, 'lab', 'x', 'status'), '/apis/loadlab.dev/v1alpha1/namespaces/lab/loadexperiments/x/status');
    assert.equal(resourcePath(RESOURCES.services, 'lab'), '/api/v1/namespaces/lab/services');
    assert.equal(resourcePath(RESOURCES.testRuns), '/apis/k6.io/v1alpha1/testruns');
    assert.equal(resourceOfPath('/apis/loadlab.dev/v1alpha1/namespaces/lab/loadexperiments/x/status'), 'loadexperiments/status');
    assert.equal(resourceOfPath('/api/v1/namespaces/lab/configmaps'), 'configmaps');
    assert.equal(resourceOfPath('/apis/k6.io/v1alpha1/testruns'), 'testruns');
  });
  it('finds the owning experiment of a child', () => {
    assert.equal(ownerKey({ metadata: { name: 'c', namespace: 'lab', ownerReferences: [{ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', name: 'q', uid: 'u' }] } }), 'lab/q');
    assert.equal(ownerKey({ metadata: { name: 'c', namespace: 'lab', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'q', uid: 'u' }] } }), undefined);
  });
  it('names the object it will not take over, its owner if any, and what to do', () => {
    assert.equal(
      nameConflictMessage(RESOURCES.deployments, { metadata: { name: 'q-api', namespace: 'lab' } }, { name: 'q', uid: 'u2' }),
      'a Deployment named lab/q-api already exists and does not belong to LoadExperiment q (uid u2): it has no owner; the operator will not take it over: rename the experiment, or delete or rename that Deployment, then edit the experiment to run again',
    );
    const earlier = { metadata: { name: 'q-api', namespace: 'lab', ownerReferences: [{ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', name: 'q', uid: 'u1' }] } };
    assert.match(nameConflictMessage(RESOURCES.services, earlier, { name: 'q', uid: 'u2' }), /^a Service named lab\/q-api already exists and does not belong to LoadExperiment q \(uid u2\): it belongs to LoadExperiment q \(uid u1\);/);
  });
  it('compares resourceVersions only when both are numbers', () => {
    assert.equal(isNewer('10', '9'), true);
    assert.equal(isNewer('9', '10'), false);
    assert.equal(isNewer('a', '1'), false);
  });
  it('writes MicroTime with six fractional digits', () => {
    assert.equal(microTime(new Date('2026-01-01T00:00:00.123Z')), '2026-01-01T00:00:00.123000Z');
  });
  it('links Grafana to the run with its time range', () => {
    const url = new URL(grafanaLink({ baseUrl: 'http://grafana:3000/', dashboard: 'loadlab-experiment', namespace: 'lab', experiment: 'q', runId: 'r1-abc', fromMs: 1_000_000, toMs: 2_000_000 }));
    assert.equal(url.pathname, '/d/loadlab-experiment/loadlab');
    assert.deepEqual(Object.fromEntries(url.searchParams), { orgId: '1', 'var-namespace': 'lab', 'var-experiment': 'q', 'var-run': 'r1-abc', from: '940000', to: '2060000' });
    assert.equal(new URL(grafanaLink({ baseUrl: 'http://g', dashboard: 'd', namespace: 'n', experiment: 'e', runId: 'r', fromMs: 0 })).searchParams.get('to'), 'now');
  });
});

describe('Informer: list, watch, resume and re-list (a fake apiserver: a real one cannot be made to expire a watch on demand)', () => {
  it('resumes a closed watch from the last version, re-lists on 410 Gone (event or HTTP status) and reports what changed meanwhile', async () => {
    const cm = (name: string, rv: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'lab', resourceVersion: rv } });
    const requests: string[] = [];
    const open: ServerResponse[] = [];
    let lists = 0;
    let watches = 0;
    const server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://x');
      const watch = url.searchParams.get('watch') === 'true';
      requests.push(`${watch ? 'watch' : 'list'} rv=${url.searchParams.get('resourceVersion') ?? ''} timeout=${url.searchParams.get('timeoutSeconds') ?? ''} bookmarks=${url.searchParams.get('allowWatchBookmarks') ?? ''}`);
      response.setHeader('content-type', 'application/json');
      if (!watch) {
        lists++;
        const items = lists === 1 ? [cm('a', '5'), cm('b', '6')] : [cm('a', '5'), cm('c', '11'), cm('d', '18')];
        response.end(JSON.stringify({ kind: 'ConfigMapList', metadata: { resourceVersion: lists === 1 ? '10' : '20' }, items }));
        return;
      }
      watches++;
      const send = (type: string, object: unknown) => response.write(`${JSON.stringify({ type, object })}\n`);
      if (watches === 1) {
        // c is added, then the server ends the watch (its timeout): resume from 11, no re-list.
        send('ADDED', cm('c', '11'));
        response.end();
      } else if (watches === 2) {
        // A bookmark moves the version on; then the version is too old: re-list.
        send('BOOKMARK', { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '15' } });
        send('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version: 15 (17)' });
        response.end();
      } else if (watches === 3) {
        response.statusCode = 410;
        response.end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Gone' }));
      } else {
        open.push(response);
        response.flushHeaders();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
      currentContext: 'c',
    });
    const informer = new Informer<KubeObject>(new KubeClient(kubeConfig), RESOURCES.configMaps, { namespaces: ['lab'], log: silentLogger });
    const events: string[] = [];
    informer.on((event, object) => events.push(`${event} ${object.metadata.name}`));
    try {
      await informer.start();
      await waitFor('the last watch', () => watches >= 4, { timeoutMs: 10_000 });
      assert.deepEqual(events, ['added a', 'added b', 'added c', 'deleted b', 'added d']);
      assert.deepEqual(informer.list().map((object) => object.metadata.name).sort(), ['a', 'c', 'd']);
      assert.equal(informer.get('lab', 'c')?.kind, 'ConfigMap', 'list items get their kind back');
      assert.deepEqual(requests.map((line) => line.replace(/timeout=\d+/, 'timeout=T')), [
        'list rv= timeout= bookmarks=',
        'watch rv=10 timeout=T bookmarks=true',
        'watch rv=11 timeout=T bookmarks=true',
        'list rv= timeout= bookmarks=',
        'watch rv=20 timeout=T bookmarks=true',
        'list rv= timeout= bookmarks=',
        'watch rv=20 timeout=T bookmarks=true',
      ]);
      assert.deepEqual({ lists: informer.stats.lists, relists: informer.stats.relists }, { lists: 3, relists: 2 });
      const timeouts = requests.filter((line) => line.startsWith('watch')).map((line) => Number(/timeout=(\d+)/.exec(line)![1]));
      assert.ok(timeouts.every((timeout) => timeout >= 300 && timeout < 600), `client-go's 5-10 min: ${timeouts.join(', ')}`);
    } finally {
      await informer.stop();
      for (const response of open) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('a scaling study in the cluster (scaling-step.ts): which count runs, and under which run id', () => {
  const study = experiment({ scaling: { replicas: [1, 2, 4] }, target: { replicas: 3 } });

  it('runs the count at status.scaling.position as a run of the experiment with target.replicas that count; a position past the counts (a tampered status) runs the last', () => {
    const replicasAt = (position: number | undefined) => atStudyCount(study, position === undefined ? {} : { scaling: { position, runs: [] } }).spec.target.replicas;
    assert.deepEqual([undefined, 0, 1, 2, 7].map(replicasAt), [1, 1, 2, 4, 4]);
    assert.equal(atStudyCount(experiment({ target: { replicas: 3 } }), { scaling: { position: 1, runs: [] } }).spec.target.replicas, 3, 'no study: the spec as written');
    assert.equal(study.spec.target.replicas, 3, 'the parsed experiment is not changed');
  });

  it('names the run at each count r<generation>-<uid tag>-n<replicas>, a valid run id with a search step\'s suffix at the largest count (up to a million edits of the spec)', () => {
    const uid = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
    assert.deepEqual(runStart(study, uid, 3), { runId: `r3-${uidTag(uid)}-n1`, scaling: { position: 0, runs: [] } });
    assert.deepEqual(runStart(experiment(), uid, 3), { runId: `r3-${uidTag(uid)}` });
    assert.doesNotThrow(() => checkRunId(unitRunId(scalingRunIdFor(uid, 999_999, 100), 'search', MAX_SEARCH_STEPS - 1)));
  });
});
