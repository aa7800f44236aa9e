import { hash32, mix32 } from './hash.js';
import type { Endpoint } from './plan.js';

/*
 * The traffic model's schedule: when each request of the fleet is due and which device sends it.
 * ONE schedule for both load generators: the k6 script computes it per iteration in a k6 VU, the
 * local driver (traffic/arrivals.ts) walks it in time order; a test checks that the k6 options
 * make k6 start exactly these arrivals. It must run in k6's JavaScript runtime too, so it imports
 * nothing from Node and nothing heavy (tsconfig.k6.json type-checks it without Node's types).
 *
 * How an iteration finds its device. k6's arrival-rate executors start iteration n (0-based, counted
 * over the whole test by exec.scenario.iterationInTest, across all runners) when the integral of the
 * configured rate reaches n + 1. The scenarios' stages reproduce the plan's rate exactly (see
 * options.ts), so that integral is the plan's expected arrival count, and iteration n is the
 * (n+1)-th expected arrival of the run. The traffic model cuts time into slots of one interval in
 * which every online device sends once, in a seeded order; the iteration's position within its
 * slot picks the device at that position of the model's order. Consequences, documented:
 * - while the fleet holds, every online device is picked exactly once per slot, in the model's
 *   order (each device's period is the interval, as in the model);
 * - arrivals are evenly spaced (the offered rate is smooth), and a device sends at its position in
 *   the slot's order: with jitter j its position moves only within its own 2^-L share of the order
 *   (L: the smallest with 2^-L <= j), so consecutive requests of a device are one interval apart,
 *   within +-2^-L of an interval;
 * - during a ramp the slot holds about the mean fleet size; its first ceil(mean) devices are used;
 * - a dropped iteration (no free VU) does not advance k6's counter, so later iterations shift by the
 *   number of drops: each device still sends about once per interval, at a shifted position. k6
 *   reports drops as dropped_iterations; the analysis treats them as a generator limit. (The local
 *   driver drops an arrival without shifting the rest; both count what they drop.)
 *
 * Logins (loginPieces): each device logs in once, when the fleet first grows past it; a device that
 * leaves and comes back keeps its token (devices store it; it lasts TOKEN_TTL_SECONDS, a week by
 * default), so only a new peak brings logins.
 */

/** The fleet's course over time: the plan's phases, as plain data the script can carry. */
export interface SchedulePhase {
  startS: number;
  durationS: number;
  devicesAtStart: number;
  devicesAtEnd: number;
}

/** Phase indices [from, to) of a plan: one TestRun may run a subset (e.g. one search step). */
export interface PhaseRange {
  from: number;
  to: number;
}

/** Guards float comparisons of arrival counts (values stay far below 2^53, so 1e-6 is safe). */
const EPSILON = 1e-6;

/**
 * The integral of the fleet size over time (device-seconds): divided by an interval, the expected
 * number of requests of one endpoint since the start of the plan. Constant after the last phase.
 */
export class FleetIntegral {
  private readonly before: number[] = [];
  readonly total: number;

  constructor(private readonly phases: readonly SchedulePhase[]) {
    let sum = 0;
    for (const phase of phases) {
      this.before.push(sum);
      sum += ((phase.devicesAtStart + phase.devicesAtEnd) / 2) * phase.durationS;
    }
    this.total = sum;
  }

  /** Device-seconds from the start of the plan to t. */
  at(t: number): number {
    const index = this.phaseIndexAt(t);
    if (index < 0) return 0;
    const phase = this.phases[index]!;
    const u = Math.min(Math.max(t - phase.startS, 0), phase.durationS);
    return this.before[index]! + integrateLinear(phase, u);
  }

  /** The fleet size at t (linear inside a ramp; the last phase's end after the plan). */
  devicesAt(t: number): number {
    const index = this.phaseIndexAt(t);
    if (index < 0) return 0;
    const phase = this.phases[index]!;
    const progress = phase.durationS > 0 ? Math.min(Math.max((t - phase.startS) / phase.durationS, 0), 1) : 1;
    return phase.devicesAtStart + (phase.devicesAtEnd - phase.devicesAtStart) * progress;
  }

  /** The earliest time at which the integral reaches `value` (the end of the plan beyond its total). */
  timeOf(value: number): number {
    const last = this.phases[this.phases.length - 1];
    if (!last) return 0;
    if (value <= 0) return 0;
    if (value >= this.total) return last.startS + last.durationS;
    // The last phase whose integral starts below value.
    let low = 0;
    let high = this.phases.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.before[middle]! < value) low = middle;
      else high = middle - 1;
    }
    const phase = this.phases[low]!;
    return phase.startS + Math.min(phase.durationS, solveLinear(phase, value - this.before[low]!));
  }

  private phaseIndexAt(t: number): number {
    if (this.phases.length === 0 || t <= this.phases[0]!.startS) return this.phases.length === 0 ? -1 : 0;
    let low = 0;
    let high = this.phases.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.phases[middle]!.startS <= t) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}

