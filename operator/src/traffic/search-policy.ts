/*
 * The breaking-point search's one rule, for local mode (which runs the steps itself) and the
 * operator (one TestRun or Job per step): after each step is judged from Prometheus, go on to the
 * next step, or stop. The search stops at the first step whose hold broke the SLO, or after its
 * last step; a step that could not be judged (no traffic was measured) does not stop it, since a
 * later, larger step may still be judged.
 */

export type StepOutcome = 'Held' | 'Broke' | 'Undetermined';

export type SearchDecision = { action: 'next'; step: number } | { action: 'stop'; reason: 'broke' | 'completed' };

/** What to do after step `step` (0-based) of `steps` was judged `outcome`. */
export function afterSearchStep(step: number, steps: number, outcome: StepOutcome): SearchDecision {
  if (!(Number.isInteger(step) && Number.isInteger(steps) && step >= 0 && step < steps)) {
    throw new RangeError(`search step ${step} is not one of the plan's ${steps} steps`);
  }
  if (outcome === 'Broke') return { action: 'stop', reason: 'broke' };
  if (step === steps - 1) return { action: 'stop', reason: 'completed' };
  return { action: 'next', step: step + 1 };
}

/** A judged step's outcome from the analysis' breaking-point status. */
export function stepOutcome(status: 'held' | 'broke' | 'undetermined'): StepOutcome {
  if (status === 'broke') return 'Broke';
  if (status === 'undetermined') return 'Undetermined';
  return 'Held';
}
