import type { PhaseRange, SchedulePhase } from './schedule.js';
import type { TrafficPlan } from './plan.js';

/* Which phases of a plan a run covers, and the plan as the plain data a generator carries. */

/** The phases a run covers: all of them by default. Throws on a range that is not inside the plan. */
export function resolvePhaseRange(plan: TrafficPlan, range?: PhaseRange): PhaseRange {
  const resolved = range ?? { from: 0, to: plan.phases.length };
  const { from, to } = resolved;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > plan.phases.length || from >= to) {
    throw new RangeError(
      `phase range [${from}, ${to}) is not inside the plan's ${plan.phases.length} phases: ` +
        `give 0 <= from < to <= ${plan.phases.length}`,
    );
  }
  return { from, to };
}

/** The phases of one search step (its ramp and its hold): a breaking-point search runs one TestRun per step. */
export function phaseRangeOfStep(plan: TrafficPlan, step: number): PhaseRange {
  const indices = plan.phases.filter((phase) => phase.step === step).map((phase) => phase.index);
  if (indices.length === 0) throw new RangeError(`the plan has no search step ${step}`);
  return { from: Math.min(...indices), to: Math.max(...indices) + 1 };
}

/** The plan's phases as the plain data the script carries. */
export function schedulePhases(plan: TrafficPlan): SchedulePhase[] {
  return plan.phases.map(({ startS, durationS, devicesAtStart, devicesAtEnd }) => ({ startS, durationS, devicesAtStart, devicesAtEnd }));
}

/** Seconds between a device's logins spreading out: the shorter of its two intervals. */
export function loginSpreadS(plan: TrafficPlan): number {
  return Math.min(plan.intervalS.measurements, plan.intervalS.command);
}
