import type { AnalysisResult } from '../analysis/analyze.js';
import { AnalysisInputError } from '../analysis/errors.js';
import { PrometheusClient, RetryableError, TerminalError } from '../analysis/prometheus-client.js';
import type { AnalysisSummary } from '../analysis/summary.js';
import { ANALYZED, SLO_MET, SUCCEEDED, conditionDiffers, type ConditionUpdate } from './conditions.js';
import { afterStudyCount } from './scaling-step.js';
import { sloGate } from '../analysis/slo-gate.js';
import { fail, requeueAfter, timedOut, transition, type Result, type StepContext, type Status } from './context.js';
import type { Checkpoint } from './run-units.js';
import { analyseRecordedRun, clusterAnalysisSettings } from './analysis-settings.js';
import { compareWithBaseline, keepRunRecord } from './baseline-step.js';

/*
 * Analyzing: the analysis library over the recorded timeline against the configured Prometheus.
 * Prometheus unavailable (unreachable, 5xx, timeouts: RetryableError) is retried with the work
 * queue's exponential backoff, the wait shown in the Analyzed condition, until spec.timeout; a query
 * Prometheus refuses for good (TerminalError) fails the run with its message.
 */

export function analysisSettings(ctx: Pick<StepContext, 'namespace' | 'name' | 'deps' | 'experiment'>, runId: string) {
  return clusterAnalysisSettings(ctx, runId, ctx.deps.config);
}

/** analyzeRun over the checkpoints' timeline; throws RetryableError / TerminalError / AnalysisInputError. */
export async function analyseCheckpoints(ctx: StepContext, checkpoints: readonly Checkpoint[]): Promise<AnalysisResult> {
  const prometheus = new PrometheusClient({ baseUrl: ctx.deps.config.prometheusUrl, signal: ctx.signal, timeoutMs: 30_000 });
  return analyseRecordedRun({ ...ctx, runId: ctx.status.runId ?? '', checkpoints }, prometheus, ctx.deps.config);
}

/** The status form of the bounded summary (the same fields; plain arrays). */
export function statusSummary(summary: AnalysisSummary): NonNullable<Status['summary']> {
  return {
    ...summary,
    breakReasons: [...summary.breakReasons],
    evidence: summary.evidence.map((entry) => ({ ...entry })),
    steps: { columns: [...summary.steps.columns], rows: summary.steps.rows.map((row) => [...row]), total: summary.steps.total },
  };
}

/** The wait before querying: the last samples reach Prometheus a little after the load ends. */
export function analysisDelayMs(ctx: StepContext): number {
  const ends = (ctx.status.timeline ?? []).map((checkpoint) => (checkpoint.endTime ? Date.parse(checkpoint.endTime) : 0));
  const lastEnd = Math.max(0, ...ends);
  return lastEnd + ctx.deps.config.analysis.delayS * 1000 - ctx.deps.now().getTime();
}

/** Shows that Prometheus is down (once per change), then rethrows so the queue backs off. */
export async function waitForPrometheus(ctx: StepContext, error: RetryableError): Promise<never> {
  const update = { type: ANALYZED, status: 'Unknown' as const, reason: 'PrometheusUnavailable', message: `${error.message}; retrying with backoff until spec.timeout` };
  if (conditionDiffers(ctx.status.conditions, update, ctx.generation)) {
    await transition(ctx, {
      to: ctx.status.phase ?? 'Analyzing',
      conditions: [update],
      event: { type: 'Warning', reason: 'PrometheusUnavailable', note: update.message, action: 'Analyze' },
    });
  }
  throw error;
}

export async function analyze(ctx: StepContext): Promise<Result> {
  if (timedOut(ctx)) {
    return fail(ctx, 'Timeout', `the analysis did not finish within spec.timeout (${ctx.experiment.spec.timeout})`, [
      { type: ANALYZED, status: 'False', reason: 'Timeout', message: 'Prometheus did not answer in time' },
    ]);
  }
  const wait = analysisDelayMs(ctx);
  if (wait > 0) return requeueAfter(wait);

  let result: AnalysisResult;
  try {
    result = await analyseCheckpoints(ctx, ctx.status.timeline ?? []);
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    if (error instanceof RetryableError) return waitForPrometheus(ctx, error);
    if (error instanceof TerminalError || error instanceof AnalysisInputError) {
      const message = `the analysis failed: ${error.message}`;
      return fail(ctx, 'AnalysisFailed', message, [{ type: ANALYZED, status: 'False', reason: 'AnalysisFailed', message }]);
    }
    throw error;
  }

  const summary = statusSummary(result.summary);
  // Compared before this run's record is kept: with previousRun the record still holds the run before.
  const baseline = await compareWithBaseline(ctx, result);
  const recordEvent = await keepRunRecord(ctx, result);
  const gate = sloGate(result.breakingPoint, ctx.experiment.spec.load.search ? 'search' : 'stages', ctx.experiment.spec.slo.minDevices);
  const reason = result.breakingPoint.status === 'broke' ? 'BreakingPointFound' : result.breakingPoint.status === 'held' ? 'SloHeld' : 'Undetermined';
  const missing = result.missing.length > 0 ? ` ${result.missing.length} of ${result.catalog.length} queries found no series (${result.missing.slice(0, 5).join(', ')}${result.missing.length > 5 ? ', ...' : ''}).` : '';
  const analysed = `${result.stages.length} stages over ${Math.round(result.settings.endUnixS - result.settings.startUnixS)} s, ${result.queries.count} queries in ${Math.round(result.timing.queryWallMs)} ms.${missing}`;
  const conditions: ConditionUpdate[] = [
    { type: ANALYZED, status: 'True', reason: 'Analyzed', message: analysed },
    { type: SUCCEEDED, status: 'True', reason, message: summary.verdict ?? reason },
    { type: SLO_MET, status: gate.outcome === 'met' ? 'True' : gate.outcome === 'broken' ? 'False' : 'Unknown', reason: gate.reason, message: gate.message },
  ];
  const study = await afterStudyCount(ctx, result, { summary, conditions });
  if (study) return study;
  return transition(ctx, {
    to: 'Succeeded',
    fields: { summary, ...(baseline?.comparison ? { comparison: baseline.comparison } : {}) },
    conditions: [...conditions, ...(baseline ? [baseline.condition] : [])],
    event: { type: reason === 'Undetermined' ? 'Warning' : 'Normal', reason, note: summary.verdict ?? analysed, action: 'Analyze' },
    moreEvents: [baseline?.event, recordEvent].filter((event) => event !== undefined),
  });
}
