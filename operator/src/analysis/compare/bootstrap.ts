/*
 * A moving-block bootstrap (Künsch 1989) of the difference between two runs' statistics. The
 * per-interval values of a stage are not independent: each point is a rate over a window several
 * steps long, so neighbours share data. Resampling blocks of `blockLength` consecutive intervals
 * (at least the rate window) keeps that dependence inside the blocks; resampling single points would
 * understate the noise and flag differences that are not there.
 *
 * Seeded (mulberry32), so the same two runs always get the same interval.
 */

export interface BootstrapOptions {
  resamples: number;
  /** e.g. 0.95 for a 95 % interval. */
  confidence: number;
  seed: number;
}

/** Lower and upper percentile of the candidate − baseline differences, per statistic; undefined where either side had none. */
export type Intervals = ((readonly [number, number]) | undefined)[];

/**
 * `statistics(side, indices)` returns every statistic of one side (0 baseline, 1 candidate) over the
 * intervals at `indices` (a resample, with repeats); one resample of each side per replicate.
 */
export function bootstrapDifferences(
  sizes: readonly [number, number],
  blockLengths: readonly [number, number],
  statistics: (side: 0 | 1, indices: readonly number[]) => (number | undefined)[],
  options: BootstrapOptions,
): Intervals {
  const random = mulberry32(options.seed);
  const differences: number[][] = [];
  for (let replicate = 0; replicate < options.resamples; replicate++) {
    const base = statistics(0, resample(sizes[0], blockLengths[0], random));
    const candidate = statistics(1, resample(sizes[1], blockLengths[1], random));
    base.forEach((value, position) => {
      const other = candidate[position];
      if (value === undefined || other === undefined || !Number.isFinite(value) || !Number.isFinite(other)) return;
      (differences[position] ??= []).push(other - value);
    });
  }
  const tail = (1 - options.confidence) / 2;
  return Array.from({ length: differences.length }, (_, position) => {
    const values = differences[position];
    // A statistic missing from most replicates (e.g. no responses at all) has no interval.
    if (!values || values.length < options.resamples / 2) return undefined;
    values.sort((a, b) => a - b);
    return [percentile(values, tail), percentile(values, 1 - tail)] as const;
  });
}

/** n indices made of blocks of `length` consecutive ones, each starting anywhere it fits. */
export function resample(n: number, length: number, random: () => number): number[] {
  const block = Math.max(1, Math.min(length, n));
  const indices: number[] = [];
  while (indices.length < n) {
    const start = Math.floor(random() * (n - block + 1));
    for (let k = 0; k < block && indices.length < n; k++) indices.push(start + k);
  }
  return indices;
}

/** Linear interpolation between closest ranks, of sorted values. */
function percentile(sorted: readonly number[], q: number): number {
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a: a seed from a name, so each stage gets its own stream, the same every time. */
export function seedOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
