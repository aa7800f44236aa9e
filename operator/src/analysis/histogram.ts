import { samplesIn, type Series } from './series.js';

/*
 * histogram_quantile, computed here instead of in Prometheus: one range query returns the bucket
 * rates of the whole run, and every stage's quantiles come from summing those rates over the
 * stage's window. Asking Prometheus instead would take one query per stage and quantile.
 */

export interface Bucket {
  /** Upper bound (le); the last bucket is +Inf. */
  le: number;
  /** Cumulative count (or rate: only proportions matter). */
  count: number;
}

/**
 * The q-quantile (0..1) from cumulative buckets, by Prometheus' algorithm (promql/quantile.go):
 * linear interpolation inside the bucket holding the rank, the first bucket starting at 0, and
 * the highest finite bound when the rank falls in the +Inf bucket. Undefined when there are no
 * observations (a missing value, not 0).
 */
export function quantileFromBuckets(q: number, buckets: readonly Bucket[]): number | undefined {
  if (Number.isNaN(q)) return undefined;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = coalesce(buckets);
  if (sorted.length < 2 || sorted[sorted.length - 1]!.le !== Infinity) return undefined;
  // Counts of a scraped histogram can be read across a reset or while being updated; Prometheus
  // forces them monotonic rather than fail, and so do we.
  let highest = 0;
  for (const bucket of sorted) {
    highest = Math.max(highest, bucket.count);
    bucket.count = highest;
  }
  const observations = sorted[sorted.length - 1]!.count;
  if (!(observations > 0)) return undefined;
  let rank = q * observations;
  const index = sorted.findIndex((bucket) => bucket.count >= rank);
  if (index === sorted.length - 1) return sorted[sorted.length - 2]!.le;
  const bucket = sorted[index]!;
  if (index === 0 && bucket.le <= 0) return bucket.le;
  let start = 0;
  let count = bucket.count;
  if (index > 0) {
    const below = sorted[index - 1]!;
    start = below.le;
    count -= below.count;
    rank -= below.count;
  }
  return count === 0 ? start : start + (bucket.le - start) * (rank / count);
}

function coalesce(buckets: readonly Bucket[]): Bucket[] {
  const byBound = new Map<number, number>();
  for (const { le, count } of buckets) {
    if (Number.isNaN(le) || Number.isNaN(count)) continue;
    byBound.set(le, (byBound.get(le) ?? 0) + count);
  }
  return [...byBound.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** The `le` label as a number ("+Inf" included). */
export function parseLe(text: string | undefined): number {
  if (text === undefined) return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  return Number(text);
}

/**
 * Bucket rates (series labelled `le`) summed over the points in [from, to]: proportional to the
 * observations in the window, which is all a quantile needs. Series with other labels (route,
 * endpoint) are added together, so filter them first for one endpoint.
 */
export function bucketsInWindow(seriesList: readonly Series[], from: number, to: number): Bucket[] {
  const buckets: Bucket[] = [];
  for (const series of seriesList) {
    const le = parseLe(series.labels.le);
    if (Number.isNaN(le)) continue;
    let count = 0;
    for (const [, value] of samplesIn(series, from, to)) if (Number.isFinite(value)) count += value;
    buckets.push({ le, count });
  }
  return buckets;
}

export function quantilesInWindow(seriesList: readonly Series[], from: number, to: number, qs: readonly number[]): (number | undefined)[] {
  const buckets = bucketsInWindow(seriesList, from, to);
  return qs.map((q) => quantileFromBuckets(q, buckets));
}
