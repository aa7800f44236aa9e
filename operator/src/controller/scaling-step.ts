import type { AnalysisResult } from '../analysis/analyze.js';
import { replicasText, runCapacity, scalingStudy, type ScalingRun } from '../analysis/scaling.js';
import { formatNumber } from '../analysis/format.js';
import { runIdFor, scalingRunIdFor } from '../contract/names.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { MAX_SCALING_NOTES } from '../schema/status.js';
import { ANALYZED, API_READY, DATABASE_READY, LOAD_COMPLETE, SUCCEEDED, rfc3339, type ConditionUpdate } from './conditions.js';
import { deleteOwned, transition, type Result, type Status, type StepContext } from './context.js';
import { LOAD_OBJECT_RESOURCES, RESOURCES } from './kube.js';
import { loadSpanMs } from './run-units.js';

/*
 * A scaling study in the cluster (spec.scaling). The load runs once per replica count, each a whole
 * run under its own run id <generation's run id>-n<replicas>, so each count has its own load
 * objects, token secret, series and Grafana link: Provisioning (the Deployment applied with the
 * count, the data prepared per database.mode, as for any run), Running, Analyzing; spec.timeout
 * bounds each. Once a count is analysed its capacity goes into status.scaling and the next count
 * starts at Provisioning; after the last, the Universal Scalability Law fit (analysis/scaling.ts,
 * the one local mode's studies use).
 *
 * status.scaling.position is read back (as the phase and the timeline are): it only chooses which of
 * the spec's own counts runs, never a name, so a tampered status cannot reach outside the experiment.
 */

type StatusScaling = NonNullable<Status['scaling']>;
type StatusScalingRun = StatusScaling['runs'][number];

/** Which of the spec's counts runs now (a position past the end, only by a tampered status, is the last). */
function position(experiment: LoadExperiment, status: Status): number {
  const counts = experiment.spec.scaling?.replicas ?? [];
  return Math.max(0, Math.min(status.scaling?.position ?? 0, counts.length - 1));
}

/** The experiment as the study's current count runs it: target.replicas is that count. */
export function atStudyCount(experiment: LoadExperiment, status: Status): LoadExperiment {
  const counts = experiment.spec.scaling?.replicas;
  if (!counts) return experiment;
  return { ...experiment, spec: { ...experiment.spec, target: { ...experiment.spec.target, replicas: counts[position(experiment, status)]! } } };
}

/** A new run's id and, for a study, where the study starts. */
export function runStart(experiment: LoadExperiment, uid: string, generation: number): { runId: string; scaling?: StatusScaling } {
  const first = experiment.spec.scaling?.replicas[0];
  if (first === undefined) return { runId: runIdFor(uid, generation) };
  return { runId: scalingRunIdFor(uid, generation, first), scaling: { position: 0, runs: [] } };
}

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

function measuredRun(ctx: StepContext, result: AnalysisResult): StatusScalingRun {
  const capacity = runCapacity(result);
  const { bottleneck, verdict } = result.summary;
  // The window of this count's load: its pods (and, with a Deployment scaled mid-rollout, an old
  // ReplicaSet's extra pod made before the next count's) are told apart by time as well as by run.
  const span = loadSpanMs(ctx.status.timeline ?? []);
  return {
    replicas: ctx.experiment.spec.target.replicas,
    runId: ctx.status.runId ?? '',
    ...(span ? { loadStart: new Date(span.fromMs).toISOString() } : {}),
    ...(span?.toMs !== undefined ? { loadEnd: new Date(span.toMs).toISOString() } : {}),
    ...(capacity.capacityRps !== undefined ? { capacityRps: capacity.capacityRps } : {}),
    ...(capacity.stage !== undefined ? { stage: capacity.stage } : {}),
    saturated: capacity.saturated,
    ...(bottleneck ? { bottleneck } : {}),
    ...(verdict ? { verdict: clip(verdict, 512) } : {}),
  };
}

export interface CountOutcome {
  summary: NonNullable<Status['summary']>;
  /** The conditions the analysis of one run writes (Analyzed, Succeeded, SloMet). */
  conditions: ConditionUpdate[];
}

/**
 * After a count of the study was analysed: the next count starts (its load objects of this count
 * deleted unless spec.cleanup is never), or, after the last, the study ends with its fit. Returns
 * undefined when the experiment is no study (the analysis step goes on as for one run).
 */
