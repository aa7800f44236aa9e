import type { AnalysisResult } from '../analyze.js';
import { bucketsInWindow, parseLe } from '../histogram.js';
import { DEVICE_ROUTES } from '../queries.js';
import { samplesIn, type Series } from '../series.js';
import { gridTimes, isFailure, type Slo, type StageSummary } from '../stages.js';
import { judgedStages } from '../timeline.js';

/*
 * What a comparison needs of a run: for every judged stage, its numbers at every evaluation time of
 * its steady window (the per-interval series), so "within noise" can be computed from how much each
 * run varied, not guessed. Local mode writes it into summary.json; `loadlab report` does the same for
 * a cluster run, and the operator builds it from its own analysis. The statistics computed from all
 * of a stage's intervals are the stage summary's own (served rate, error rate, latency quantiles
 * from summed bucket rates): a resample of the intervals is a resample of the stage.
 */

export const COMPARABLE_VERSION = 1;

export interface ComparableRun {
  version: typeof COMPARABLE_VERSION;
  /** What the run is called in a comparison: the experiment and its run id. */
  label: string;
  source: AnalysisResult['settings']['source'];
  engine: AnalysisResult['settings']['engine'];
  startUnixS: number;
  stepS: number;
  rateWindowS: number;
  slo: Slo;
  outcome: AnalysisResult['breakingPoint']['status'];
  bottleneck: string;
  devicesAtBreak?: number;
  lastGood?: { name: string; devices: number };
  stages: ComparableStage[];
}

/** A judged stage; the interval arrays are column-wise, one entry per evaluation time. */
export interface ComparableStage {
  index: number;
  name: string;
  devices: number;
  offeredRps: number;
  unixS: number[];
  /** Requests per second answered without failure on the device endpoints but login. */
  ok: number[];
  /** Failed (5xx, 429, transport errors) and all responses per second, every endpoint. */
  failed: number[];
  total: number[];
  /** CPU of all API replicas together, cores; null where not measured. */
  apiCpuCores: (number | null)[];
  /** The latency the SLO is judged on, as histogram bucket rates: upper bounds (+Inf implied last)... */
  latencyLe?: number[];
  /** ...and per interval the rate in each bucket, cumulative, the +Inf bucket last. */
  latencyBuckets?: number[][];
  /** When the generator reports quantiles instead of a histogram (k6's trend): per interval, seconds. */
  latencyTrend?: { p50: (number | null)[]; p95: (number | null)[]; p99: (number | null)[] };
}

export function comparableRun(result: AnalysisResult, label: string): ComparableRun {
  const { settings, breakingPoint, summary } = result;
  const byName = new Map<string, Series[]>();
  for (const series of result.series) {
    const list = byName.get(series.name);
    if (list) list.push(series);
    else byName.set(series.name, [series]);
  }
  const get = (name: string) => byName.get(name) ?? [];
  return {
    version: COMPARABLE_VERSION,
    label,
    source: settings.source,
    engine: settings.engine,
    startUnixS: settings.startUnixS,
    stepS: settings.stepS,
    rateWindowS: settings.rateWindowS,
    slo: settings.slo,
    outcome: breakingPoint.status,
    bottleneck: summary.bottleneck,
    ...(summary.devicesAtBreak !== undefined ? { devicesAtBreak: summary.devicesAtBreak } : {}),
    ...(breakingPoint.lastGood ? { lastGood: { name: breakingPoint.lastGood.name, devices: breakingPoint.lastGood.devices } } : {}),
    stages: judgedStages(result.stages).map((stage) => comparableStage(stage, get, settings)),
  };
}

function comparableStage(stage: StageSummary, get: (name: string) => Series[], settings: AnalysisResult['settings']): ComparableStage {
  const { fromUnixS: from, toUnixS: to } = stage.window;
  const times = gridTimes(settings.startUnixS, settings.stepS, from, to);
  const at = (series: Series, t: number) => {
    const value = samplesIn(series, t, t)[0]?.[1];
    return value !== undefined && Number.isFinite(value) ? value : undefined;
  };
  // The same choice as the stage summary: the generator's counts when it reported any in the
  // window, the API's (device routes, keyed like the generator's endpoints) otherwise.
  const client = get('generator_responses').filter((series) => samplesIn(series, from, to).length > 0);
  const responses = client.length > 0
    ? client.map((series) => ({ endpoint: series.labels.endpoint ?? '', code: series.labels.code ?? series.labels.status ?? '', series }))
    : get('api_requests')
        .filter((series) => DEVICE_ROUTES[series.labels.route ?? ''] !== undefined)
        .map((series) => ({ endpoint: DEVICE_ROUTES[series.labels.route!]!, code: series.labels.status ?? '', series }));

  const ok: number[] = [];
  const failed: number[] = [];
  const total: number[] = [];
  const apiCpuCores: (number | null)[] = [];
  for (const t of times) {
    let okAt = 0;
    let failedAt = 0;
    let totalAt = 0;
    // An absent point of a rate is no increase (see rateMean), so 0.
    for (const { endpoint, code, series } of responses) {
      const value = at(series, t) ?? 0;
      totalAt += value;
      if (isFailure(code)) failedAt += value;
      else if (endpoint !== 'login') okAt += value;
    }
    ok.push(okAt);
    failed.push(failedAt);
    total.push(totalAt);
    const cpu = get('api_cpu').map((series) => at(series, t)).filter((value): value is number => value !== undefined);
    apiCpuCores.push(cpu.length > 0 ? cpu.reduce((sum, value) => sum + value, 0) : null);
  }

  const record: ComparableStage = { index: stage.index, name: stage.name, devices: stage.devices, offeredRps: stage.offeredRps, unixS: times, ok, failed, total, apiCpuCores };
  const latency = latencySeries(stage, get, settings.engine);
  if (latency.kind === 'histogram') {
    const le = [...new Set(latency.series.map((series) => parseLe(series.labels.le)))]
      .filter((bound) => !Number.isNaN(bound))
      .sort((a, b) => a - b);
    if (le.length >= 2 && le[le.length - 1] === Infinity) {
      record.latencyLe = le.slice(0, -1);
      record.latencyBuckets = times.map((t) => {
        const counts = new Map<number, number>();
        for (const bucket of bucketsInWindow(latency.series, t, t)) counts.set(bucket.le, (counts.get(bucket.le) ?? 0) + bucket.count);
        return le.map((bound) => counts.get(bound) ?? 0);
      });
    }
  } else if (latency.kind === 'trend') {
    const stat = (name: string) => times.map((t) => {
      const values = latency.series.filter((series) => series.labels.stat === name).map((series) => at(series, t)).filter((value): value is number => value !== undefined);
      return values.length > 0 ? Math.max(...values) : null;
    });
    record.latencyTrend = { p50: stat('p50'), p95: stat('p95'), p99: stat('p99') };
  }
  return record;
}

/** The latency series the stage's SLO was judged on (see stages.ts: the client's view when there is one). */
function latencySeries(stage: StageSummary, get: (name: string) => Series[], engine: AnalysisResult['settings']['engine']): { kind: 'histogram' | 'trend' | 'none'; series: Series[] } {
  if (stage.latencySource === 'client') {
    return engine === 'loadlab' ? { kind: 'histogram', series: get('generator_latency') } : { kind: 'trend', series: get('generator_latency_trend') };
  }
  if (stage.latencySource === 'server') {
    return { kind: 'histogram', series: get('api_latency').filter((series) => DEVICE_ROUTES[series.labels.route ?? ''] !== undefined) };
  }
  return { kind: 'none', series: [] };
}
