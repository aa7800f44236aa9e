import { buildDriverConfigMap, buildDriverJob } from '../driver-job/job.js';
import { renderK6Script } from '../k6/bundle.js';
import { buildScriptConfigMap, buildTestRun } from '../k6/testrun.js';
import { ANNOTATIONS, FIELD_MANAGER } from '../contract/names.js';
import type { Built, RunIdentity } from '../contract/objects.js';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { LoadExperiment } from '../schema/load-experiment.js';
import type { LoadObjectKind } from '../schema/status.js';
import type { OperatorConfig } from './config.js';
import type { Caches, JobObject, StepContext, TestRunObject } from './context.js';
import type { Informer } from './informer.js';
import { LOAD_OBJECT_RESOURCES, RESOURCES, type KubeObject, type Resource } from './kube.js';
import { runTokenSecret } from './provision.js';
import type { RunUnit } from './run-units.js';

/*
 * The two kinds of object that run a unit of the load, behind one face for the Running step
 * (load-step.ts): a k6-operator TestRun (engine k6) or a Job of loadlab drivers (engine loadlab).
 * Each says how it is made (its ConfigMap first), which cache holds it, what it waits for, and how
 * its status reads as the unit's progress: waiting, started, ended or failed, with the times the
 * analysis needs.
 */

export type UnitProgress =
  | { state: 'waiting'; wakeAtMs?: number }
  | { state: 'started'; startTime: string }
  | { state: 'ended'; startTime?: string; endTime: string }
  /** loadStopped: nothing of it runs any more (else the object is deleted to stop what may). */
  | { state: 'failed'; message: string; loadStopped: boolean };

export interface LoadObjects {
  kind: LoadObjectKind;
  resource: Resource;
  cache(caches: Caches): Informer<KubeObject>;
  /** Writes the unit's ConfigMap and returns the object to create. */
  prepare(ctx: StepContext, unit: RunUnit, identity: Required<RunIdentity>): Promise<Built<KubernetesObject>>;
  /** What the unit waits for once its object exists, for the LoadComplete condition. */
  waitingFor: string;
  /** Where to look when it does not start: what it needs, and the commands that show why. */
  notStartedHint(name: string, namespace: string): string;
  /**
   * From when its load is due to start, in ms on the operator's clock where it has one (a Job's
   * start time, chosen by the operator), else the apiserver's creation time (a TestRun).
   */
  dueSinceMs(object: KubeObject): number;
  progress(object: KubeObject, now: Date): UnitProgress;
}

/**
 * The load generators' placement: the installation's (GENERATOR_PLACEMENT) with what the experiment
 * adds. Its nodeSelector may add labels (the installation's are kept: policy.ts refuses a different
 * value), its tolerations replace the installation's (policy.ts allows only the installation's).
 */
export function withDefaultPlacement(experiment: LoadExperiment, placement: OperatorConfig['generatorPlacement']): LoadExperiment {
  const { generator } = experiment.spec;
  if (!placement) return experiment;
  const nodeSelector = placement.nodeSelector || generator.nodeSelector ? { ...placement.nodeSelector, ...generator.nodeSelector } : undefined;
  const tolerations = generator.tolerations ?? placement.tolerations;
  return { ...experiment, spec: { ...experiment.spec, generator: { ...generator, ...(nodeSelector ? { nodeSelector } : {}), ...(tolerations ? { tolerations } : {}) } } };
}

async function applyConfigMap(ctx: StepContext, configMap: Built<KubernetesObject>): Promise<void> {
  await ctx.deps.client.apply(RESOURCES.configMaps, ctx.namespace, configMap.metadata.name, configMap, FIELD_MANAGER);
}

type Condition = { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string };

/** When the load of a TestRun began and ended, from k6-operator's TestRunRunning condition. */
export function testRunTimes(testRun: TestRunObject): { runningSince?: string; stoppedAt?: string; message?: string } {
  const conditions = testRun.status?.conditions ?? [];
  const running = conditions.find((condition) => condition.type === 'TestRunRunning');
  const failed = conditions.find((condition) => condition.status === 'False' && condition.message && condition.type !== 'TestRunRunning');
  return {
    ...(running?.status === 'True' && running.lastTransitionTime ? { runningSince: running.lastTransitionTime } : {}),
    ...(running?.status === 'False' && running.lastTransitionTime ? { stoppedAt: running.lastTransitionTime } : {}),
    ...(failed?.message ? { message: failed.message } : running?.message ? { message: running.message } : {}),
  };
}

