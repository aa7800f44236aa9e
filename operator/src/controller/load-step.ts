import { AnalysisInputError } from '../analysis/errors.js';
import { RetryableError, TerminalError } from '../analysis/prometheus-client.js';
import { analyseCheckpoints, analysisDelayMs, waitForPrometheus } from './analysis-step.js';
import { ANALYZED, LOAD_COMPLETE } from './conditions.js';
import { fail, requeueAfter, timedOut, transition, untilDeadline, type Result, type StepContext, type TransitionSpec } from './context.js';
import { isAlreadyExists, isNotFound, type KubeObject } from './kube.js';
import { LOAD_OBJECTS, type LoadObjects } from './load-objects.js';
import { unitLoadObjectName, unitRunId } from '../contract/names.js';
import { nameConflictMessage, ownedBy } from './ownership.js';
import { runUnits, type Checkpoint, type RunUnit } from './run-units.js';
import { LOAD_OBJECT_OF_ENGINE } from '../schema/status.js';
import type { TrafficPlan } from '../traffic/plan.js';
import { afterSearchStep, stepOutcome, type StepOutcome } from '../traffic/search-policy.js';

/*
 * Running: one load object per unit (the whole plan for stages, one per step for a search; see
 * run-units.ts): a TestRun with engine k6, a driver Job with engine loadlab (load-objects.ts),
 * followed through its status until it ended or failed. Each is a checkpoint in status.timeline:
 * created (kind, name, uid), started (when the load began), ended.
 */

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

/** Why an engine's object cannot be made at all (its kind not served), and what to do. */
function notServedMessage(objects: LoadObjects): string {
  return objects.kind === 'TestRun'
    ? 'the cluster does not serve k6-operator\'s TestRun (k6.io/v1alpha1): install grafana/k6-operator, or set spec.generator.engine: loadlab to run loadlab\'s own driver as Jobs'
    : `the cluster does not serve ${objects.resource.group}/${objects.resource.version} ${objects.resource.plural}`;
}

async function startUnit(ctx: StepContext, unit: RunUnit): Promise<Result> {
  const { client } = ctx.deps;
  const objects = LOAD_OBJECTS[LOAD_OBJECT_OF_ENGINE[ctx.experiment.spec.generator.engine]];
  const { kind } = objects;
  const cache = objects.cache(ctx.deps.caches);
  const runId = ctx.status.runId ?? '';
  const name = unitLoadObjectName(kind, ctx.experiment, runId, ctx.plan.source, unit.unit);
  const conflict = (object: KubeObject) => fail(ctx, 'NameConflict', nameConflictMessage(objects.resource, object, { name: ctx.name, uid: ctx.uid }));
  let object = cache.get(ctx.namespace, name);
  if (object && !ownedBy(object, ctx.uid)) return conflict(object);
  if (!object) {
    const identity = { runId: unitRunId(runId, ctx.plan.source, unit.unit), namespace: ctx.namespace, ownerUid: ctx.uid };
    const manifest = await objects.prepare(ctx, unit, identity);
    try {
      object = await client.create<KubeObject>(objects.resource, ctx.namespace, manifest);
    } catch (error) {
      if (isNotFound(error)) return fail(ctx, `${kind}NotServed`, notServedMessage(objects));
      if (!isAlreadyExists(error)) throw error;
      // Created by an earlier attempt whose status write did not happen: adopt it.
      object = await client.get<KubeObject>(objects.resource, ctx.namespace, name);
      if (!ownedBy(object, ctx.uid)) return conflict(object);
    }
    cache.observe(object);
  }
  const checkpoint: Checkpoint = { unit: unit.unit, kind, name, ...(object.metadata.uid ? { uid: object.metadata.uid } : {}), phases: { ...unit.phases } };
  return transition(ctx, {
    to: 'Running',
    fields: { timeline: [...(ctx.status.timeline ?? []), checkpoint] },
    conditions: [{ type: LOAD_COMPLETE, status: 'Unknown', reason: `${kind}Created`, message: `${kind} ${name} created for ${describeUnit(ctx, unit)}; ${objects.waitingFor}` }],
    event: { type: 'Normal', reason: `${kind}Created`, note: `${kind} ${name}: ${describeUnit(ctx, unit)}`, action: 'Run', detail: unit.unit },
  });
}

