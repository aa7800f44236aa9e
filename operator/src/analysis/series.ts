/*
 * Series as Prometheus returns them, and the few operations the analysis needs on them: pick the
 * points of a window, combine the series of one signal at each timestamp, and reduce a window to
 * its statistics. NaN points (a 0/0 ratio in PromQL) are gaps, never values.
 */

/** [unix seconds, value] */
export type Sample = [number, number];

export interface Series {
  labels: Readonly<Record<string, string>>;
  /** In time order, as Prometheus returns them (windows are found by binary search). */
  samples: Sample[];
}

/** How the several series of one signal become one value per timestamp. */
export type Combine = 'sum' | 'max';

export interface WindowStats {
  mean: number;
  max: number;
  /** Fraction of the window's points above zero: "sustained" means most of them. */
  active: number;
  points: number;
}

/** The samples of a series whose time lies in [from, to] (both included). */
export function samplesIn(series: Series, from: number, to: number): Sample[] {
  // Timestamps are start + k·step in floating point: allow for the last bit of rounding.
  const slack = 1e-6;
  const { samples } = series;
  // Binary search for the first sample at or after `from`: every stage reads every series, so a
  // linear scan would make the analysis quadratic in the run's length.
  let low = 0;
  let high = samples.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (samples[middle]![0] < from - slack) low = middle + 1;
    else high = middle;
  }
  const picked: Sample[] = [];
  for (let i = low; i < samples.length && samples[i]![0] <= to + slack; i++) {
    if (!Number.isNaN(samples[i]![1])) picked.push(samples[i]!);
  }
  return picked;
}

/** One value per timestamp in [from, to]: the sum or the max over the series present at it. */
export function combineIn(seriesList: readonly Series[], from: number, to: number, how: Combine): Sample[] {
  const byTime = new Map<number, number>();
  for (const series of seriesList) {
    for (const [time, value] of samplesIn(series, from, to)) {
      const previous = byTime.get(time);
      if (previous === undefined) byTime.set(time, value);
      else byTime.set(time, how === 'sum' ? previous + value : Math.max(previous, value));
    }
  }
  return [...byTime.entries()].sort(([a], [b]) => a - b);
}

export function statsOf(values: readonly number[]): WindowStats | undefined {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return undefined;
  let sum = 0;
  let max = -Infinity;
  let active = 0;
  for (const value of finite) {
    sum += value;
    if (value > max) max = value;
    if (value > 0) active++;
  }
  return { mean: sum / finite.length, max, active: active / finite.length, points: finite.length };
}

/**
 * Statistics of a signal over a window. Per-replica signals combine with max (the hottest
 * replica saturates first); totals combine with sum.
 */
export function windowStats(seriesList: readonly Series[], from: number, to: number, how: Combine): WindowStats | undefined {
  return statsOf(combineIn(seriesList, from, to, how).map(([, value]) => value));
}

export function filterSeries(seriesList: readonly Series[], predicate: (labels: Readonly<Record<string, string>>) => boolean): Series[] {
  return seriesList.filter((series) => predicate(series.labels));
}

/** Series grouped by the value of one label ("" when the label is absent). */
export function groupByLabel(seriesList: readonly Series[], label: string): Map<string, Series[]> {
  const groups = new Map<string, Series[]>();
  for (const series of seriesList) {
    const key = series.labels[label] ?? '';
    const group = groups.get(key);
    if (group) group.push(series);
    else groups.set(key, [series]);
  }
  return groups;
}

/**
 * Mean of a rate signal over `points` evaluation times: the sum of every series' samples divided
 * by the number of points. A counter's series appears only once it has been incremented (a
 * status code seen halfway through a stage), so an absent point of a rate is 0, not a gap.
 */
export function rateMean(seriesList: readonly Series[], from: number, to: number, points: number): number | undefined {
  if (points <= 0 || seriesList.length === 0) return undefined;
  let sum = 0;
  let seen = false;
  for (const series of seriesList) {
    for (const [, value] of samplesIn(series, from, to)) {
      if (!Number.isFinite(value)) continue;
      sum += value;
      seen = true;
    }
  }
  return seen ? sum / points : undefined;
}
