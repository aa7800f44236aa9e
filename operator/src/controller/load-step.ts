import { AnalysisInputError } from '../analysis/errors.js';
import { RetryableError, TerminalError } from '../analysis/prometheus-client.js';
import { renderK6Script } from '../k6/bundle.js';
import { buildScriptConfigMap, buildTestRun } from '../k6/testrun.js';
import { analyseCheckpoints, analysisDelayMs, waitForPrometheus } from './analysis-step.js';
import { ANALYZED, LOAD_COMPLETE } from './conditions.js';
import { fail, requeueAfter, timedOut, transition, untilDeadline, type Result, type StepContext, type TestRunObject, type TransitionSpec } from './context.js';
import { isAlreadyExists, isNotFound, RESOURCES } from './kube.js';
import { FIELD_MANAGER, unitRunId, unitTestRunName } from '../contract/names.js';
import { ownedBy } from './ownership.js';
import { runTokenSecret } from './provision.js';
import { runUnits, type Checkpoint, type RunUnit } from './run-units.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import type { TrafficPlan } from '../traffic/plan.js';
import { afterSearchStep, stepOutcome, type StepOutcome } from '../traffic/search-policy.js';
import type { OperatorConfig } from './config.js';

/*
 * Running: one TestRun per unit (the whole plan for stages, one per step for a search; see
 * timeline.ts), followed through k6-operator's status.stage to finished or error. Each TestRun is
 * a checkpoint in status.timeline: created (name, uid), started (when the load began), ended.
 */

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

function replaceLast(timeline: readonly Checkpoint[], checkpoint: Checkpoint): Checkpoint[] {
  return [...timeline.slice(0, -1), checkpoint];
}

function describeUnit(ctx: StepContext, unit: RunUnit): string {
  const last = ctx.plan.phases[unit.phases.to - 1]!;
  return ctx.plan.source === 'search' ? `search step ${unit.unit + 1} (${last.devicesAtEnd} devices)` : `${ctx.plan.phases.length} plan phases up to ${Math.max(...ctx.plan.phases.map((phase) => phase.devicesAtEnd))} devices`;
}

export async function run(ctx: StepContext): Promise<Result> {
  if (timedOut(ctx)) return fail(ctx, 'Timeout', `the load did not finish within spec.timeout (${ctx.experiment.spec.timeout})`);
  const units = runUnits(ctx.plan);
  const timeline = ctx.status.timeline ?? [];
  const current = timeline.at(-1);
  if (!current) return startUnit(ctx, units[0]!);
  if (current.endTime) {
    if (!current.outcome) return judgeStep(ctx, current, units);
    const next = units[units.findIndex((unit) => unit.unit === current.unit) + 1];
    if (!next) return transition(ctx, { to: 'Analyzing' });
    return startUnit(ctx, next);
  }
  return follow(ctx, current, units);
}

