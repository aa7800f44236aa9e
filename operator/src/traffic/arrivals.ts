import { hash32, mix32 } from './hash.js';
import { fleetInPhase, type Endpoint, type PlanPhase, type TrafficPlan } from './plan.js';

/*
 * Which device sends when. Time is cut into slots of one interval, [k*I, (k+1)*I), and every
 * online device sends exactly once per slot, at a position given by its rank in [0, 2^24):
 * t = k*I + (rank + 0.5) / 2^24 * I.
 *
 * The rank is a seeded, nested ("Owen") scramble of the bit-reversed device index: the 2^24 ranks
 * form a binary tree, and each tree node swaps its two halves or not, decided by a hash of the seed
 * and the node. Two properties follow, and they are why this scheme was chosen:
 *
 * - Any fleet 0..n-1 is spread evenly over the interval: the devices below 2^m own exactly one of
 *   the 2^m equal cells each (the van der Corput property survives the scramble). So the offered
 *   rate stays smooth while a ramp adds devices, with no per-device table.
 * - The occupant of a cell can be computed from the cell (undo the swaps top-down), so a window's
 *   arrivals come out in time order by walking its cells: O(1) memory, about 24 hash steps per
 *   arrival, and at most 2x wasted candidates (cells whose occupant is not online yet).
 *
 * Jitter: the swaps of the top L tree levels are fixed per device; the levels below L are redrawn
 * every slot. A device therefore stays inside its own cell of width I/2^L and moves within it
 * from slot to slot. L is chosen so that I/2^L <= jitter*I: each request lands within +-jitter/2
 * of the interval from its device's mean position, consecutive requests of a device are
 * interval +- jitter*interval apart, and each device still sends exactly once per slot. The
 * spread used is the largest power-of-two fraction not above the asked jitter (0.1 -> 1/16).
 */

/** 2^24 = 16,777,216 ranks: room for the schema's 10,000,000 devices. */
export const RANK_BITS = 24;
const RANKS = 2 ** RANK_BITS;

export interface Arrival {
  /** Seconds from the start of the plan. */
  timeS: number;
  /** Device index, 0..fleet-1. */
  device: number;
}

/** The per-endpoint constants of the scramble. */
interface Scramble {
  /** Tree levels above this are fixed per device; levels from here down change every slot. */
  fixedLevels: number;
  fixedKey: number;
}

const ENDPOINT_SALT: Record<Endpoint, number> = { measurements: 0x6d656173, command: 0x636f6d6d };

function scrambleFor(plan: TrafficPlan, endpoint: Endpoint): Scramble {
  return { fixedLevels: fixedLevelsFor(plan.jitter), fixedKey: hash32(plan.seed, ENDPOINT_SALT[endpoint], 1) };
}

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

function slotKey(scramble: Scramble, slot: number): number {
  return mix32(scramble.fixedKey ^ mix32(slot + 0x632be5ab));
}

/** Whether the tree node (level, prefix of the unscrambled index) swaps its halves. */
function swaps(scramble: Scramble, key: number, level: number, prefix: number): number {
  const node = (1 << level) | prefix; // a distinct id for every node of the tree
  return mix32((level < scramble.fixedLevels ? scramble.fixedKey : key) ^ node) >>> 31;
}

function reverseBits(value: number, bits: number): number {
  let reversed = 0;
  for (let i = 0; i < bits; i++) {
    reversed = (reversed << 1) | ((value >>> i) & 1);
  }
  return reversed;
}

/** The rank of a device in a slot (its position is (rank + 0.5) / 2^24 of the interval). */
function rankOf(scramble: Scramble, key: number, device: number): number {
  const spread = reverseBits(device, RANK_BITS);
  let rank = 0;
  for (let level = 0; level < RANK_BITS; level++) {
    const bit = RANK_BITS - 1 - level;
    const prefix = spread >>> (bit + 1);
    rank |= (((spread >>> bit) & 1) ^ swaps(scramble, key, level, prefix)) << bit;
  }
  return rank;
}