const testRuns: LoadObjects = {
  kind: 'TestRun',
  resource: LOAD_OBJECT_RESOURCES.TestRun,
  cache: (caches) => caches.testRuns,
  waitingFor: 'waiting for k6-operator to start it',
  dueSinceMs: (object) => Date.parse(object.metadata.creationTimestamp ?? ''),
  notStartedHint: (name, namespace) =>
    `is k6-operator installed and running, and can its runner pods be scheduled and their image pulled? (kubectl describe testrun ${name} -n ${namespace}; kubectl get pods -n ${namespace} -l k6_cr=${name})`,
  async prepare(ctx, unit, identity) {
    const { config } = ctx.deps;
    const script = renderK6Script(ctx.experiment, { plan: ctx.plan, phaseRange: unit.phases });
    await applyConfigMap(ctx, buildScriptConfigMap(ctx.experiment, script, identity));
    return buildTestRun(withDefaultPlacement(ctx.experiment, config.generatorPlacement), {
      ...identity,
      tokenSecret: runTokenSecret(ctx),
      remoteWriteUrl: config.remoteWriteUrl,
      ...(config.runnerImage ? { runnerImage: config.runnerImage } : {}),
      phaseRange: unit.phases,
      // The operator reads the outcome first, then cleans up per spec.cleanup.
      k6Cleanup: 'none',
    });
  },
  progress(object, now) {
    const testRun = object as TestRunObject;
    const stage = testRun.status?.stage;
    const times = testRunTimes(testRun);
    const name = testRun.metadata.name;
    if (stage === 'error') {
      const detail = times.message ? `: ${times.message}` : '';
      // k6-operator may leave other runners going: deleting the TestRun stops them.
      return { state: 'failed', message: `TestRun ${name} reached stage "error"${detail} (kubectl describe testrun ${name} -n ${testRun.metadata.namespace})`, loadStopped: false };
    }
    if (stage === 'finished') return { state: 'ended', ...(times.runningSince ? { startTime: times.runningSince } : {}), endTime: times.stoppedAt ?? now.toISOString() };
    if (stage === 'started') return { state: 'started', startTime: times.runningSince ?? now.toISOString() };
    // initialization, initialized, created, stopped: k6-operator is at work; its status changes wake us.
    return { state: 'waiting' };
  },
};

const jobs: LoadObjects = {
  kind: 'Job',
  resource: LOAD_OBJECT_RESOURCES.Job,
  cache: (caches) => caches.jobs,
  waitingFor: 'waiting for its pods to start their schedule',
  dueSinceMs: (object) => Date.parse(object.metadata.annotations?.[ANNOTATIONS.startAt] ?? object.metadata.creationTimestamp ?? ''),
  notStartedHint: (name, namespace) => `can its pods be scheduled and their image pulled? (kubectl describe job ${name} -n ${namespace}; kubectl get pods -n ${namespace} -l job-name=${name})`,
  async prepare(ctx, unit, identity) {
    const { config } = ctx.deps;
    await applyConfigMap(ctx, buildDriverConfigMap(ctx.experiment, identity));
    const at = new Date(ctx.deps.now().getTime() + config.driver.startDelayS * 1000).toISOString();
    return buildDriverJob(withDefaultPlacement(ctx.experiment, config.generatorPlacement), {
      ...identity,
      image: config.driver.image,
      plan: ctx.plan,
      phaseRange: unit.phases,
      tokenSecret: runTokenSecret(ctx),
      start: { at, delayS: config.driver.startDelayS },
      metricsLingerS: config.driver.metricsLingerS,
    });
  },
  progress(object, now) {
    const job = object as JobObject;
    const name = job.metadata.name;
    const conditions: Condition[] = job.status?.conditions ?? [];
    const holds = (type: string) => conditions.find((condition) => condition.type === type && condition.status === 'True');
    // The schedule of every runner starts here (the operator chose it when it made the Job).
    const startAt = job.metadata.annotations?.[ANNOTATIONS.startAt];
    const failed = holds('Failed');
    if (failed) {
      const why = [failed.reason, failed.message].filter(Boolean).join(': ') || 'a runner failed';
      const where = `kubectl logs -n ${job.metadata.namespace} -l job-name=${name} --prefix; kubectl describe job ${name} -n ${job.metadata.namespace}`;
      // A failed Job's controller has ended its other pods: keep it, and their logs, to look at.
      return { state: 'failed', message: `Job ${name} failed (${why}; ${job.status?.failed ?? 0} of ${job.spec?.completions ?? '?'} runners failed) (${where})`, loadStopped: true };
    }
    const complete = holds('Complete');
    if (complete) return { state: 'ended', ...(startAt ? { startTime: startAt } : {}), endTime: complete.lastTransitionTime ?? job.status?.completionTime ?? now.toISOString() };
    const startMs = startAt ? Date.parse(startAt) : NaN;
    if (Number.isFinite(startMs) && now.getTime() < startMs) return { state: 'waiting', wakeAtMs: startMs };
    // Runners are up: the schedule began at startAt (a runner that came later joined it late).
    if ((job.status?.active ?? 0) > 0 && startAt) return { state: 'started', startTime: startAt };
    return { state: 'waiting' };
  },
};

export const LOAD_OBJECTS: Readonly<Record<LoadObjectKind, LoadObjects>> = { TestRun: testRuns, Job: jobs };

