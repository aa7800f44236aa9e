import type { AnalysisResult } from '../analysis/analyze.js';
import { compareRuns, type Comparison, type Flag } from '../analysis/compare/compare.js';
import { comparableRun, type ComparableRun } from '../analysis/compare/record.js';
import { AnalysisInputError } from '../analysis/errors.js';
import { PrometheusClient, RetryableError, TerminalError } from '../analysis/prometheus-client.js';
import { clip } from '../analysis/summary.js';
import { MAX_COMPARISON_LINES } from '../schema/status.js';
import { analyseRecordedRun } from './analysis-settings.js';
import { REGRESSED, type ConditionUpdate } from './conditions.js';
import type { Status, StepContext, TransitionSpec } from './context.js';
import { parseSpec } from './parse-spec.js';
import { KubeError } from './kube.js';
import { readRunRecord, writeRunRecord } from './run-record.js';

/*
 * spec.baseline: once a run is analysed, its per-interval record is compared, exactly as `loadlab
 * compare` does, with the baseline's: this experiment's run before this one (previousRun, from the
 * records the operator keeps: run-record.ts), or another experiment's last successful run (its
 * record, or analysed again from Prometheus over its own timeline when no record of it is kept).
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
  const unknown = (reason: string, message: string): BaselineOutcome => ({
    condition: { type: REGRESSED, status: 'Unknown', reason, message: clip(message, 1000) },
    event: { type: 'Warning', reason, note: clip(message, 1000), action: 'Compare' },
  });
  let reference: ComparableRun;
  try {
    const found = baseline.previousRun ? await previousRun(ctx) : await otherExperiment(ctx, baseline.experiment ?? '');
    if ('reason' in found) return unknown(found.reason, found.message);
    reference = found;
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    if (error instanceof RetryableError || error instanceof TerminalError || error instanceof AnalysisInputError || error instanceof KubeError || error instanceof SyntaxError || isZlibError(error)) {
      return unknown('BaselineUnavailable', `the baseline could not be read: ${(error as Error).message}`);
    }
    throw error;
  }
  const comparison = compareRuns(reference, comparableRun(candidate, recordLabel(ctx.namespace, ctx.name, ctx.status.runId ?? '')));
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

/** Keeps the analysed run's record for later comparisons; an Event when it could not be kept (it never fails the run). */
export async function keepRunRecord(ctx: StepContext, result: AnalysisResult): Promise<BaselineOutcome['event']> {
  let why: string | undefined;
  try {
    why = await writeRunRecord(ctx, comparableRun(result, recordLabel(ctx.namespace, ctx.name, ctx.status.runId ?? '')));
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    why = `the run's record could not be written: ${(error as Error).message}`;
  }
  return why ? { type: 'Warning', reason: 'RunRecordNotKept', note: clip(why, 1000), action: 'Compare' } : undefined;
}

type NotAvailable = { reason: string; message: string };

function recordLabel(namespace: string, name: string, runId: string): string {
  return `${namespace}/${name} run ${runId}`;
}

/** This experiment's run before the current one, from its record (the current run's own may be there already after a retried write). */
async function previousRun(ctx: StepContext): Promise<ComparableRun | NotAvailable> {
  const client = ctx.deps.client;
  let stored = await readRunRecord(client, ctx.namespace, ctx.name, 'current');
  if (stored?.runId === ctx.status.runId) stored = await readRunRecord(client, ctx.namespace, ctx.name, 'previous');
  if (!stored) return { reason: 'BaselineNotReady', message: `no earlier run of ${ctx.name} is kept to compare with (spec.baseline.previousRun): this is its first analysed run, or that run's record was not kept` };
  return { ...stored.record, label: `${stored.record.label} (previous run)` };
}

/** Another experiment's last successful run: its record when it is that run's, else analysed again from Prometheus over its timeline. */
async function otherExperiment(ctx: StepContext, name: string): Promise<ComparableRun | NotAvailable> {
  if (name === ctx.name) return { reason: 'BaselineIsSelf', message: 'spec.baseline.experiment names this experiment: use previousRun: true to compare with its run before this one' };
  const object = ctx.deps.caches.experiments.get(ctx.namespace, name);
  if (!object) return { reason: 'BaselineNotFound', message: `no LoadExperiment ${ctx.namespace}/${name} (spec.baseline.experiment)` };
  const parsed = parseSpec(object);
  if (!parsed.ok) return { reason: 'BaselineInvalid', message: `the baseline ${name} has an invalid spec: ${parsed.message}` };
  const status = (object.status ?? {}) as Status;
  const timeline = status.timeline ?? [];
  if (status.phase !== 'Succeeded' || !status.runId || timeline.length === 0 || timeline.some((checkpoint) => !checkpoint.startTime || !checkpoint.endTime)) {
    return { reason: 'BaselineNotReady', message: `the baseline ${name} has no successful run to compare with (phase ${status.phase ?? 'Pending'})` };
  }
  const stored = await readRunRecord(ctx.deps.client, ctx.namespace, name, 'current');
  if (stored?.runId === status.runId) return stored.record;
  const result = await analyseRecordedRun(
    { namespace: ctx.namespace, name, experiment: parsed.experiment, runId: status.runId, checkpoints: timeline },
    new PrometheusClient({ baseUrl: ctx.deps.config.prometheusUrl, signal: ctx.signal, timeoutMs: 30_000 }),
    ctx.deps.config,
  );
  return comparableRun(result, recordLabel(ctx.namespace, name, status.runId));
}

function isZlibError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof Error && typeof code === 'string' && code.startsWith('Z_');
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