/** Device-seconds within a phase from its start to u seconds in (the fleet is linear in a phase). */
function integrateLinear(phase: SchedulePhase, u: number): number {
  if (phase.durationS <= 0) return 0;
  const slope = (phase.devicesAtEnd - phase.devicesAtStart) / phase.durationS;
  return phase.devicesAtStart * u + (slope * u * u) / 2;
}

/** The u at which integrateLinear(phase, u) = value (0 <= value <= the phase's integral). */
function solveLinear(phase: SchedulePhase, value: number): number {
  const a = phase.devicesAtStart;
  const halfSlope = (phase.devicesAtEnd - a) / phase.durationS / 2;
  if (Math.abs(halfSlope) < 1e-15) return a > 0 ? value / a : phase.durationS;
  // Root of halfSlope*u^2 + a*u - value = 0, in the form that stays exact when halfSlope is small.
  const discriminant = Math.max(0, a * a + 4 * halfSlope * value);
  const denominator = a + Math.sqrt(discriminant);
  return denominator > 0 ? (2 * value) / denominator : phase.durationS;
}

// ------------------------------------------------------------------------- the model's slot order

/*
 * The order of the devices within a slot: a seeded, nested ("Owen") scramble of their bit-reversed
 * indices. The 2^24 ranks form a binary tree, and each tree node swaps its two halves or not,
 * decided by a hash of the seed and the node. Why this scheme:
 * - any fleet 0..n-1 is spread evenly over the order: the devices below 2^m own exactly one of 2^m
 *   equal shares each (the van der Corput property survives the scramble), so the order stays
 *   balanced while a ramp adds devices, with no per-device table;
 * - the device at a position is found by walking the tree from the root (deviceAtPosition), one
 *   hash per level, no memory;
 * - jitter: the swaps of the top L levels are fixed per device, the levels below L are redrawn
 *   every slot, so a device keeps its own 2^-L share of the order and moves within it.
 */

/** 2^24 = 16,777,216 ranks: room for the schema's 10,000,000 devices. */
export const RANK_BITS = 24;

/** The number of fixed tree levels L for a jitter: the smallest L with 2^-L <= jitter. */
export function fixedLevelsFor(jitter: number): number {
  if (jitter <= 0) return RANK_BITS;
  return Math.min(RANK_BITS, Math.max(0, Math.ceil(Math.log2(1 / jitter) - 1e-9)));
}

/** The fraction of an interval a request may move within, after rounding to a power of two. */
export function effectiveJitter(jitter: number): number {
  const levels = fixedLevelsFor(jitter);
  return levels === RANK_BITS ? 0 : 2 ** -levels;
}

const ENDPOINT_SALT: Record<Endpoint, number> = { measurements: 0x6d656173, command: 0x636f6d6d };
const SLOT_SALT = 0x632be5ab;

/** The per-endpoint constants of the model's scramble. */
export interface SlotOrder {
  fixedKey: number;
  fixedLevels: number;
}

export function slotOrderFor(seed: number, endpoint: Endpoint, jitter: number): SlotOrder {
  return { fixedKey: hash32(seed, ENDPOINT_SALT[endpoint], 1), fixedLevels: fixedLevelsFor(jitter) };
}

function swapBit(order: SlotOrder, slotKey: number, level: number, prefix: number): number {
  return mix32((level < order.fixedLevels ? order.fixedKey : slotKey) ^ ((1 << level) | prefix)) >>> 31;
}

/** How many devices below `online` have these low index bits (the devices under one tree node). */
function devicesWithLowBits(online: number, levels: number, low: number): number {
  return low < online ? Math.floor((online - 1 - low) / 2 ** levels) + 1 : 0;
}

/**
 * The device at position `position` (0-based, in time order) among devices 0..online-1 in slot
 * `slot`: walks the model's tree from the root, counting the online devices under each child, so
 * it costs one hash per level (at most 24) and no memory.
 */
export function deviceAtPosition(order: SlotOrder, slot: number, online: number, position: number): number {
  if (online <= 1) return 0;
  const slotKey = mix32(order.fixedKey ^ mix32(slot + SLOT_SALT));
  let rest = Math.min(Math.max(0, Math.floor(position)), online - 1);
  let count = online;
  let level = 0;
  let prefix = 0; // the top `level` bits of the bit-reversed index: the path so far
  let low = 0; // the same bits as the device index's low bits
  while (count > 1 && level < RANK_BITS) {
    // The child whose rank bit is 0 comes first in time: its index bit equals the swap bit.
    const first = swapBit(order, slotKey, level, prefix);
    const firstCount = devicesWithLowBits(online, level + 1, low | (first << level));
    let bit = first;
    if (rest < firstCount) {
      count = firstCount;
    } else {
      rest -= firstCount;
      count -= firstCount;
      bit = 1 - first;
    }
    prefix = (prefix << 1) | bit;
    low |= bit << level;
    level++;
  }
  return low;
}

