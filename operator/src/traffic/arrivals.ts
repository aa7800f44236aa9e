import { loginSpreadS, resolvePhaseRange, schedulePhases } from './phases.js';
import type { Endpoint, TrafficPlan } from './plan.js';
import { checkRunnerSlice, firstOwnedFrom, ownedCount, WHOLE_SCHEDULE, type RunnerSlice } from './runner-slice.js';
import { IterationDevices, loginPieces, peakBefore, slotOrderFor, type PhaseRange } from './schedule.js';

/*
 * The schedule of traffic/schedule.ts in time order, for a generator that paces requests itself
 * (the local driver): exactly the arrivals k6 starts for the same plan and phase range, the same
 * devices at the same times. Generators, so a run of any length costs O(1) memory: nothing is kept
 * per device or per request.
 */

export interface Arrival {
  /** Seconds from the start of the plan. */
  timeS: number;
  /** Device index, 0..fleet-1 (its API id is deviceId(device)). */
  device: number;
}

/** Guards float comparisons of arrival counts (values stay far below 2^53). */
const EPSILON = 1e-9;

/**
 * One periodic endpoint's arrivals in a phase range: the n-th (0-based) when the fleet integral
 * since the range's start reaches (n + 1) intervals, which is when k6's ramping-arrival-rate
 * executor starts iteration n of the scenario the k6 options build for the range. With fromS, only
 * those at or after it (the same arrivals, not a new sequence); with a slice, only the runner's
 * share (runner-slice.ts).
 */
export function* periodicArrivals(plan: TrafficPlan, endpoint: Endpoint, range?: PhaseRange, fromS?: number, slice: RunnerSlice = WHOLE_SCHEDULE): Generator<Arrival, void, undefined> {
  checkRunnerSlice(slice);
  const { from, to } = resolvePhaseRange(plan, range);
  const offsetS = plan.phases[from]!.startS;
  const endS = plan.phases[to - 1]!.endS;
  const intervalS = plan.intervalS[endpoint];
  const devices = new IterationDevices(schedulePhases(plan), offsetS, { intervalS, order: slotOrderFor(plan.seed, endpoint, plan.jitter) });
  const count = Math.floor(expectedBetween(plan, endpoint, offsetS, endS) + EPSILON);
  // Starting later than the range's start: skip what comes before fromS without computing it.
  const skipped = fromS === undefined || fromS <= offsetS ? 0 : Math.max(0, Math.floor(expectedBetween(plan, endpoint, offsetS, fromS) - 1));
  for (let n = firstOwnedFrom(slice, skipped); n < count; n += slice.count) {
    const { device, planTimeS } = devices.forIteration(n);
    if (fromS !== undefined && planTimeS < fromS) continue;
    yield { timeS: planTimeS, device };
  }
}

/**
 * The logins in a phase range: each device once, when the fleet first grows past it (the pieces of
 * loginPieces, each at a constant rate; the k-th of a piece's L logins at its start + (k + 1)/L of
 * its duration, as k6 starts them), devices numbered on from the peak before the range. Login n of
 * the range logs device (peak before the range) + n in; a slice keeps the runner's share of them.
 */
export function* loginArrivals(plan: TrafficPlan, range?: PhaseRange, slice: RunnerSlice = WHOLE_SCHEDULE): Generator<Arrival, void, undefined> {
  checkRunnerSlice(slice);
  const resolved = resolvePhaseRange(plan, range);
  const phases = schedulePhases(plan);
  const firstDevice = peakBefore(phases, resolved.from);
  let device = firstDevice;
  let startS = plan.phases[resolved.from]!.startS;
  for (const piece of loginPieces(phases, resolved, loginSpreadS(plan))) {
    const before = device - firstDevice;
    for (let k = firstOwnedFrom(slice, before) - before; k < piece.logins; k += slice.count) {
      yield { timeS: startS + ((k + 1) / piece.logins) * piece.durationS, device: device + k };
    }
    device += piece.logins;
    startS += piece.durationS;
  }
}

/** Requests of a periodic endpoint the plan offers between two plan times (its fleet integral / interval). */
function expectedBetween(plan: TrafficPlan, endpoint: Endpoint, fromS: number, toS: number): number {
  let deviceSeconds = 0;
  for (const phase of plan.phases) {
    const start = Math.max(fromS, phase.startS);
    const end = Math.min(toS, phase.endS);
    if (end <= start || phase.durationS <= 0) continue;
    const slope = (phase.devicesAtEnd - phase.devicesAtStart) / phase.durationS;
    const at = (t: number) => phase.devicesAtStart + slope * (t - phase.startS);
    deviceSeconds += ((at(start) + at(end)) / 2) * (end - start);
  }
  return deviceSeconds / plan.intervalS[endpoint];
}

/** How many arrivals of each kind a phase range has (what a run of it offers), or a runner's slice of them. */
export function arrivalCounts(plan: TrafficPlan, range?: PhaseRange, slice: RunnerSlice = WHOLE_SCHEDULE): Record<Endpoint | 'login', number> {
  const { from, to } = resolvePhaseRange(plan, range);
  const fromS = plan.phases[from]!.startS;
  const toS = plan.phases[to - 1]!.endS;
  let logins = 0;
  for (const piece of loginPieces(schedulePhases(plan), { from, to }, loginSpreadS(plan))) logins += piece.logins;
  return {
    measurements: ownedCount(slice, Math.floor(expectedBetween(plan, 'measurements', fromS, toS) + EPSILON)),
    command: ownedCount(slice, Math.floor(expectedBetween(plan, 'command', fromS, toS) + EPSILON)),
    login: ownedCount(slice, logins),
  };
}
