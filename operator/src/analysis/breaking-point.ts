import { formatMs as ms, formatNumber as fmt, formatPercent as pct } from './format.js';
import type { Slo, StageSummary } from './stages.js';
import type { Thresholds } from '../schema/thresholds.js';
import { judgedStages } from './timeline.js';

/*
 * The breaking point: the first judged stage (holds, or every stage of a run without holds) that
 *  - violates the SLO: latency at the SLO's percentile above its threshold, or error rate above
 *    its maximum; or
 *  - is past the knee, where achieved throughput stops tracking the offered load:
 *      achieved / offered < kneeRatio (0.95): the API serves less than it is offered; or
 *      (achievedᵢ − achievedᵢ₋₁) / (offeredᵢ − offeredᵢ₋₁) < kneeMarginalGain (0.5): of the load
 *      this step added, less than half was served (throughput flattening), judged only when the
 *      step added at least kneeMinStepFraction (5%) of load, so small steps do not turn noise
 *      into a knee.
 * A stage with none of latency, errors and throughput measured cannot be judged and is skipped.
 */

export type BreakKind = 'latency' | 'errors' | 'knee' | 'flattening';

export interface BreakReason {
  kind: BreakKind;
  value: number;
  threshold: number;
  text: string;
}

export interface StageRef {
  index: number;
  name: string;
  devices: number;
  offeredRps: number;
  achievedRps?: number;
  latencySloS?: number;
  p95S?: number;
  errorRate?: number;
}

export interface BreakingPoint {
  /** broke: a judged stage failed; held: every judged stage passed; undetermined: nothing could be judged. */
  status: 'broke' | 'held' | 'undetermined';
  breaking?: StageRef & { reasons: BreakReason[] };
  /** The last judged stage before the break that passed (or the last one when it held). */
  lastGood?: StageRef;
  judged: number;
}

export function findBreakingPoint(stages: readonly StageSummary[], slo: Slo, thresholds: Thresholds): BreakingPoint {
  let lastGood: StageSummary | undefined;
  let previous: StageSummary | undefined;
  let judged = 0;
  for (const stage of judgedStages(stages)) {
    if (!judgeable(stage)) continue;
    judged++;
    const reasons = breakReasons(stage, previous, slo, thresholds);
    if (reasons.length > 0) {
      return { status: 'broke', breaking: { ...ref(stage), reasons }, ...(lastGood ? { lastGood: ref(lastGood) } : {}), judged };
    }
    lastGood = stage;
    previous = stage;
  }
  if (judged === 0) return { status: 'undetermined', judged };
  return { status: 'held', ...(lastGood ? { lastGood: ref(lastGood) } : {}), judged };
}

function judgeable(stage: StageSummary): boolean {
  return stage.latency.slo !== undefined || stage.errorRate !== undefined || stage.achievedRps !== undefined;
}

export function breakReasons(stage: StageSummary, previous: StageSummary | undefined, slo: Slo, thresholds: Thresholds): BreakReason[] {
  const reasons: BreakReason[] = [];
  const latency = stage.latency.slo;
  if (latency !== undefined && latency > slo.latencyThresholdS) {
    reasons.push({
      kind: 'latency', value: latency, threshold: slo.latencyThresholdS,
      text: `p${slo.percentile} ${ms(latency)} > ${ms(slo.latencyThresholdS)} (${stage.latencySource})`,
    });
  }
  if (stage.errorRate !== undefined && stage.errorRate > slo.maxErrorRate) {
    reasons.push({
      kind: 'errors', value: stage.errorRate, threshold: slo.maxErrorRate,
      text: `errors ${pct(stage.errorRate)} > ${pct(slo.maxErrorRate)}`,
    });
  }
  if (stage.achievedRps !== undefined && stage.offeredRps > 0) {
    const ratio = stage.achievedRps / stage.offeredRps;
    if (ratio < thresholds.kneeRatio) {
      reasons.push({
        kind: 'knee', value: ratio, threshold: thresholds.kneeRatio,
        text: `served ${fmt(stage.achievedRps)} of ${fmt(stage.offeredRps)} rps offered (${pct(ratio)} < ${pct(thresholds.kneeRatio)})`,
      });
    }
  }
  const gain = marginalGain(stage, previous, thresholds);
  if (gain !== undefined && gain < thresholds.kneeMarginalGain && !reasons.some((reason) => reason.kind === 'knee')) {
    reasons.push({
      kind: 'flattening', value: gain, threshold: thresholds.kneeMarginalGain,
      text: `served ${pct(Math.max(0, gain))} of the load added since the previous step (< ${pct(thresholds.kneeMarginalGain)})`,
    });
  }
  return reasons;
}

/** Served / added load between two steps, when the step added enough load to tell. */
export function marginalGain(stage: StageSummary, previous: StageSummary | undefined, thresholds: Pick<Thresholds, 'kneeMinStepFraction'>): number | undefined {
  if (!previous || stage.achievedRps === undefined || previous.achievedRps === undefined) return undefined;
  const added = stage.offeredRps - previous.offeredRps;
  if (!(added > 0) || added < thresholds.kneeMinStepFraction * previous.offeredRps) return undefined;
  return (stage.achievedRps - previous.achievedRps) / added;
}

export function ref(stage: StageSummary): StageRef {
  return {
    index: stage.index,
    name: stage.name,
    devices: stage.devices,
    offeredRps: stage.offeredRps,
    ...(stage.achievedRps !== undefined ? { achievedRps: stage.achievedRps } : {}),
    ...(stage.latency.slo !== undefined ? { latencySloS: stage.latency.slo } : {}),
    ...(stage.latency.p95 !== undefined ? { p95S: stage.latency.p95 } : {}),
    ...(stage.errorRate !== undefined ? { errorRate: stage.errorRate } : {}),
  };
}