async function follow(ctx: StepContext, current: Checkpoint, units: RunUnit[]): Promise<Result> {
  const { client } = ctx.deps;
  const objects = LOAD_OBJECTS[current.kind];
  const { kind } = objects;
  let object = objects.cache(ctx.deps.caches).get(ctx.namespace, current.name);
  if (!object || (current.uid && object.metadata.uid !== current.uid)) {
    // The cache may be behind: ask the apiserver before concluding anything.
    try {
      object = await client.get<KubeObject>(objects.resource, ctx.namespace, current.name, ctx.signal);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return fail(ctx, `${kind}Deleted`, `${kind} ${current.name} was deleted before it finished`);
    }
    if (current.uid && object.metadata.uid !== current.uid) {
      return fail(ctx, `${kind}Replaced`, `${kind} ${current.name} was deleted and created again by someone else before it finished`);
    }
  }
  const unit = units.find((entry) => entry.unit === current.unit)!;
  const now = ctx.deps.now();
  const progress = objects.progress(object, now);

  if (progress.state === 'failed') return fail(ctx, `${kind}Failed`, progress.message, [], { loadEnded: progress.loadStopped });
  if (progress.state === 'ended') {
    const endTime = progress.endTime;
    // Missed "started" (the operator was down for the whole unit): the generator ran the planned schedule.
    const startTime = current.startTime ?? progress.startTime ?? new Date(Date.parse(endTime) - unit.durationS * 1000).toISOString();
    const ended: Checkpoint = { ...current, startTime, endTime, ...(ctx.plan.source === 'stages' ? { outcome: 'Finished' as const } : {}) };
    const timeline = replaceLast(ctx.status.timeline ?? [], ended);
    if (ctx.plan.source === 'stages') {
      return transition(ctx, {
        to: 'Analyzing',
        fields: { timeline },
        conditions: [
          { type: LOAD_COMPLETE, status: 'True', reason: `${kind}Finished`, message: `${kind} ${current.name} finished (${Math.round((Date.parse(endTime) - Date.parse(startTime)) / 1000)} s of load)` },
          { type: ANALYZED, status: 'Unknown', reason: 'Analyzing', message: 'querying Prometheus over the run' },
        ],
        event: { type: 'Normal', reason: 'LoadFinished', note: `${kind} ${current.name} finished; analysing`, action: 'Run' },
      });
    }
    // A search step: record it, then judge it (next reconcile) before the next step.
    return transition(ctx, { to: 'Running', fields: { timeline } });
  }
  if (progress.state === 'started' && !current.startTime) {
    return transition(ctx, {
      to: 'Running',
      fields: { timeline: replaceLast(ctx.status.timeline ?? [], { ...current, startTime: progress.startTime }) },
      conditions: [{ type: LOAD_COMPLETE, status: 'Unknown', reason: `${kind}Started`, message: `${kind} ${current.name} started at ${progress.startTime}` }],
    });
  }
  // The object's status changes wake us; a Job's start time, which changes nothing in it, too.
  const wait = untilDeadline(ctx);
  let wakeAtMs = progress.state === 'waiting' ? (progress.wakeAtMs ?? Infinity) : Infinity;
  if (progress.state === 'waiting' && !current.startTime) {
    // Nothing starts it (k6-operator missing, pods unschedulable, an image that cannot be pulled):
    // fail within a bound rather than wait for the whole spec.timeout.
    const boundS = ctx.deps.config.loadStartTimeoutS;
    const notStartedBy = objects.dueSinceMs(object) + boundS * 1000;
    if (now.getTime() >= notStartedBy) {
      return fail(ctx, `${kind}NotStarted`, `${kind} ${current.name} has not started its load within ${boundS} s of when it was due (the operator's LOAD_START_TIMEOUT_SECONDS): ${objects.notStartedHint(current.name, ctx.namespace)}`);
    }
    if (Number.isFinite(notStartedBy)) wakeAtMs = Math.min(wakeAtMs, notStartedBy);
  }
  if (Number.isFinite(wakeAtMs)) return requeueAfter(Math.min(wait.requeueAfterMs ?? Infinity, wakeAtMs - now.getTime() + 10));
  return wait;
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
