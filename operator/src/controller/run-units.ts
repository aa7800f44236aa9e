import { timelineFromRun, type TimelineStage } from '../analysis/timeline.js';
import type { PhaseRange } from '../traffic/schedule.js';
import type { LoadExperimentStatus } from '../schema/load-experiment.js';
import type { TrafficPlan } from '../traffic/plan.js';
import { phaseRangeOfStep } from '../traffic/phases.js';

/*
 * How a run maps onto TestRuns, and how the checkpoints in status become the analysis' timeline.
 *
 * A run of stages is ONE TestRun over the whole plan: k6's ramping-arrival-rate stages follow the
 * plan exactly, and one run means one set of runner pods and no gaps. A breaking-point search is
 * ONE TestRun PER STEP (its ramp and its hold): after each step the operator asks Prometheus
 * whether the SLO held, and stops the search at the first step that broke it, so the API is never
 * driven far past its breaking point and the search costs only the steps it needs. The gap
 * between steps (a few seconds for the next TestRun's pods to start) falls between a hold and the
 * next ramp, which the analysis does not judge.
 *
 * Each TestRun is one checkpoint in status.timeline: its name and uid when created, when its load
 * started and ended. Those times are what the analysis reads, so a restarted operator resumes
 * exactly where the run was and loses nothing.
 */

export type Checkpoint = NonNullable<LoadExperimentStatus['timeline']>[number];

export interface RunUnit {
  unit: number;
  phases: PhaseRange;
  /** Planned seconds of load in the unit. */
  durationS: number;
}

export function runUnits(plan: TrafficPlan): RunUnit[] {
  if (plan.source === 'stages') return [{ unit: 0, phases: { from: 0, to: plan.phases.length }, durationS: plan.durationS }];
  const steps = [...new Set(plan.phases.map((phase) => phase.step!))].sort((a, b) => a - b);
  return steps.map((step) => {
    const phases = phaseRangeOfStep(plan, step);
    return { unit: step, phases, durationS: plan.phases[phases.to - 1]!.endS - plan.phases[phases.from]!.startS };
  });
}

/** The plan phases each finished (or stopped) checkpoint really ran, in wall-clock unix seconds. */
export function ranPhases(plan: TrafficPlan, checkpoints: readonly Checkpoint[]): { index: number; startUnixS: number; endUnixS: number }[] {
  const ran: { index: number; startUnixS: number; endUnixS: number }[] = [];
  for (const checkpoint of checkpoints) {
    if (!checkpoint.startTime || !checkpoint.endTime) continue;
    const start = Date.parse(checkpoint.startTime) / 1000;
    const end = Date.parse(checkpoint.endTime) / 1000;
    if (!(end > start)) continue;
    const offset = plan.phases[checkpoint.phases.from]?.startS ?? 0;
    for (let index = checkpoint.phases.from; index < checkpoint.phases.to; index++) {
      const phase = plan.phases[index];
      if (!phase) break;
      const phaseStart = start + (phase.startS - offset);
      const phaseEnd = Math.min(end, start + (phase.endS - offset));
      if (phaseStart >= end) break;
      if (phaseEnd > phaseStart) ran.push({ index, startUnixS: phaseStart, endUnixS: phaseEnd });
    }
  }
  return ran;
}

/** The analysis timeline of the checkpoints so far. */
export function analysisTimeline(plan: TrafficPlan, checkpoints: readonly Checkpoint[], replicas?: number): TimelineStage[] {
  return timelineFromRun(plan, ranPhases(plan, checkpoints), replicas !== undefined ? { replicas } : {});
}

/** The time span of the recorded load: from the first start to the last end (unix ms), if any. */
export function loadSpanMs(checkpoints: readonly Checkpoint[]): { fromMs: number; toMs?: number } | undefined {
  const starts = checkpoints.map((checkpoint) => checkpoint.startTime).filter((time): time is string => !!time).map(Date.parse);
  if (starts.length === 0) return undefined;
  const ends = checkpoints.map((checkpoint) => checkpoint.endTime).filter((time): time is string => !!time).map(Date.parse);
  const open = checkpoints.some((checkpoint) => checkpoint.startTime && !checkpoint.endTime);
  return { fromMs: Math.min(...starts), ...(ends.length > 0 && !open ? { toMs: Math.max(...ends) } : {}) };
}
