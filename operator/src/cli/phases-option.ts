import type { TrafficPlan } from '../traffic/plan.js';
import type { PhaseRange } from '../traffic/schedule.js';

/**
 * `--phases FROM-TO`: plan phases, 0-based and inclusive, as the loadlab.dev/phases annotation
 * writes them (`loadlab render` and `loadlab drive` take the same form). Returns the half-open
 * range, or an error message a person can act on.
 */
export function parsePhasesOption(text: string, plan: TrafficPlan): PhaseRange | { error: string } {
  const match = /^(\d+)-(\d+)$/.exec(text);
  const from = Number(match?.[1]);
  const to = Number(match?.[2]) + 1;
  if (!match || from >= to || to > plan.phases.length) {
    return { error: `--phases must be FROM-TO with 0 <= FROM <= TO <= ${plan.phases.length - 1} (the plan has ${plan.phases.length} phases), not "${text}"` };
  }
  return { from, to };
}
