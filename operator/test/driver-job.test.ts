// The pure builders of the loadlab engine's objects of one unit: the experiment's ConfigMap and the
// Job of driver pods (batch/v1), held against what the k6 engine's TestRun gives its runners.
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { describe, it } from 'node:test';
import { formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { buildTestRun } from '../src/k6/index.js';
import {
  buildDriverConfigMap,
  buildDriverJob,
  DRIVER_CONFIG_DIR,
  DRIVER_ENV,
  DRIVER_METRICS_PORT,
  DRIVER_METRICS_PORT_NAME,
  EXPERIMENT_FILE,
  OPERATOR_IMAGE_UID,
  planDigest,
  type DriverJobOptions,
} from '../src/driver-job/index.js';
import { ANNOTATIONS, driverJobName, MAX_DRIVER_JOB_NAME } from '../src/contract/index.js';
import { buildTrafficPlan, phaseRangeOfStep } from '../src/traffic/index.js';

function experimentWith(spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'drv', namespace: 'lab' }): LoadExperiment {
  const manifest = { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata, spec };
  const result = parseExperiment(JSON.stringify(manifest), 'drv.json');
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

const PLACEMENT = {
  nodeSelector: { 'loadlab.dev/role': 'load' },
  tolerations: [{ key: 'loadlab.dev/role', operator: 'Equal', value: 'load', effect: 'NoSchedule' }],
};
const BASE = {
  fleet: { devices: 300, reportInterval: '10s', pollInterval: '10s' },
  load: { stages: [{ devices: 300, duration: '1m' }, { devices: 300, duration: '2m', shape: 'hold' }] },
  generator: { engine: 'loadlab', parallelism: 3, ...PLACEMENT, resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: 1, memory: '512Mi' } } },
};
const SECRET = 'driver-job-test-secret-0123456789';
const START = { at: '2026-06-01T12:00:20.000Z', delayS: 20 };

function options(experiment: LoadExperiment, extra: Partial<DriverJobOptions> = {}): DriverJobOptions {
  const plan = buildTrafficPlan(experiment);
  return { runId: 'r1-abcdef', ownerUid: 'uid-1', image: 'loadlab/operator:dev', plan, phaseRange: { from: 0, to: plan.phases.length }, tokenSecret: SECRET, start: START, metricsLingerS: 30, ...extra };
}

/** The options of `loadlab drive` (cli/drive-command.ts), to read the Job's arguments as the driver does. */
function driveOptions(args: readonly string[]) {
  const [command, ...rest] = args;
  assert.equal(command, 'drive');
  const strings = ['experiment', 'phases', 'runners', 'runner', 'start-at', 'metrics-port', 'linger', 'plan-digest'] as const;
  return { ...parseArgs({ args: [...rest], strict: true, options: Object.fromEntries(strings.map((name) => [name, { type: 'string' as const }])) }).values } as Partial<Record<(typeof strings)[number], string>>;
}

describe('driverJobName', () => {
  it('is <experiment>-<run>-driver, shortened with a hash past 60 characters, so an Indexed Job\'s <name>-<index> stays a DNS label', () => {
    assert.equal(driverJobName(experimentWith(BASE), 'r1-abcdef'), 'drv-r1-abcdef-driver');
    const long = 'x'.repeat(48);
    const name = driverJobName(experimentWith(BASE, { name: long }), 'r12-abcdef-s63');
    assert.equal(name.length, MAX_DRIVER_JOB_NAME);
    assert.match(name, /-[0-9a-f]{8}-r12-abcdef-s63-driver$/);
    assert.ok(`${name}-63`.length <= 63);
    assert.notEqual(name, driverJobName(experimentWith(BASE, { name: `${long.slice(0, -1)}y` }), 'r12-abcdef-s63'));
  });
});

