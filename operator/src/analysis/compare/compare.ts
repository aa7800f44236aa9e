import { quantileFromBuckets } from '../histogram.js';
import { defined } from '../stages.js';
import type { COMPARISON_FLAGS } from '../../schema/status.js';
import { bootstrapDifferences, seedOf } from './bootstrap.js';
import type { ComparableRun, ComparableStage } from './record.js';

/*
 * A baseline run against a candidate, stage by stage (matched by name): for each measure the two
 * values, their difference and a bootstrap confidence interval of it (bootstrap.ts). A difference
 * is flagged worse (or better) only when both hold:
 *  - it is real: the interval lies wholly on one side of zero (the runs' own noise cannot explain it);
 *  - it matters: it is at least the minimum effect for that measure (defaults below, user-settable).
 * Anything else is "within noise". The breaking point is compared in steps: the candidate's last
 * good fleet at least `breakingSteps` of the baseline's judged steps lower is worse.
 */

export const MEASURES = ['served', 'errors', 'p50', 'p95', 'p99', 'cpu'] as const;
export type MeasureKey = (typeof MEASURES)[number];

interface MeasureInfo {
  label: string;
  unit: 'rps' | 'ratio' | 'ms' | 'cpu-ms';
  /** Which way is worse. */
  worse: 'higher' | 'lower';
}

export const MEASURE_INFO: Readonly<Record<MeasureKey, MeasureInfo>> = {
  served: { label: 'served rps', unit: 'rps', worse: 'lower' },
  errors: { label: 'error rate', unit: 'ratio', worse: 'higher' },
  p50: { label: 'p50', unit: 'ms', worse: 'higher' },
  p95: { label: 'p95', unit: 'ms', worse: 'higher' },
  p99: { label: 'p99', unit: 'ms', worse: 'higher' },
  cpu: { label: 'API CPU per request', unit: 'cpu-ms', worse: 'higher' },
};

/** The smallest differences worth flagging. Relative ones are fractions of the baseline's value. */
export interface MinimumEffects {
  served: number;
  /** Absolute, in error rate (0.01 = one percentage point). */
  errors: number;
  p50: number;
  p95: number;
  p99: number;
  /** Every latency difference must also be at least this many milliseconds. */
  latencyMs: number;
  cpu: number;
  /** Judged steps (or stages) the last good fleet must drop by. */
  breakingSteps: number;
}

export const DEFAULT_MINIMUM_EFFECTS: Readonly<MinimumEffects> = {
  served: 0.05,
  errors: 0.01,
  p50: 0.1,
  p95: 0.1,
  // The tail rests on few requests per interval: it moves more between two healthy runs.
  p99: 0.2,
  latencyMs: 1,
  // CPU per request shifts with what else the machine does (JIT, a neighbour, the frequency).
  cpu: 0.2,
  breakingSteps: 1,
};

export const BOOTSTRAP = { resamples: 2000, confidence: 0.95 } as const;
/** Fewer intervals than this in a stage of either run: its measures are not judged. */
export const MIN_INTERVALS = 3;
/**
 * A quantile is judged only when at least this many requests of each run lie above it: below that
 * it is the slowest handful of requests (a GC pause, a scrape), which differ from run to run
 * whatever the code does. p99 needs 2,000 requests in the stage, p95 400.
 */
export const MIN_TAIL_REQUESTS = 20;
/**
 * CPU per request is judged only when the API was busy: below this (cores, all replicas) its fixed
 * costs (timers, metric scrapes, the command index's reconcile) weigh more than the requests.
 */
export const MIN_API_CPU_CORES = 0.1;

export type Flag = (typeof COMPARISON_FLAGS)[number];

export interface MeasureComparison {
  measure: MeasureKey;
  baseline?: number;
  candidate?: number;
  /** candidate − baseline, in the measure's unit. */
  difference?: number;
  /** difference / baseline, when the baseline is not 0. */
  relative?: number;
  /** Confidence interval of the difference. */
  interval?: readonly [number, number];
  flag: Flag;
  why: string;
}

