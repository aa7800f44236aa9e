import type { BreakingPoint } from './breaking-point.js';
import type { StageSummary } from './stages.js';
import { judgedStages } from './timeline.js';
import type { Bottleneck, Verdict } from './verdict.js';
import { MAX_STATUS_EVIDENCE, MAX_STATUS_STEP_ROWS } from '../schema/status.js';

/*
 * The summary a LoadExperiment's status carries. Its size is fixed whatever the run's length
 * (Argo Rollouts learned that unbounded measurement lists overflow etcd): every string is clipped
 * to a byte budget, every number rounded to 4 significant digits, at most 3 evidence entries and
 * at most 20 step rows of 6 numbers. Serialised as JSON it never exceeds SUMMARY_MAX_BYTES (tested
 * with a 200-step run and adversarial names). The first seven fields are the CRD's
 * status.summary fields of the same names.
 */

export const SUMMARY_MAX_BYTES = 4096;
export const STEP_COLUMNS = ['step', 'devices', 'offeredRps', 'achievedRps', 'p95Ms', 'errorRate'] as const;

const BUDGET = { verdict: 512, stage: 64, reason: 96, name: 48, unit: 8 } as const;

export interface HeadlineNumbers {
  stage: string;
  devices: number;
  rps?: number;
  p95Ms?: number;
  p99Ms?: number;
  errorRate?: number;
}

export interface SummaryEvidence {
  resource: string;
  /** The measure (e.g. pool_acquire.p95) and the catalog query behind it. */
  signal: string;
  query: string;
  value: number;
  threshold?: number;
  unit: string;
  stage: string;
}

export interface AnalysisSummary {
  /** Fleet size at which the SLO first broke; absent: it held. */
  devicesAtBreak?: number;
  /** Requests per second served at the breaking step. */
  breakingPointRps?: number;
  /** Requests per second served at the highest load that held the SLO. */
  rps?: number;
  /** p95 latency at that load, milliseconds. */
  p95Ms?: number;
  errorRate?: number;
  bottleneck: Bottleneck;
  verdict: string;
  outcome: BreakingPoint['status'];
  breakReasons: string[];
  lastGood?: HeadlineNumbers;
  /** The judged stage that served the most. */
  peak?: HeadlineNumbers;
  evidence: SummaryEvidence[];
  steps: {
    columns: typeof STEP_COLUMNS;
    /** One row per judged step (downsampled to 20, keeping the first, last good, breaking and last). */
    rows: (number | null)[][];
    total: number;
  };
}

export function buildSummary(stages: readonly StageSummary[], breakingPoint: BreakingPoint, verdict: Verdict): AnalysisSummary {
  const judged = judgedStages(stages);
  const byIndex = new Map(stages.map((stage) => [stage.index, stage]));
  const lastGood = breakingPoint.lastGood ? byIndex.get(breakingPoint.lastGood.index) : undefined;
  const peak = judged.reduce<StageSummary | undefined>(
    (best, stage) => (stage.achievedRps !== undefined && (best?.achievedRps === undefined || stage.achievedRps > best.achievedRps) ? stage : best),
    undefined,
  );
  const breaking = breakingPoint.breaking;
  const summary: AnalysisSummary = {
    ...optional('devicesAtBreak', breaking ? Math.round(breaking.devices) : undefined),
    ...optional('breakingPointRps', round(breaking?.achievedRps)),
    ...optional('rps', round(lastGood?.achievedRps)),
    ...optional('p95Ms', round(msOf(lastGood?.latency.p95))),
    ...optional('errorRate', round(lastGood?.errorRate)),
    bottleneck: verdict.bottleneck,
    verdict: clip(verdict.text, BUDGET.verdict),
    outcome: breakingPoint.status,
    breakReasons: (breaking?.reasons ?? []).slice(0, 3).map((reason) => clip(reason.text, BUDGET.reason)),
    ...optional('lastGood', lastGood ? headline(lastGood) : undefined),
    ...optional('peak', peak ? headline(peak) : undefined),
    evidence: verdict.evidence.slice(0, MAX_STATUS_EVIDENCE).map((entry) => ({
      resource: clip(entry.resource, BUDGET.name),
      signal: clip(entry.measure, BUDGET.name),
      query: clip(entry.query, BUDGET.name),
      value: round(entry.value) ?? 0,
      ...optional('threshold', round(entry.threshold)),
      unit: clip(entry.unit, BUDGET.unit),
      stage: clip(entry.stageName, BUDGET.stage),
    })),
    steps: {
      columns: STEP_COLUMNS,
      rows: pickRows(judged, breakingPoint).map((stage) => [
        stage.index,
        round(stage.devices) ?? null,
        round(stage.offeredRps) ?? null,
        round(stage.achievedRps) ?? null,
        round(msOf(stage.latency.p95)) ?? null,
        round(stage.errorRate) ?? null,
      ]),
      total: judged.length,
    },
  };
  return summary;
}

function headline(stage: StageSummary): HeadlineNumbers {
  return {
    stage: clip(stage.name, BUDGET.stage),
    devices: round(stage.devices) ?? 0,
    ...optional('rps', round(stage.achievedRps)),
    ...optional('p95Ms', round(msOf(stage.latency.p95))),
    ...optional('p99Ms', round(msOf(stage.latency.p99))),
    ...optional('errorRate', round(stage.errorRate)),
  };
}

/** At most 20 rows: the first, last good, breaking and last steps, the rest evenly spaced. */
export function pickRows<T extends { index: number }>(judged: readonly T[], breakingPoint: Pick<BreakingPoint, 'breaking' | 'lastGood'>): T[] {
  if (judged.length <= MAX_STATUS_STEP_ROWS) return [...judged];
  const keep = new Set<number>([0, judged.length - 1]);
  for (const index of [breakingPoint.breaking?.index, breakingPoint.lastGood?.index]) {
    const position = judged.findIndex((stage) => stage.index === index);
    if (position >= 0) keep.add(position);
  }
  const slots = MAX_STATUS_STEP_ROWS - keep.size;
  for (let k = 1; k <= slots; k++) keep.add(Math.round((k * (judged.length - 1)) / (slots + 1)));
  // Rounding can collide with a kept position; fill any gap from the start.
  for (let position = 0; keep.size < MAX_STATUS_STEP_ROWS; position++) keep.add(position);
  return [...keep].sort((a, b) => a - b).map((position) => judged[position]!);
}

/** Four significant digits: enough for a status, and a bounded number of characters. */
export function round(value: number | undefined): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  return Number(value.toPrecision(4));
}

function msOf(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000;
}

/** The text cut (on a character boundary, with an ellipsis) so its JSON form fits `maxBytes`. */
export function clip(text: string, maxBytes: number): string {
  const size = (value: string) => Buffer.byteLength(JSON.stringify(value)) - 2;
  if (size(text) <= maxBytes) return text;
  const characters = [...text];
  let low = 0;
  let high = characters.length;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (size(characters.slice(0, middle).join('') + '…') <= maxBytes) low = middle;
    else high = middle - 1;
  }
  return characters.slice(0, low).join('') + '…';
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