describe('buildDriverConfigMap', () => {
  it('holds the experiment, defaults filled in, under the name of the Job that mounts it; parsing it back gives the same experiment', () => {
    const experiment = experimentWith(BASE);
    const configMap = buildDriverConfigMap(experiment, { runId: 'r1-abcdef', ownerUid: 'uid-1' });
    assert.equal(configMap.metadata.name, 'drv-r1-abcdef-driver');
    assert.equal(configMap.metadata.namespace, 'lab');
    assert.deepEqual(configMap.metadata.ownerReferences?.map((owner) => [owner.kind, owner.name, owner.uid, owner.controller]), [['LoadExperiment', 'drv', 'uid-1', true]]);
    const parsed = parseExperiment(configMap.data![EXPERIMENT_FILE]!, EXPERIMENT_FILE);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.experiment.spec, experiment.spec);
    assert.deepEqual(parsed.experiment.metadata, { name: 'drv', namespace: 'lab' });
    assert.equal(planDigest(buildTrafficPlan(parsed.experiment)), planDigest(buildTrafficPlan(experiment)), 'the pods compute the operator\'s plan');
  });
});

describe('buildDriverJob', () => {
  const experiment = experimentWith(BASE);
  const job = buildDriverJob(experiment, options(experiment));
  const pod = job.spec.template.spec!;
  const container = pod.containers[0]!;
  const testRun = buildTestRun(experiment, { runId: 'r1-abcdef', ownerUid: 'uid-1', tokenSecret: SECRET });

  it('is an Indexed Job of parallelism pods, each slice exactly once, never retried', () => {
    assert.equal(job.apiVersion, 'batch/v1');
    assert.equal(job.kind, 'Job');
    assert.equal(job.metadata.name, 'drv-r1-abcdef-driver');
    assert.equal(job.spec.completionMode, 'Indexed');
    assert.equal(job.spec.completions, 3);
    assert.equal(job.spec.parallelism, 3);
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal(pod.restartPolicy, 'Never');
    assert.deepEqual(job.metadata.ownerReferences?.map((owner) => [owner.kind, owner.uid, owner.controller, owner.blockOwnerDeletion]), [['LoadExperiment', 'uid-1', true, true]]);
  });

  it('runs `loadlab drive` on the operator\'s image with the unit\'s phases, the runner count, one start time, the metrics port and the plan\'s digest', () => {
    assert.equal(container.image, 'loadlab/operator:dev');
    const args = driveOptions(container.args!);
    const plan = buildTrafficPlan(experiment);
    assert.deepEqual(args, {
      experiment: `${DRIVER_CONFIG_DIR}/${EXPERIMENT_FILE}`,
      phases: `0-${plan.phases.length - 1}`,
      runners: '3',
      'start-at': START.at,
      'metrics-port': String(DRIVER_METRICS_PORT),
      linger: '30',
      'plan-digest': planDigest(plan),
    });
    assert.equal((args as Record<string, string | undefined>).runner, undefined, 'each pod\'s index comes from JOB_COMPLETION_INDEX, which the Indexed Job sets');
    assert.equal(job.metadata.annotations?.[ANNOTATIONS.startAt], START.at);
    assert.equal(job.metadata.annotations?.[ANNOTATIONS.phases], `0-${plan.phases.length - 1}`);
    const env = Object.fromEntries(container.env!.map((entry) => [entry.name, entry.value]));
    assert.deepEqual(env, { [DRIVER_ENV.apiUrl]: 'http://drv-api.lab.svc:3000', [DRIVER_ENV.tokenSecret]: SECRET });
    // The operator passes the API's Secret: the pods get a reference, the value is in no Job.
    const byRef = buildDriverJob(experiment, options(experiment, { tokenSecret: { secretName: 'drv-api-0123456789', key: 'TOKEN_SECRET' } }));
    assert.deepEqual(byRef.spec!.template.spec!.containers[0]!.env!.find((entry) => entry.name === DRIVER_ENV.tokenSecret), { name: DRIVER_ENV.tokenSecret, valueFrom: { secretKeyRef: { name: 'drv-api-0123456789', key: 'TOKEN_SECRET' } } });
    assert.deepEqual(container.ports, [{ name: DRIVER_METRICS_PORT_NAME, containerPort: DRIVER_METRICS_PORT, protocol: 'TCP' }]);
    assert.deepEqual(job.spec.template.spec!.volumes?.find((volume) => volume.name === 'config')?.configMap, { name: job.metadata.name });
  });

  it('a search step runs its own phases', () => {
    const search = experimentWith({ ...BASE, fleet: { devices: 5000 }, load: { search: { startDevices: 1000, step: { devices: 1000 }, maxDevices: 5000 } } });
    const plan = buildTrafficPlan(search);
    const range = phaseRangeOfStep(plan, 2);
    const step = buildDriverJob(search, options(search, { runId: 'r1-abcdef-s2', phaseRange: range }));
    assert.equal(driveOptions(step.spec.template.spec!.containers[0]!.args!).phases, `${range.from}-${range.to - 1}`);
    assert.equal(step.metadata.name, 'drv-r1-abcdef-s2-driver');
  });

  it('carries the run\'s labels on the Job and its pods, as the TestRun\'s runners do', () => {
    assert.deepEqual(job.spec.template.metadata?.labels, testRun.spec.runner.metadata.labels);
    assert.deepEqual(job.metadata.labels, testRun.metadata.labels);
  });

  it('is placed as the TestRun\'s runners are: the generator\'s nodeSelector, tolerations and resources, one runner per node', () => {
    assert.deepEqual(pod.nodeSelector, testRun.spec.runner.nodeSelector);
    assert.deepEqual(pod.tolerations, testRun.spec.runner.tolerations);
    assert.deepEqual(container.resources, testRun.spec.runner.resources);
    assert.equal(testRun.spec.separate, true, 'k6-operator keeps several runners apart');
    const rule = pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0];
    assert.equal(rule?.topologyKey, 'kubernetes.io/hostname');
    for (const [key, value] of Object.entries(rule!.labelSelector!.matchLabels!)) assert.equal(job.spec.template.metadata!.labels![key], value, `the rule selects this unit's runners (${key})`);
    const single = experimentWith({ ...BASE, generator: { engine: 'loadlab', parallelism: 1 } });
    const one = buildDriverJob(single, options(single)).spec.template.spec!;
    assert.equal(one.affinity, undefined, 'one runner needs no rule');
    assert.equal(one.nodeSelector, undefined, 'no placement of its own: the operator fills in GENERATOR_PLACEMENT');
  });

  it('meets Pod Security "restricted" with a read-only root filesystem, as the TestRun\'s runners do, and gets no service account token', () => {
    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: OPERATOR_IMAGE_UID, runAsGroup: OPERATOR_IMAGE_UID, fsGroup: OPERATOR_IMAGE_UID, seccompProfile: { type: 'RuntimeDefault' } });
    assert.deepEqual(container.securityContext, testRun.spec.runner.containerSecurityContext);
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(container.volumeMounts, [{ name: 'config', mountPath: DRIVER_CONFIG_DIR, readOnly: true }, { name: 'tmp', mountPath: '/tmp' }]);
    assert.deepEqual(pod.volumes?.find((volume) => volume.name === 'tmp'), { name: 'tmp', emptyDir: {} });
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.enableServiceLinks, false);
  });

  it('is bounded in time: the start delay, the unit, the last answers, the metrics\' linger and a minute to spare', () => {
    const plan = buildTrafficPlan(experiment);
    assert.equal(job.spec.activeDeadlineSeconds, START.delayS + plan.durationS + 15 + 30 + 60);
  });

  it('without a start time (rendered to apply by hand) each runner starts when its pod does', () => {
    const { start: _unused, ...rest } = options(experiment);
    const byHand = buildDriverJob(experiment, rest);
    assert.equal(driveOptions(byHand.spec.template.spec!.containers[0]!.args!)['start-at'], undefined);
    assert.equal(byHand.metadata.annotations?.[ANNOTATIONS.startAt], undefined);
    assert.throws(() => buildDriverJob(experiment, options(experiment, { start: { at: 'soon', delayS: 1 } })), /start\.at must be an RFC 3339 time/);
  });

  it('is the same object for the same input (a reconciler may build it again)', () => {
    assert.deepEqual(buildDriverJob(experiment, options(experiment)), job);
  });
});