async function startUnit(ctx: StepContext, unit: RunUnit): Promise<Result> {
  const { client, caches, config } = ctx.deps;
  const runId = ctx.status.runId ?? '';
  const name = unitTestRunName(ctx.experiment, runId, ctx.plan.source, unit.unit);
  let testRun = caches.testRuns.get(ctx.namespace, name);
  if (testRun && !ownedBy(testRun, ctx.uid)) {
    return fail(ctx, 'NameConflict', `a TestRun named ${name} already exists and does not belong to this experiment`);
  }
  if (!testRun) {
    const identity = { runId: unitRunId(runId, ctx.plan.source, unit.unit), namespace: ctx.namespace, ownerUid: ctx.uid };
    const script = renderK6Script(ctx.experiment, { plan: ctx.plan, phaseRange: unit.phases });
    const configMap = buildScriptConfigMap(ctx.experiment, script, identity);
    await client.apply(RESOURCES.configMaps, ctx.namespace, configMap.metadata.name, configMap, FIELD_MANAGER);
    const manifest = buildTestRun(withDefaultPlacement(ctx.experiment, config.generatorPlacement), {
      ...identity,
      tokenSecret: runTokenSecret(ctx),
      remoteWriteUrl: config.remoteWriteUrl,
      ...(config.runnerImage ? { runnerImage: config.runnerImage } : {}),
      phaseRange: unit.phases,
      // The operator reads the outcome first, then cleans up per spec.cleanup.
      k6Cleanup: 'none',
    });
    try {
      testRun = await client.create<TestRunObject>(RESOURCES.testRuns, ctx.namespace, manifest);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      // Created by an earlier attempt whose status write did not happen: adopt it.
      testRun = await client.get<TestRunObject>(RESOURCES.testRuns, ctx.namespace, name);
      if (!ownedBy(testRun, ctx.uid)) return fail(ctx, 'NameConflict', `a TestRun named ${name} already exists and does not belong to this experiment`);
    }
    caches.testRuns.observe(testRun);
  }
  const checkpoint: Checkpoint = { unit: unit.unit, testRun: name, ...(testRun.metadata.uid ? { uid: testRun.metadata.uid } : {}), phases: { ...unit.phases } };
  return transition(ctx, {
    to: 'Running',
    fields: { timeline: [...(ctx.status.timeline ?? []), checkpoint] },
    conditions: [{ type: LOAD_COMPLETE, status: 'Unknown', reason: 'TestRunCreated', message: `TestRun ${name} created for ${describeUnit(ctx, unit)}; waiting for k6-operator to start it` }],
    event: { type: 'Normal', reason: 'TestRunCreated', note: `TestRun ${name}: ${describeUnit(ctx, unit)}`, action: 'Run', detail: unit.unit },
  });
}

async function follow(ctx: StepContext, current: Checkpoint, units: RunUnit[]): Promise<Result> {
  const { client, caches } = ctx.deps;
  let testRun = caches.testRuns.get(ctx.namespace, current.testRun);
  if (!testRun || (current.uid && testRun.metadata.uid !== current.uid)) {
    // The cache may be behind: ask the apiserver before concluding anything.
    try {
      testRun = await client.get<TestRunObject>(RESOURCES.testRuns, ctx.namespace, current.testRun, ctx.signal);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return fail(ctx, 'TestRunDeleted', `TestRun ${current.testRun} was deleted before it finished`);
    }
    if (current.uid && testRun.metadata.uid !== current.uid) {
      return fail(ctx, 'TestRunReplaced', `TestRun ${current.testRun} was deleted and created again by someone else before it finished`);
    }
  }
  const stage = testRun.status?.stage;
  const times = testRunTimes(testRun);
  const unit = units.find((entry) => entry.unit === current.unit)!;
  const now = ctx.deps.now();

  if (stage === 'error') {
    const detail = times.message ? `: ${times.message}` : '';
    return fail(ctx, 'TestRunFailed', `TestRun ${current.testRun} reached stage "error"${detail} (kubectl describe testrun ${current.testRun} -n ${ctx.namespace})`);
  }
  if (stage === 'finished') {
    const endTime = times.stoppedAt ?? now.toISOString();
    // Missed "started" (the operator was down for the whole unit): k6 ran the planned schedule.
    const startTime = current.startTime ?? times.runningSince ?? new Date(Date.parse(endTime) - unit.durationS * 1000).toISOString();
    const ended: Checkpoint = { ...current, startTime, endTime, ...(ctx.plan.source === 'stages' ? { outcome: 'Finished' as const } : {}) };
    const timeline = replaceLast(ctx.status.timeline ?? [], ended);
    if (ctx.plan.source === 'stages') {
      return transition(ctx, {
        to: 'Analyzing',
        fields: { timeline },
        conditions: [
          { type: LOAD_COMPLETE, status: 'True', reason: 'TestRunFinished', message: `TestRun ${current.testRun} finished (${Math.round((Date.parse(endTime) - Date.parse(startTime)) / 1000)} s of load)` },
          { type: ANALYZED, status: 'Unknown', reason: 'Analyzing', message: 'querying Prometheus over the run' },
        ],
        event: { type: 'Normal', reason: 'LoadFinished', note: `TestRun ${current.testRun} finished; analysing`, action: 'Run' },
      });
    }
    // A search step: record it, then judge it (next reconcile) before the next step.
    return transition(ctx, { to: 'Running', fields: { timeline } });
  }
  if (stage === 'started' && !current.startTime) {
    const startTime = times.runningSince ?? now.toISOString();
    return transition(ctx, {
      to: 'Running',
      fields: { timeline: replaceLast(ctx.status.timeline ?? [], { ...current, startTime }) },
      conditions: [{ type: LOAD_COMPLETE, status: 'Unknown', reason: 'TestRunStarted', message: `TestRun ${current.testRun} started at ${startTime}` }],
    });
  }
  // initialization, initialized, created, stopped: k6-operator is at work; its status changes wake us.
  return untilDeadline(ctx);
}