export async function afterStudyCount(ctx: StepContext, result: AnalysisResult, outcome: CountOutcome): Promise<Result | undefined> {
  const counts = ctx.experiment.spec.scaling?.replicas;
  if (!counts) return undefined;
  const at = position(ctx.experiment, ctx.status);
  const run = measuredRun(ctx, result);
  const runs = [...(ctx.status.scaling?.runs ?? []).filter((entry) => entry.replicas !== run.replicas), run].sort((a, b) => a.replicas - b.replicas);
  const capacity = run.capacityRps === undefined ? 'nothing could be judged' : `${formatNumber(run.capacityRps)} rps${run.saturated ? '' : ' (the SLO held: a lower bound)'}`;
  const next = counts[at + 1];
  if (next !== undefined) return nextCount(ctx, { at, next, runs, capacity, outcome });

  const study = scalingStudy(runs.map((entry): ScalingRun => ({
    replicas: entry.replicas,
    ...(entry.capacityRps !== undefined ? { capacityRps: entry.capacityRps } : {}),
    ...(entry.stage !== undefined ? { stage: entry.stage } : {}),
    saturated: entry.saturated,
    bottleneck: entry.bottleneck ?? 'unknown',
    verdict: entry.verdict ?? '',
  })));
  const { fit } = study;
  const scaling: StatusScaling = {
    position: at,
    runs,
    ...(fit ? { fit: { lambda: fit.lambda, sigma: fit.sigma, kappa: fit.kappa, rSquared: fit.rSquared, ...(fit.peakN !== undefined ? { peakReplicas: fit.peakN } : {}) } } : {}),
    ...(study.predictedMaxRps !== undefined ? { predictedMaxRps: study.predictedMaxRps } : {}),
    notes: study.notes.slice(0, MAX_SCALING_NOTES).map((note) => clip(note, 320)),
  };
  const headline = fit
    ? `scaling study of ${counts.length} replica counts: σ ${formatNumber(fit.sigma)}, κ ${formatNumber(fit.kappa)}, ` +
      `${fit.peakN !== undefined ? `capacity peaks at N* ≈ ${formatNumber(fit.peakN)} replicas (${formatNumber(study.predictedMaxRps!)} rps)` : study.predictedMaxRps !== undefined ? `no peak; towards ${formatNumber(study.predictedMaxRps)} rps` : 'linear over the counts measured'}` +
      ` (R² ${formatNumber(fit.rSquared)})`
    : `scaling study of ${counts.length} replica counts, no fit: ${study.notes.at(-1) ?? ''}`;
  const lastCount = `the last count, ${replicasText(run.replicas)}`;
  const conditions = outcome.conditions.map((condition) =>
    condition.type === SUCCEEDED
      ? { ...condition, reason: fit ? 'ScalingFitted' : 'ScalingMeasured', message: clip(headline, 1024) }
      : condition.type === ANALYZED
        ? condition
        : { ...condition, message: clip(`at ${lastCount}: ${condition.message}`, 1024) },
  );
  return transition(ctx, {
    to: 'Succeeded',
    fields: { summary: outcome.summary, scaling },
    conditions,
    event: { type: 'Normal', reason: fit ? 'ScalingFitted' : 'ScalingMeasured', note: clip(`${replicasText(run.replicas)}: ${capacity}; ${headline}`, 1000), action: 'Analyze' },
  });
}

async function nextCount(ctx: StepContext, step: { at: number; next: number; runs: StatusScalingRun[]; capacity: string; outcome: CountOutcome }): Promise<Result> {
  const counts = ctx.experiment.spec.scaling!.replicas;
  const replicas = ctx.experiment.spec.target.replicas;
  // This count's load has ended and is analysed: its TestRuns or Jobs go now (spec.cleanup never:
  // kept, and deleted with the experiment), the next count's are its own.
  if (ctx.experiment.spec.cleanup !== 'never') {
    for (const checkpoint of ctx.status.timeline ?? []) {
      await deleteOwned(ctx, LOAD_OBJECT_RESOURCES[checkpoint.kind], checkpoint.name);
      await deleteOwned(ctx, RESOURCES.configMaps, checkpoint.name);
    }
  }
  const runId = scalingRunIdFor(ctx.uid, ctx.generation, step.next);
  const where = `count ${step.at + 1} of ${counts.length}`;
  const message = `${where}, ${replicasText(replicas)}: ${step.capacity}; run ${runId} at ${replicasText(step.next)} next`;
  return transition(ctx, {
    to: 'Provisioning',
    fields: {
      runId,
      // spec.timeout bounds each count's run.
      startTime: rfc3339(ctx.deps.now()),
      timeline: undefined,
      summary: step.outcome.summary,
      scaling: { position: step.at + 1, runs: step.runs },
    },
    conditions: [
      { type: SUCCEEDED, status: 'Unknown', reason: 'Provisioning', message: `scaling study: ${message}` },
      { type: API_READY, status: 'False', reason: 'Scaling', message: `scaling the API to ${replicasText(step.next)}` },
      { type: DATABASE_READY, status: 'False', reason: 'Preparing', message: `preparing the data for run ${runId}` },
      { type: LOAD_COMPLETE, status: 'Unknown', reason: 'Pending', message: `run ${runId} has not started yet` },
      { type: ANALYZED, status: 'Unknown', reason: 'NotAnalysedYet', message: `${where} analysed; run ${runId} is analysed once its load ends` },
    ],
    event: { type: 'Normal', reason: 'ScalingCountAnalyzed', note: message, action: 'Analyze' },
  });
}
