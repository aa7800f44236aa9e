import { analyzeRun, type AnalysisResult } from '../analysis/analyze.js';
import { compareRuns, type Comparison, type Flag } from '../analysis/compare/compare.js';
import { comparableRun } from '../analysis/compare/record.js';
import { AnalysisInputError } from '../analysis/errors.js';
import { PrometheusClient, RetryableError, TerminalError } from '../analysis/prometheus-client.js';
import { clip } from '../analysis/summary.js';
import { MAX_COMPARISON_LINES } from '../schema/status.js';
import { buildTrafficPlan } from '../traffic/plan.js';
import { clusterAnalysisSettings } from './analysis-settings.js';
import { REGRESSED, type ConditionUpdate } from './conditions.js';
import type { Status, StepContext, TransitionSpec } from './context.js';
import { parseSpec } from './parse-spec.js';
import { analysisTimeline } from './run-units.js';

/*
 * spec.baseline: once a run is analysed, its per-interval record is compared with the baseline
 * experiment's last successful run, analysed again from Prometheus over that run's own timeline
 * (its series are still there while Prometheus retains them), exactly as `loadlab compare` does.
 * The outcome is the Regressed condition, a bounded status.comparison and an Event. A baseline that
 * cannot be read leaves Regressed Unknown with the reason; it never fails the run itself.
 */

export interface BaselineOutcome {
  condition: ConditionUpdate;
  comparison?: NonNullable<Status['comparison']>;
  event?: NonNullable<TransitionSpec['moreEvents']>[number];
}

export async function compareWithBaseline(ctx: StepContext, candidate: AnalysisResult): Promise<BaselineOutcome | undefined> {
  const baseline = ctx.experiment.spec.baseline;
  if (!baseline) return undefined;
  const name = baseline.experiment;
  const unknown = (reason: string, message: string): BaselineOutcome => ({
    condition: { type: REGRESSED, status: 'Unknown', reason, message: clip(message, 1000) },
    event: { type: 'Warning', reason, note: clip(message, 1000), action: 'Compare' },
  });
  if (name === ctx.name) return unknown('BaselineIsSelf', 'spec.baseline.experiment names this experiment: name another one (a copy run on the version to compare with)');
  const object = ctx.deps.caches.experiments.get(ctx.namespace, name);
  if (!object) return unknown('BaselineNotFound', `no LoadExperiment ${ctx.namespace}/${name} (spec.baseline.experiment)`);
  const parsed = parseSpec(object);
  if (!parsed.ok) return unknown('BaselineInvalid', `the baseline ${name} has an invalid spec: ${parsed.message}`);
  const status = (object.status ?? {}) as Status;
  const timeline = status.timeline ?? [];
  if (status.phase !== 'Succeeded' || !status.runId || timeline.length === 0 || timeline.some((checkpoint) => !checkpoint.startTime || !checkpoint.endTime)) {
    return unknown('BaselineNotReady', `the baseline ${name} has no successful run to compare with (phase ${status.phase ?? 'Pending'})`);
  }

  let reference: AnalysisResult;
  try {
    reference = await analyzeRun({
      prometheus: new PrometheusClient({ baseUrl: ctx.deps.config.prometheusUrl, signal: ctx.signal, timeoutMs: 30_000 }),
      timeline: analysisTimeline(buildTrafficPlan(parsed.experiment), timeline, parsed.experiment.spec.target.replicas),
      ...clusterAnalysisSettings({ namespace: ctx.namespace, name, experiment: parsed.experiment }, status.runId, ctx.deps.config),
    });
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    if (error instanceof RetryableError || error instanceof TerminalError || error instanceof AnalysisInputError) {
      return unknown('BaselineUnavailable', `the baseline ${name} (run ${status.runId}) could not be analysed: ${error.message}`);
    }
    throw error;
  }
  const comparison = compareRuns(
    comparableRun(reference, `${ctx.namespace}/${name} run ${status.runId}`),
    comparableRun(candidate, `${ctx.namespace}/${ctx.name} run ${ctx.status.runId ?? ''}`),
  );
  const bounded = statusComparison(comparison);
  const against = `against ${bounded.baseline}`;
  if (comparison.regressed) {
    const message = `${comparison.regressions.length} difference(s) worse ${against}: ${comparison.regressions.slice(0, 2).join('; ')}`;
    return {
      condition: { type: REGRESSED, status: 'True', reason: 'Regressed', message: clip(message, 1000) },
      comparison: bounded,
      event: { type: 'Warning', reason: 'Regressed', note: clip(message, 1000), action: 'Compare' },
    };
  }
  const message = `no regression ${against}: ${bounded.counts.withinNoise} within noise, ${bounded.counts.better} better, ${bounded.counts.notJudged} not judged`;
  return {
    condition: { type: REGRESSED, status: 'False', reason: 'NoRegression', message: clip(message, 1000) },
    comparison: bounded,
    event: { type: 'Normal', reason: 'NoRegression', note: message, action: 'Compare' },
  };
}

/** The comparison in the status' bounded form: five lines each way at most, everything else counted. */
export function statusComparison(comparison: Comparison): NonNullable<Status['comparison']> {
  const counts = { worse: 0, better: 0, withinNoise: 0, notJudged: 0 };
  const tally: Record<Flag, keyof typeof counts> = { worse: 'worse', better: 'better', 'within-noise': 'withinNoise', 'not-judged': 'notJudged', 'not-measured': 'notJudged' };
  for (const stage of comparison.stages) for (const measure of stage.measures) counts[tally[measure.flag]]++;
  return {
    baseline: clip(comparison.baseline.label, 320),
    regressed: comparison.regressed,
    breakingPoint: comparison.breakingPoint.flag,
    bottleneck: clip(`${comparison.baseline.bottleneck} → ${comparison.candidate.bottleneck}`, 160),
    worse: comparison.regressions.slice(0, MAX_COMPARISON_LINES).map((line) => clip(line, 256)),
    better: comparison.improvements.slice(0, MAX_COMPARISON_LINES).map((line) => clip(line, 256)),
    counts,
  };
}