/**
 * The device below 2^levels that owns cell `cell` of 2^levels, and its exact rank: undo the swaps
 * top-down to recover the device, then finish its rank below the cell.
 */
function occupant(scramble: Scramble, key: number, levels: number, cell: number): { device: number; rank: number } {
  let spread = 0;
  for (let level = 0; level < levels; level++) {
    const bit = (cell >>> (levels - 1 - level)) & 1;
    spread = (spread << 1) | (bit ^ swaps(scramble, key, level, spread));
  }
  const device = reverseBits(spread, levels);
  // Below the cell the device's index bits are all 0: the rank's low bits are the swaps alone.
  let rank = cell;
  for (let level = levels; level < RANK_BITS; level++) {
    rank = (rank << 1) | swaps(scramble, key, level, spread << (level - levels));
  }
  return { device, rank };
}

/** When a device sends in a slot, whether or not it is online then (for tests and diagnostics). */
export function slotTimeOf(plan: TrafficPlan, endpoint: Endpoint, device: number, slot: number): number {
  const scramble = scrambleFor(plan, endpoint);
  const interval = plan.intervalS[endpoint];
  return slot * interval + ((rankOf(scramble, slotKey(scramble, slot), device) + 0.5) / RANKS) * interval;
}

/**
 * The arrivals of one endpoint with fromS <= timeS < toS, in time order (ties cannot happen within
 * an endpoint: every rank is owned by one device). Deterministic for the plan's seed.
 */
export function* arrivalsBetween(plan: TrafficPlan, endpoint: Endpoint, fromS: number, toS: number): Generator<Arrival, void, undefined> {
  const interval = plan.intervalS[endpoint];
  const start = Math.max(0, fromS);
  const end = Math.min(toS, plan.durationS);
  if (!(end > start) || !(interval > 0)) return;
  const scramble = scrambleFor(plan, endpoint);
  const fleet = new FleetCursor(plan.phases);
  for (let slot = Math.floor(start / interval); slot * interval < end; slot++) {
    const slotStart = slot * interval;
    const from = Math.max(start, slotStart);
    const to = Math.min(end, slotStart + interval);
    const online = Math.round(fleet.maxBetween(from, to));
    if (online === 0) continue;
    const levels = Math.ceil(Math.log2(online));
    const cells = 2 ** levels;
    // One cell of margin on each side: rounding must never skip a cell that reaches into the window
    // (the time check below drops what lies outside).
    const firstCell = Math.max(0, Math.floor(((from - slotStart) / interval) * cells) - 1);
    const lastCell = Math.min(cells - 1, Math.floor(((to - slotStart) / interval) * cells) + 1);
    const key = slotKey(scramble, slot);
    for (let cell = firstCell; cell <= lastCell; cell++) {
      const { device, rank } = occupant(scramble, key, levels, cell);
      if (device >= online) continue;
      const timeS = slotStart + ((rank + 0.5) / RANKS) * interval;
      if (timeS < from || timeS >= to) continue;
      if (device >= Math.round(fleet.at(timeS))) continue;
      yield { timeS, device };
    }
  }
}

/** Fleet size lookups for times that only move forward: O(1) amortised instead of a search. */
class FleetCursor {
  private index = 0;

  constructor(private readonly phases: readonly PlanPhase[]) {}

  at(t: number): number {
    while (this.index < this.phases.length && t >= this.phases[this.index]!.endS) this.index++;
    const phase = this.phases[this.index];
    return phase && t >= phase.startS ? fleetInPhase(phase, t) : 0;
  }

  /** The largest fleet size in [from, to): an upper bound that keeps candidate cells few. */
  maxBetween(from: number, to: number): number {
    this.at(from);
    let max = 0;
    for (let i = this.index; i < this.phases.length && this.phases[i]!.startS < to; i++) {
      const phase = this.phases[i]!;
      max = Math.max(max, fleetInPhase(phase, Math.max(from, phase.startS)), fleetInPhase(phase, Math.min(to, phase.endS)));
    }
    return max;
  }
}