export interface StageComparison {
  name: string;
  baselineDevices?: number;
  candidateDevices?: number;
  /** Set when the stage ran in one of the runs only. */
  only?: 'baseline' | 'candidate';
  intervals: [number, number];
  measures: MeasureComparison[];
}

export interface RunSide {
  label: string;
  outcome: ComparableRun['outcome'];
  bottleneck: string;
  devicesAtBreak?: number;
  lastGood?: { name: string; devices: number };
}

export interface Comparison {
  baseline: RunSide;
  candidate: RunSide;
  breakingPoint: { flag: Flag; why: string; steps?: number };
  bottleneckChanged: boolean;
  stages: StageComparison[];
  effects: MinimumEffects;
  method: { resamples: number; confidence: number; blockLengths: [number, number] };
  /** One line per difference flagged worse (the breaking point included). */
  regressions: string[];
  improvements: string[];
  regressed: boolean;
  notes: string[];
}

export function compareRuns(baseline: ComparableRun, candidate: ComparableRun, effects: MinimumEffects = DEFAULT_MINIMUM_EFFECTS): Comparison {
  const blockLengths: [number, number] = [blockLength(baseline), blockLength(candidate)];
  const candidateStages = new Map(candidate.stages.map((stage) => [stage.name, stage]));
  const stages: StageComparison[] = [];
  for (const stage of baseline.stages) {
    const other = candidateStages.get(stage.name);
    candidateStages.delete(stage.name);
    stages.push(other ? compareStage(stage, other, blockLengths, [baseline.stepS, candidate.stepS], effects) : onlyIn('baseline', stage));
  }
  for (const stage of candidateStages.values()) stages.push(onlyIn('candidate', stage));

  const breakingPoint = compareBreakingPoint(baseline, candidate, effects);
  const regressions: string[] = [];
  const improvements: string[] = [];
  if (breakingPoint.flag === 'worse') regressions.push(`breaking point: ${breakingPoint.why}`);
  if (breakingPoint.flag === 'better') improvements.push(`breaking point: ${breakingPoint.why}`);
  for (const stage of stages) {
    for (const measure of stage.measures) {
      if (measure.flag === 'worse') regressions.push(`${stage.name}: ${MEASURE_INFO[measure.measure].label} ${measure.why}`);
      if (measure.flag === 'better') improvements.push(`${stage.name}: ${MEASURE_INFO[measure.measure].label} ${measure.why}`);
    }
  }
  const notes: string[] = [];
  if (baseline.engine !== candidate.engine || baseline.source !== candidate.source) {
    notes.push(`The runs were measured differently (baseline: ${baseline.source}, ${baseline.engine}; candidate: ${candidate.source}, ${candidate.engine}): latency and CPU may not be comparable.`);
  }
  const sloText = (slo: ComparableRun['slo']) => `p${slo.percentile} ≤ ${slo.latencyThresholdS * 1000} ms, errors ≤ ${slo.maxErrorRate * 100} %`;
  if (sloText(baseline.slo) !== sloText(candidate.slo)) notes.push(`The SLOs differ (baseline ${sloText(baseline.slo)}, candidate ${sloText(candidate.slo)}): the breaking points are judged against different objectives.`);
  const shifted = stages.filter((stage) => stage.baselineDevices !== undefined && stage.candidateDevices !== undefined && Math.abs(stage.candidateDevices - stage.baselineDevices) > 0.05 * Math.max(1, stage.baselineDevices));
  if (shifted.length > 0) notes.push(`Stages matched by name ran different fleets (${shifted.map((stage) => stage.name).join(', ')}): their rates are not like for like.`);

  return {
    baseline: side(baseline),
    candidate: side(candidate),
    breakingPoint,
    bottleneckChanged: baseline.bottleneck !== candidate.bottleneck,
    stages,
    effects: { ...effects },
    method: { ...BOOTSTRAP, blockLengths },
    regressions,
    improvements,
    regressed: regressions.length > 0,
    notes,
  };
}

