/*
 * How parallel load generators share one schedule: runner k of n sends, of every endpoint's
 * arrivals in the unit's phase range (measurements, polls and logins, each numbered 0, 1, 2, ... in
 * time order), those whose number is k mod n. Each arrival keeps its time and its device; only who
 * sends it changes, so the n slices together are exactly the schedule and no arrival is sent twice.
 *
 * This is the split k6 gives parallel runners (k6-operator hands runner i of n the execution segment
 * (i-1)/n:i/n of the sequence 0,1/n,...,1): for equal segments its striping gives iteration j of a
 * scenario to segment j mod n, and an arrival-rate executor starts every iteration at the time the
 * whole scenario would. loadlab's k6 script turns the scenario's iteration number into the device
 * (exec.scenario.iterationInTest), and one scenario is one endpoint, so a driver pod with index k
 * sends what k6 runner k + 1 would. Every runner's share of each endpoint's rate is within one
 * arrival of 1/n of it at any moment, so n pods offer the same load as one.
 */

export interface RunnerSlice {
  /** This runner, 0-based. */
  index: number;
  /** How many runners share the schedule. */
  count: number;
}

/** One runner sending the whole schedule. */
export const WHOLE_SCHEDULE: RunnerSlice = { index: 0, count: 1 };

/** Throws a RangeError naming what is wrong with a slice. */
export function checkRunnerSlice(slice: RunnerSlice): void {
  if (!Number.isInteger(slice.count) || slice.count < 1) throw new RangeError(`the runner count must be a whole number of at least 1, got ${slice.count}`);
  if (!Number.isInteger(slice.index) || slice.index < 0 || slice.index >= slice.count) {
    throw new RangeError(`the runner index must be a whole number from 0 to ${slice.count - 1} (the runner count less one), got ${slice.index}`);
  }
}

/** The first arrival number at or after n that the runner sends. */
export function firstOwnedFrom(slice: RunnerSlice, n: number): number {
  const offset = (((slice.index - n) % slice.count) + slice.count) % slice.count;
  return n + offset;
}

/** How many of arrivals 0..total-1 the runner sends. */
export function ownedCount(slice: RunnerSlice, total: number): number {
  return total > slice.index ? Math.floor((total - 1 - slice.index) / slice.count) + 1 : 0;
}