// ---------------------------------------------------------------------- iterations to devices

/** What a k6 VU needs to map its iteration to a device for one endpoint. */
export interface EndpointSchedule {
  intervalS: number;
  order: SlotOrder;
}

export interface IterationTarget {
  /** Device index (0-based); its API id is deviceId(device). */
  device: number;
  /** The slot (interval number from the start of the plan) the request belongs to. */
  slot: number;
  /** When the iteration is scheduled, in seconds from the start of the plan. */
  planTimeS: number;
}

/**
 * Maps k6 iterations of a periodic endpoint to devices. offsetS is where the run starts in the
 * plan (a run may cover a subset of the phases); iteration n of the run is the plan's expected
 * arrival number integral(offsetS)/interval + n + 1.
 */
export class IterationDevices {
  private readonly integral: FleetIntegral;
  private readonly firstArrival: number;

  constructor(
    phases: readonly SchedulePhase[],
    private readonly offsetS: number,
    private readonly endpoint: EndpointSchedule,
  ) {
    this.integral = new FleetIntegral(phases);
    this.firstArrival = this.integral.at(offsetS);
  }

  forIteration(iteration: number): IterationTarget {
    const interval = this.endpoint.intervalS;
    const arrival = this.firstArrival + (iteration + 1) * interval; // in device-seconds
    const planTimeS = Math.max(this.offsetS, this.integral.timeOf(arrival));
    let slot = Math.floor(planTimeS / interval);
    let slotStart = this.integral.at(slot * interval);
    // An arrival exactly on a slot boundary closes the previous slot.
    if (arrival - slotStart <= EPSILON * interval && slot > 0) {
      slot -= 1;
      slotStart = this.integral.at(slot * interval);
    }
    const inSlot = (this.integral.at((slot + 1) * interval) - slotStart) / interval;
    const online = Math.max(1, Math.ceil(inSlot - EPSILON));
    const position = Math.ceil((arrival - slotStart) / interval - EPSILON) - 1;
    return { device: deviceAtPosition(this.endpoint.order, slot, online, position), slot, planTimeS };
  }

  /** The fleet size the plan has at planTimeS. */
  devicesAt(planTimeS: number): number {
    return this.integral.devicesAt(planTimeS);
  }
}

/** The API's id of a device: the operator registers device i as id i+1 before the run. */
export function deviceId(device: number): number {
  return device + 1;
}

// ------------------------------------------------------------------------------------ logins

/** A stretch of the run with a constant login rate: `logins` devices join over `durationS`. */
export interface LoginPiece {
  durationS: number;
  logins: number;
}

/**
 * When devices log in, for the phases of `range`: each device once, when the fleet first grows
 * past it. A ramp logs its new devices in at the ramp's (constant) growth rate, from the moment it
 * passes the largest fleet reached before; a hold that raises the fleet at once (and the fleet
 * that is there at t=0) logs its new devices in over the first `spreadS` seconds of the phase,
 * as their first requests come within one interval. The pieces cover the range without gaps.
 */
export function loginPieces(phases: readonly SchedulePhase[], range: PhaseRange, spreadS: number): LoginPiece[] {
  let peak = peakBefore(phases, range.from);
  const pieces: LoginPiece[] = [];
  const push = (durationS: number, logins: number) => {
    if (durationS <= 0) return;
    const last = pieces[pieces.length - 1];
    // Merge idle stretches: they need no stage boundary.
    if (last && last.logins === 0 && logins === 0) last.durationS += durationS;
    else pieces.push({ durationS, logins });
  };
  for (let index = range.from; index < range.to; index++) {
    const phase = phases[index]!;
    const { devicesAtStart: from, devicesAtEnd: to, durationS } = phase;
    let done = 0; // seconds of the phase already covered by pieces
    if (from > peak) {
      // A step at the start of the phase: a hold that raises the fleet, or the fleet at t=0.
      done = roundMs(Math.min(spreadS, durationS));
      push(done, from - peak);
      peak = from;
    }
    if (to > peak) {
      // A ramp that passes the peak: its new devices log in from where the fleet crosses the peak.
      // (at least 1 ms before the end, so rounding cannot leave the logins no time at all)
      const crossing = Math.min(Math.max(done, roundMs((durationS * (peak - from)) / (to - from))), Math.max(done, durationS - 0.001));
      push(crossing - done, 0);
      push(durationS - crossing, to - peak);
      peak = to;
    } else {
      push(durationS - done, 0);
    }
  }
  return pieces;
}

/** The largest fleet the plan reaches before phase `index`: devices that have logged in already. */
export function peakBefore(phases: readonly SchedulePhase[], index: number): number {
  let peak = 0;
  for (let i = 0; i < index && i < phases.length; i++) {
    peak = Math.max(peak, phases[i]!.devicesAtStart, phases[i]!.devicesAtEnd);
  }
  return peak;
}

function roundMs(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