function side(run: ComparableRun): RunSide {
  return {
    label: run.label,
    outcome: run.outcome,
    bottleneck: run.bottleneck,
    ...(run.devicesAtBreak !== undefined ? { devicesAtBreak: run.devicesAtBreak } : {}),
    ...(run.lastGood ? { lastGood: run.lastGood } : {}),
  };
}

/** Consecutive intervals that share data: a rate at one point reaches back a whole rate window. */
function blockLength(run: ComparableRun): number {
  return Math.max(1, Math.ceil(run.rateWindowS / run.stepS - 1e-9));
}

function onlyIn(which: 'baseline' | 'candidate', stage: ComparableStage): StageComparison {
  return {
    name: stage.name,
    ...(which === 'baseline' ? { baselineDevices: stage.devices } : { candidateDevices: stage.devices }),
    only: which,
    intervals: which === 'baseline' ? [stage.unixS.length, 0] : [0, stage.unixS.length],
    measures: [],
  };
}

function compareStage(baseline: ComparableStage, candidate: ComparableStage, blockLengths: readonly [number, number], stepS: readonly [number, number], effects: MinimumEffects): StageComparison {
  const sides = [baseline, candidate] as const;
  const all = sides.map((stage) => stage.unixS.map((_, position) => position));
  const point = sides.map((stage, position) => statistics(stage, all[position]!));
  const sizes = [baseline.unixS.length, candidate.unixS.length] as const;
  const enough = sizes.every((n) => n >= MIN_INTERVALS);
  // With few intervals a block as long as the rate window would make every resample the same:
  // at least two blocks per run.
  const blocks = sizes.map((n, position) => Math.max(1, Math.min(blockLengths[position]!, Math.floor(n / 2)))) as [number, number];
  const intervals = enough
    ? bootstrapDifferences(sizes, blocks, (which, indices) => statistics(sides[which], indices), { ...BOOTSTRAP, seed: seedOf(baseline.name) })
    : [];
  const notJudged = (measure: MeasureKey): string | undefined => {
    if (!enough) return `${sizes[0]} and ${sizes[1]} intervals (at least ${MIN_INTERVALS} each)`;
    const quantile = { p50: 0.5, p95: 0.95, p99: 0.99 }[measure as 'p50'];
    if (quantile !== undefined) {
      const above = sides.map((stage, position) => Math.floor(requests(stage, stepS[position]!) * (1 - quantile)));
      if (Math.min(...above) < MIN_TAIL_REQUESTS) return `only ${above.join(' and ')} requests above it (at least ${MIN_TAIL_REQUESTS} each)`;
    }
    if (measure === 'cpu') {
      const cores = sides.map(meanApiCpu);
      if (cores.some((value) => value !== undefined && value < MIN_API_CPU_CORES)) {
        return `the API used ${cores.map((value) => (value === undefined ? '?' : round(value))).join(' and ')} cores, below ${MIN_API_CPU_CORES} where its fixed costs outweigh the requests`;
      }
    }
    return undefined;
  };
  const measures = MEASURES.map((measure, position) =>
    judge(measure, point[0]![position], point[1]![position], intervals[position], notJudged(measure), effects),
  );
  return { name: baseline.name, baselineDevices: baseline.devices, candidateDevices: candidate.devices, intervals: [sizes[0], sizes[1]], measures };
}

