import { durationMs } from './duration.js';

/** The search fields the step arithmetic needs; both the validator and the traffic plan use it. */
export interface SearchSteps {
  startDevices: number;
  maxDevices: number;
  step: { factor?: number | undefined; devices?: number | undefined };
}

/**
 * A search longer than this is refused: each step is a ramp and a hold, and status keeps one row
 * per step at most, so the count must stay small. 100 steps of 1 minute is already 1h40m.
 */
export const MAX_SEARCH_STEPS = 100;

/**
 * Fleet size of each search step: start, then grow by the factor (rounded, and always by at least
 * one device so a small fleet with a small factor still moves) or by a fixed number of devices.
 * The last step is clamped to maxDevices so the search always tries the largest fleet asked for.
 * Stops after `limit` steps so a tiny factor cannot make this loop for long.
 */
export function searchStepDevices(search: SearchSteps, limit = MAX_SEARCH_STEPS + 1): number[] {
  const steps: number[] = [];
  let devices = search.startDevices;
  while (steps.length < limit) {
    steps.push(devices);
    if (devices >= search.maxDevices) break;
    const next = search.step.factor !== undefined
      ? Math.max(devices + 1, Math.round(devices * search.step.factor))
      : devices + Math.max(1, search.step.devices ?? 1);
    devices = Math.min(next, search.maxDevices);
  }
  return steps;
}

/** Planned load time of a search: every step ramps up then holds; the runner may stop sooner. */
export function searchDurationMs(search: SearchSteps & { hold: string; rampUp: string }): number {
  return searchStepDevices(search).length * (durationMs(search.rampUp) + durationMs(search.hold));
}

export function stagesDurationMs(stages: readonly { duration: string }[]): number {
  return stages.reduce((total, stage) => total + durationMs(stage.duration), 0);
}
