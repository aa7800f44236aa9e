import type { Arrival } from '../traffic/arrivals.js';
import type { TrafficPlan } from '../traffic/plan.js';

/*
 * When devices log in: once each time a device joins the fleet (POST /v1/devices/login), at the
 * fleet's growth rate. The traffic model counts devices 0..round(fleet)-1 as online, so during a
 * ramp device i joins when the fleet reaches i + 0.5. A step change (a hold to a larger fleet, or
 * the first stage) would put every new device at the same instant; real fleets do not boot in
 * lockstep, so those logins are spread evenly over `spreadS` (by default the shorter of the two
 * request intervals: the time in which the new devices send their first requests), or over the
 * phase if that is shorter. A device that leaves (the fleet shrinks) and comes back logs in again.
 */

/** The default spread of a step change's logins: one (the shorter) request interval. */
export function defaultLoginSpreadS(plan: TrafficPlan): number {
  return Math.min(plan.intervalS.measurements, plan.intervalS.command);
}

/** Logins with fromS <= timeS < toS, in time order, from O(1) state per phase. */
export function* loginsBetween(plan: TrafficPlan, fromS: number, toS: number, spreadS = defaultLoginSpreadS(plan)): Generator<Arrival, void, undefined> {
  for (const phase of plan.phases) {
    if (phase.endS <= fromS) continue;
    if (phase.startS >= toS) return;
    const before = phase.index === 0 ? 0 : plan.phases[phase.index - 1]!.devicesAtEnd;
    // A step change at the start of the phase: devices before..devicesAtStart-1 join, spread out.
    if (phase.devicesAtStart > before) {
      const joining = phase.devicesAtStart - before;
      const spread = Math.min(spreadS, phase.durationS);
      yield* evenly(phase.startS, spread, joining, before, fromS, toS);
    }
    // A ramp up: device i joins when the fleet reaches i + 0.5.
    if (phase.kind === 'ramp' && phase.devicesAtEnd > phase.devicesAtStart && phase.durationS > 0) {
      const growth = phase.devicesAtEnd - phase.devicesAtStart;
      const timeOf = (device: number) => phase.startS + ((device + 0.5 - phase.devicesAtStart) / growth) * phase.durationS;
      const first = Math.max(phase.devicesAtStart, Math.floor(phase.devicesAtStart + ((fromS - phase.startS) / phase.durationS) * growth - 0.5) - 1);
      for (let device = first; device < phase.devicesAtEnd; device++) {
        const timeS = timeOf(device);
        if (timeS >= toS || timeS >= phase.endS) break;
        if (timeS >= fromS) yield { timeS, device };
      }
    }
  }
}

/** `count` devices firstDevice.. at the centres of `count` equal cells of [startS, startS + spreadS). */
function* evenly(startS: number, spreadS: number, count: number, firstDevice: number, fromS: number, toS: number): Generator<Arrival, void, undefined> {
  const timeOf = (k: number) => startS + ((k + 0.5) / count) * spreadS;
  const first = spreadS > 0 ? Math.max(0, Math.floor(((fromS - startS) / spreadS) * count - 0.5) - 1) : 0;
  for (let k = first; k < count; k++) {
    const timeS = timeOf(k);
    if (timeS >= toS) return;
    if (timeS >= fromS) yield { timeS, device: firstDevice + k };
  }
}