/** The stage's measures over the intervals at `indices`, in MEASURES order (latencies in ms, CPU in ms per request). */
export function statistics(stage: ComparableStage, indices: readonly number[]): (number | undefined)[] {
  let ok = 0;
  let failed = 0;
  let total = 0;
  let cpu = 0;
  let okWithCpu = 0;
  for (const i of indices) {
    ok += stage.ok[i]!;
    failed += stage.failed[i]!;
    total += stage.total[i]!;
    const cores = stage.apiCpuCores[i];
    if (cores !== null && cores !== undefined) {
      cpu += cores;
      okWithCpu += stage.ok[i]!;
    }
  }
  const n = indices.length;
  const [p50, p95, p99] = latencies(stage, indices);
  return [
    n > 0 ? ok / n : undefined,
    total > 0 ? failed / total : undefined,
    p50,
    p95,
    p99,
    okWithCpu > 0 ? (cpu / okWithCpu) * 1000 : undefined,
  ];
}

/** Requests in the stage's window, about: its response rate at each point times the step between points. */
function requests(stage: ComparableStage, stepS: number): number {
  return stage.total.reduce((sum, value) => sum + value, 0) * stepS;
}

function meanApiCpu(stage: ComparableStage): number | undefined {
  const values = stage.apiCpuCores.filter((value): value is number => value !== null);
  return values.length > 0 ? values.reduce((sum, value) => sum + value, 0) / values.length : undefined;
}

function latencies(stage: ComparableStage, indices: readonly number[]): (number | undefined)[] {
  const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds * 1000);
  if (stage.latencyBuckets && stage.latencyLe) {
    const sums = new Array<number>(stage.latencyLe.length + 1).fill(0);
    for (const i of indices) {
      const row = stage.latencyBuckets[i]!;
      for (let k = 0; k < sums.length; k++) sums[k]! += row[k] ?? 0;
    }
    const buckets = sums.map((count, k) => ({ le: k < stage.latencyLe!.length ? stage.latencyLe![k]! : Infinity, count }));
    return [0.5, 0.95, 0.99].map((q) => ms(quantileFromBuckets(q, buckets)));
  }
  if (stage.latencyTrend) {
    const trend = stage.latencyTrend;
    return (['p50', 'p95', 'p99'] as const).map((name) => {
      const values = indices.map((i) => trend[name][i]).filter((value): value is number => value !== null && value !== undefined);
      return values.length > 0 ? ms(values.reduce((sum, value) => sum + value, 0) / values.length) : undefined;
    });
  }
  return [undefined, undefined, undefined];
}

function judge(
  measure: MeasureKey,
  baseline: number | undefined,
  candidate: number | undefined,
  interval: readonly [number, number] | undefined,
  notJudged: string | undefined,
  effects: MinimumEffects,
): MeasureComparison {
  const base: MeasureComparison = { measure, ...defined({ baseline, candidate }), flag: 'not-measured', why: '' };
  if (baseline === undefined || candidate === undefined) {
    return { ...base, why: `not measured in the ${baseline === undefined && candidate === undefined ? 'either run' : baseline === undefined ? 'baseline' : 'candidate'}` };
  }
  const difference = candidate - baseline;
  const relative = baseline !== 0 ? difference / baseline : undefined;
  const measured = { ...base, difference, ...(relative !== undefined ? { relative } : {}), ...(interval ? { interval } : {}) };
  const change = describe(measure, difference, relative, interval, baseline);
  if (notJudged) return { ...measured, flag: 'not-judged', why: `${change}; ${notJudged}` };
  if (!interval) return { ...measured, flag: 'not-measured', why: `${change}; no interval (too few resamples had a value)` };

  const info = MEASURE_INFO[measure];
  const real = interval[0] > 0 || interval[1] < 0;
  const { large, minimum } = isLarge(measure, difference, relative, effects);
  if (!real) return { ...measured, flag: 'within-noise', why: change };
  if (!large) return { ...measured, flag: 'within-noise', why: `${change}; beyond noise but below the minimum effect (${minimum})` };
  const worse = info.worse === 'higher' ? difference > 0 : difference < 0;
  return { ...measured, flag: worse ? 'worse' : 'better', why: change };
}

