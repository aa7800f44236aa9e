import { AnalysisInputError } from './errors.js';
import type { TrafficPlan } from '../traffic/plan.js';
import type { Thresholds } from '../schema/thresholds.js';

/** One stage (or search-step phase) of a run, as it really happened, in unix seconds. */
export interface TimelineStage {
  name: string;
  index: number;
  startUnixS: number;
  endUnixS: number;
  /** ramp: the fleet moves linearly from devicesStart to devicesEnd; hold: it stays at devicesEnd. */
  kind: 'ramp' | 'hold';
  devicesStart: number;
  devicesEnd: number;
  /** Requests per second the schedule offers at devicesEnd (device endpoints together). */
  offeredRps: number;
  /** API replicas during the stage, when a run varies them (for the USL fit). */
  replicas?: number;
}

/**
 * The part of a stage that is summarised. The rule:
 * - hold: from start + settleS + rateWindowS to the end. settleS covers the step change (new
 *   devices log in, pools grow); the rate window is added so no rate() reaches back before it.
 * - ramp: the first rampSkipFraction of it is dropped (and at least one rate window), the rest is
 *   summarised with its fleet size averaged; ramps are judged only when the run has no holds.
 * - a stage too short for that (fewer than one step left) keeps its second half, marked short,
 *   but nothing less than one rate window from its start: a rate reaching back
 *   before the stage measures the stage before it, or, at the start of a run, a series younger
 *   than its window, which rate() reports as a fraction of the real rate. A stage shorter than the
 *   rate window has no such point: it is not judged (its window is empty).
 */
export interface SteadyWindow {
  fromUnixS: number;
  toUnixS: number;
  short: boolean;
}

export function steadyWindow(
  stage: TimelineStage,
  options: Pick<Thresholds, 'settleS' | 'rampSkipFraction'> & { rateWindowS: number; stepS: number },
): SteadyWindow {
  const duration = stage.endUnixS - stage.startUnixS;
  const skip = stage.kind === 'hold'
    ? options.settleS + options.rateWindowS
    : Math.max(options.rampSkipFraction * duration, options.rateWindowS);
  const from = stage.startUnixS + skip;
  if (stage.endUnixS - from >= options.stepS) return { fromUnixS: from, toUnixS: stage.endUnixS, short: false };
  const fromUnixS = Math.max(stage.startUnixS + options.rateWindowS, stage.startUnixS + duration / 2);
  return { fromUnixS, toUnixS: stage.endUnixS, short: true };
}

/** Fleet size at time t inside a stage. */
export function fleetInStage(stage: TimelineStage, t: number): number {
  if (stage.kind === 'hold') return stage.devicesEnd;
  const duration = stage.endUnixS - stage.startUnixS;
  const progress = duration > 0 ? Math.min(1, Math.max(0, (t - stage.startUnixS) / duration)) : 1;
  return stage.devicesStart + (stage.devicesEnd - stage.devicesStart) * progress;
}

/**
 * Mean fleet behind the points of a window: a rate at t describes (t − w, t], so each point's fleet
 * is the one at the middle of its rate window.
 */
export function meanFleet(stage: TimelineStage, times: readonly number[], rateWindowS: number): number {
  if (times.length === 0) return stage.devicesEnd;
  return times.reduce((sum, t) => sum + fleetInStage(stage, Math.max(stage.startUnixS, t - rateWindowS / 2)), 0) / times.length;
}

/** Stages the SLO is judged on: the holds when there are any (ramps are transients), else all. */
export function judgedStages<T extends { kind: 'ramp' | 'hold' }>(stages: readonly T[]): T[] {
  const holds = stages.filter((stage) => stage.kind === 'hold');
  return holds.length > 0 ? holds : [...stages];
}

/** Offered requests per second per device, the same for every stage of a run. */
export function perDeviceRps(timeline: readonly TimelineStage[]): number | undefined {
  const stage = timeline.find((entry) => entry.devicesEnd > 0 && entry.offeredRps > 0);
  return stage ? stage.offeredRps / stage.devicesEnd : undefined;
}

/** Throws with what is wrong when a timeline cannot be analysed. */
export function validateTimeline(timeline: readonly TimelineStage[]): void {
  if (timeline.length === 0) throw new AnalysisInputError('timeline is empty: the run recorded no stage to analyse');
  timeline.forEach((stage, position) => {
    const where = `timeline[${position}] (${stage.name})`;
    if (!Number.isFinite(stage.startUnixS) || !Number.isFinite(stage.endUnixS) || stage.endUnixS <= stage.startUnixS) {
      throw new AnalysisInputError(`${where}: endUnixS (${stage.endUnixS}) must be after startUnixS (${stage.startUnixS})`);
    }
    if (stage.devicesStart < 0 || stage.devicesEnd < 0 || stage.offeredRps < 0) {
      throw new AnalysisInputError(`${where}: devices and offeredRps must not be negative`);
    }
    const previous = timeline[position - 1];
    if (previous && stage.startUnixS < previous.endUnixS - 1e-6) {
      throw new AnalysisInputError(`${where}: starts at ${stage.startUnixS}, before the previous stage ends (${previous.endUnixS}); stages must be in order`);
    }
  });
}

/**
 * The timeline of a run that followed a traffic plan from `startUnixS`. A search that stopped
 * early passes `endUnixS`: phases after it are dropped and the last one is cut there.
 */
export function timelineFromPlan(plan: TrafficPlan, startUnixS: number, options: { endUnixS?: number; replicas?: number } = {}): TimelineStage[] {
  const end = options.endUnixS ?? startUnixS + plan.durationS;
  const ran = plan.phases
    .filter((phase) => startUnixS + phase.startS < end)
    .map((phase) => ({ index: phase.index, startUnixS: startUnixS + phase.startS, endUnixS: Math.min(end, startUnixS + phase.endS) }));
  return timelineFromRun(plan, ran, options);
}

/**
 * The timeline of the plan phases a run really went through, each with its own wall-clock start
 * and end (local mode runs a search one step at a time, with a short gap between steps). A phase
 * cut short keeps the fleet size and rate it had reached.
 */
export function timelineFromRun(
  plan: TrafficPlan,
  ran: readonly { index: number; startUnixS: number; endUnixS: number }[],
  options: { replicas?: number } = {},
): TimelineStage[] {
  const stages: TimelineStage[] = [];
  for (const { index, startUnixS: start, endUnixS: stageEnd } of ran) {
    const phase = plan.phases[index];
    if (!phase) throw new RangeError(`the plan has no phase ${index}`);
    const progress = phase.durationS > 0 ? Math.min(1, (stageEnd - start) / phase.durationS) : 1;
    const devicesEnd = phase.kind === 'hold' ? phase.devicesAtEnd : phase.devicesAtStart + (phase.devicesAtEnd - phase.devicesAtStart) * progress;
    const rateStart = phase.ratesAtStart.measurements + phase.ratesAtStart.command;
    const rateEnd = phase.ratesAtEnd.measurements + phase.ratesAtEnd.command;
    const rateAtEnd = phase.kind === 'hold' || progress >= 1 ? rateEnd : rateStart + (rateEnd - rateStart) * progress;
    const name = phase.step !== undefined
      ? `step ${phase.step + 1} ${phase.kind}`
      : `stage ${(phase.stage ?? phase.index) + 1} ${phase.kind}`;
    stages.push({
      name,
      index: stages.length,
      startUnixS: start,
      endUnixS: stageEnd,
      kind: phase.kind,
      devicesStart: phase.devicesAtStart,
      devicesEnd,
      offeredRps: rateAtEnd,
      ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    });
  }
  return stages;
}