/** After a search step: judge it from Prometheus, then go on or stop (traffic/search-policy.ts). */
async function judgeStep(ctx: StepContext, current: Checkpoint, units: RunUnit[]): Promise<Result> {
  const wait = analysisDelayMs(ctx);
  if (wait > 0) return requeueAfter(wait);
  let outcome: StepOutcome;
  let verdict: string;
  try {
    const result = await analyseCheckpoints(ctx, ctx.status.timeline ?? []);
    outcome = stepOutcome(result.breakingPoint.status);
    verdict = result.summary.verdict;
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    if (error instanceof RetryableError) return waitForPrometheus(ctx, error);
    if (error instanceof TerminalError || error instanceof AnalysisInputError) {
      return fail(ctx, 'AnalysisFailed', `judging search step ${current.unit + 1} failed: ${error.message}`);
    }
    throw error;
  }
  return transition(ctx, judgedStepTransition(ctx.plan, ctx.status.timeline ?? [], units, outcome, verdict));
}

/**
 * The status change after a search step was judged: the next step (Running) or the analysis of the
 * whole run (Analyzing), as the search policy decides. Pure, so a test can hold it against local mode.
 */
export function judgedStepTransition(plan: TrafficPlan, timeline: readonly Checkpoint[], units: readonly RunUnit[], outcome: StepOutcome, verdict: string): TransitionSpec {
  const current = timeline.at(-1)!;
  const judged = replaceLast(timeline, { ...current, outcome });
  const devices = plan.phases[current.phases.to - 1]!.devicesAtEnd;
  const decision = afterSearchStep(units.findIndex((unit) => unit.unit === current.unit), units.length, outcome);
  if (decision.action === 'stop') {
    const broke = decision.reason === 'broke';
    const why = broke ? `the SLO broke at step ${current.unit + 1} (${devices} devices): ${verdict}` : `the last step (${devices} devices) ran`;
    return {
      to: 'Analyzing',
      fields: { timeline: judged },
      conditions: [
        { type: LOAD_COMPLETE, status: 'True', reason: broke ? 'SearchStopped' : 'SearchCompleted', message: `search ended after ${judged.length} of ${units.length} steps: ${why}` },
        { type: ANALYZED, status: 'Unknown', reason: 'Analyzing', message: 'querying Prometheus over the run' },
      ],
      event: { type: 'Normal', reason: broke ? 'SearchStopped' : 'SearchCompleted', note: why, action: 'Run' },
    };
  }
  return {
    to: 'Running',
    fields: { timeline: judged },
    conditions: [{ type: ANALYZED, status: 'Unknown', reason: 'StepJudged', message: `step ${current.unit + 1} (${devices} devices): ${outcome === 'Held' ? 'the SLO held' : 'nothing could be judged'}; going on` }],
    event: { type: 'Normal', reason: outcome === 'Held' ? 'StepHeld' : 'StepUndetermined', note: `step ${current.unit + 1} (${devices} devices): ${verdict}`, action: 'Run', detail: current.unit },
  };
}

/** The install's generator placement (GENERATOR_PLACEMENT) for an experiment that sets none of its own. */
export function withDefaultPlacement(experiment: LoadExperiment, placement: OperatorConfig['generatorPlacement']): LoadExperiment {
  const { generator } = experiment.spec;
  if (!placement || generator.nodeSelector !== undefined || generator.tolerations !== undefined) return experiment;
  return { ...experiment, spec: { ...experiment.spec, generator: { ...generator, ...placement } } };
}