function isLarge(measure: MeasureKey, difference: number, relative: number | undefined, effects: MinimumEffects): { large: boolean; minimum: string } {
  const size = Math.abs(difference);
  if (measure === 'errors') return { large: size >= effects.errors, minimum: `${round(effects.errors * 100)} percentage points` };
  const fraction = effects[measure];
  const relativeLarge = relative === undefined ? size > 0 : Math.abs(relative) >= fraction;
  if (measure === 'p50' || measure === 'p95' || measure === 'p99') {
    return { large: relativeLarge && size >= effects.latencyMs, minimum: `${round(fraction * 100)} % and ${effects.latencyMs} ms` };
  }
  return { large: relativeLarge, minimum: `${round(fraction * 100)} %` };
}

/** "+52 % (95 % CI +40 … +63 %)", or in points for the error rate. */
function describe(measure: MeasureKey, difference: number, relative: number | undefined, interval: readonly [number, number] | undefined, baseline: number): string {
  const confidence = `${BOOTSTRAP.confidence * 100} % CI`;
  if (measure === 'errors') {
    const points = (value: number) => `${signed(round(value * 100))} pp`;
    return `${points(difference)}${interval ? ` (${confidence} ${points(interval[0])} … ${points(interval[1])})` : ''}`;
  }
  if (relative === undefined) return `${signed(round(difference))} from 0`;
  const percent = (value: number) => `${signed(round((value / baseline) * 100))} %`;
  return `${percent(difference)}${interval ? ` (${confidence} ${percent(interval[0])} … ${percent(interval[1])})` : ''}`;
}

function compareBreakingPoint(baseline: ComparableRun, candidate: ComparableRun, effects: MinimumEffects): Comparison['breakingPoint'] {
  if (baseline.outcome === 'undetermined' || candidate.outcome === 'undetermined') {
    return { flag: 'not-measured', why: `the ${baseline.outcome === 'undetermined' ? 'baseline' : 'candidate'} could not be judged` };
  }
  const held = (run: ComparableRun) => run.lastGood?.devices ?? 0;
  const describeRun = (run: ComparableRun) =>
    `${run.lastGood ? `held to ${formatDevices(run.lastGood.devices)}` : 'held at no step'}${run.outcome === 'broke' ? `, broke at ${formatDevices(run.devicesAtBreak ?? 0)}` : ', never broke'}`;
  const text = `baseline ${describeRun(baseline)}; candidate ${describeRun(candidate)}`;
  const low = Math.min(held(baseline), held(candidate));
  const high = Math.max(held(baseline), held(candidate));
  if (low === high && baseline.outcome === candidate.outcome) return { flag: 'within-noise', why: `${text}: the same`, steps: 0 };
  // The judged steps between the two last good fleets, counted on the run that went further; the
  // same last good fleet with one run breaking after it (a stages run) is one step.
  const further = held(candidate) < held(baseline) ? baseline : candidate;
  const steps = low === high ? 1 : Math.max(1, further.stages.filter((stage) => stage.devices > low + 1e-9 && stage.devices <= high + 1e-9).length);
  if (steps < effects.breakingSteps) return { flag: 'within-noise', why: `${text}: ${steps} step(s) apart, below the minimum of ${effects.breakingSteps}`, steps };
  const worse = low === high ? candidate.outcome === 'broke' : held(candidate) < held(baseline);
  return { flag: worse ? 'worse' : 'better', why: `${text}: ${steps} step(s) ${worse ? 'lower' : 'higher'}`, steps };
}

function formatDevices(devices: number): string {
  return `${Math.round(devices).toLocaleString('en')} devices`;
}

function signed(value: number): string {
  return value > 0 ? `+${value}` : value < 0 ? `−${Math.abs(value)}` : '0';
}

function round(value: number): number {
  return Number(value.toPrecision(value !== 0 && Math.abs(value) < 1 ? 2 : 3));
}
