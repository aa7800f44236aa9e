import { quantilesInWindow } from './histogram.js';
import type { LoadEngine } from '../schema/spec.js';
import { DEVICE_ROUTES, engineOf, replicaLabel, type CatalogQuery, type Source } from './queries.js';
import { filterSeries, groupByLabel, rateMean, windowStats, type Series } from './series.js';
import { meanFleet, perDeviceRps, steadyWindow, type SteadyWindow, type TimelineStage } from './timeline.js';
import type { Thresholds } from '../schema/thresholds.js';

/*
 * One summary per stage, cut out of whole-run range results. Everything a later step judges is
 * here: throughput, latency, errors and the `measures` map the USE table reads. A value that could
 * not be computed (its metric was absent) is left out, never set to 0.
 */

/** Range results by catalog query name; a query whose result was missing is absent. */
export type QueryResults = ReadonlyMap<string, readonly Series[]>;

export interface Slo {
  /** 0..100, e.g. 95. */
  percentile: number;
  latencyThresholdS: number;
  /** 0..1 */
  maxErrorRate: number;
}

export interface Quantiles {
  p50?: number;
  p95?: number;
  p99?: number;
  /** At the SLO's percentile. */
  slo?: number;
}

export type LatencySource = 'client' | 'server' | 'none';

export interface EndpointSummary {
  achievedRps?: number;
  errorRate?: number;
  /** Client-side when the generator reports it, server-side otherwise. */
  p95S?: number;
}

export interface StageSummary {
  index: number;
  name: string;
  kind: 'ramp' | 'hold';
  window: SteadyWindow & { points: number };
  /** Mean fleet over the window. */
  devices: number;
  replicas?: number;
  /** What the schedule offered over the window (from the timeline). */
  offeredRps: number;
  /** What the generator says it was asked to offer (its own counter), when it reports it. */
  generatorOfferedRps?: number;
  sentRps?: number;
  /** Answered without failure (not 5xx, 429 or a transport error), device endpoints but login. */
  achievedRps?: number;
  /** What the API served on the device routes, any status. */
  serverRps?: number;
  /** Failures / responses on the device endpoints. */
  errorRate?: number;
  /** The latency the SLO is judged on: the client's view when there is one (see latencySource). */
  latency: Quantiles;
  latencySource: LatencySource;
  serverLatency: Quantiles;
  clientLatency: Quantiles;
  endpoints: Record<string, EndpointSummary>;
  /** `<query>.<statistic>` and derived ratios; see measures.ts for what the verdict reads. */
  measures: Record<string, number>;
  /**
   * For per-replica queries read as their maximum (API CPU, event loop, pool, GC, ...), with
   * several replicas: the replica (instance locally, pod in a cluster) that gave it, by query name.
   */
  hottest: Record<string, string>;
}

export interface StageOptions {
  catalog: readonly CatalogQuery[];
  source: Source;
  /** Default: engineOf(source). */
  engine?: LoadEngine;
  slo: Slo;
  thresholds: Thresholds;
  stepS: number;
  rateWindowS: number;
  /** The range queries' first evaluation time: points lie on queryStartUnixS + k·stepS. */
  queryStartUnixS: number;
}

const QUANTILES = [0.5, 0.95, 0.99] as const;
const LOGIN = 'login';

export function summariseStages(timeline: readonly TimelineStage[], results: QueryResults, options: StageOptions): StageSummary[] {
  const perDevice = perDeviceRps(timeline);
  return timeline.map((stage) => summariseStage(stage, results, options, perDevice));
}

function summariseStage(stage: TimelineStage, results: QueryResults, options: StageOptions, perDevice: number | undefined): StageSummary {
  const window = steadyWindow(stage, { ...options.thresholds, rateWindowS: options.rateWindowS, stepS: options.stepS });
  const { fromUnixS: from, toUnixS: to } = window;
  const times = gridTimes(options.queryStartUnixS, options.stepS, from, to);
  const devices = meanFleet(stage, times, options.rateWindowS);
  const offeredRps = stage.kind === 'hold' || perDevice === undefined ? stage.offeredRps : devices * perDevice;
  const get = (name: string) => results.get(name) ?? [];
  const has = (name: string) => (results.get(name)?.length ?? 0) > 0;
  const sloQ = options.slo.percentile / 100;

  const points = times.length;
  const rate = (name: string) => rateMean(get(name), from, to, points);
  const measures = genericMeasures(options.catalog, results, from, to, points);
  const hottest = hottestReplicas(options.catalog, results, from, to, replicaLabel(options.source));
  const put = (key: string, value: number | undefined) => {
    if (value !== undefined && Number.isFinite(value)) measures[key] = value;
  };

  // --- what the clients saw (the generator), falling back to what the API saw ---
  const client = nonEmpty(has('generator_responses') ? tallyResponses(get('generator_responses'), from, to, points) : undefined);
  const server = nonEmpty(has('api_requests') ? tallyServer(get('api_requests'), from, to, points) : undefined);
  const tally = client ?? server;
  const achievedRps = tally ? sumWhere(tally, (endpoint) => endpoint !== LOGIN, 'ok') : undefined;
  const responses = tally ? sumWhere(tally, () => true, 'total') : undefined;
  const errorRate = tally && responses !== undefined && responses > 0 ? sumWhere(tally, () => true, 'failed') / responses : undefined;
  const serverRps = server ? sumWhere(server, () => true, 'total') : undefined;
  if (client && responses !== undefined && responses > 0) put('generator_transport_error_fraction', sumWhere(client, () => true, 'transport') / responses);

  // --- the generator's own health ---
  let generatorOfferedRps: number | undefined;
  let sentRps: number | undefined;
  // A labelled counter has no series until its first increment: while the generator reports its
  // other counters, an absent "dropped" or "late" means none yet, not "unknown".
  const countedOrZero = (name: string, reporting: boolean) => rate(name) ?? (reporting ? 0 : undefined);
  const driver = engineOf(options) === 'loadlab';
  if (driver) {
    generatorOfferedRps = rate('generator_offered');
    sentRps = rate('generator_sent');
    const dropped = countedOrZero('generator_dropped', generatorOfferedRps !== undefined);
    const offeredForDrops = generatorOfferedRps ?? offeredRps;
    if (dropped !== undefined && offeredForDrops > 0) put('generator_dropped_fraction', dropped / offeredForDrops);
    const late = countedOrZero('generator_late', sentRps !== undefined);
    if (late !== undefined && sentRps !== undefined && sentRps > 0) put('generator_late_fraction', late / sentRps);
  } else {
    const iterations = rate('generator_iterations');
    const dropped = countedOrZero('generator_dropped', iterations !== undefined);
    if (iterations !== undefined || dropped !== undefined) {
      // k6's arrival-rate executors start every scheduled iteration or count it as dropped.
      generatorOfferedRps = (iterations ?? 0) + (dropped ?? 0);
      if (dropped !== undefined && generatorOfferedRps > 0) put('generator_dropped_fraction', dropped / generatorOfferedRps);
    }
  }

  for (const [key, value] of Object.entries(hostCpuShares(get('host_cpu_by_role'), measures, from, to))) put(key, value);
  // The CPU the offered load needs of the hottest replica: what it used, scaled up by the load it
  // did not serve. At or over a core, the API cannot keep up even with a core of its own; under
  // it, an API that fell behind was held back by something else (a shared CPU, the pool, ...).
  const apiCpu = measures['api_cpu.mean'];
  const asked = generatorOfferedRps ?? offeredRps;
  if (apiCpu !== undefined && achievedRps !== undefined && achievedRps > 0) put('api_cpu_demand', apiCpu * Math.max(1, asked / achievedRps));

  // --- latency: the client's view (includes queueing before the API's timer starts), else the API's ---
  const deviceRoute = (labels: Readonly<Record<string, string>>) => labels.route !== undefined && DEVICE_ROUTES[labels.route] !== undefined;
  const serverLatency = quantiles(filterSeries(get('api_latency'), deviceRoute), from, to, sloQ);
  const clientLatency = driver
    ? quantiles(get('generator_latency'), from, to, sloQ)
    : trendQuantiles(get('generator_latency_trend'), from, to, options.slo.percentile);
  const clientHasSlo = clientLatency.slo !== undefined;
  const latencySource: LatencySource = clientHasSlo ? 'client' : serverLatency.slo !== undefined ? 'server' : 'none';
  const latency = clientHasSlo ? clientLatency : serverLatency;

  for (const [key, value] of Object.entries({
    offered_rps: offeredRps,
    generator_offered_rps: generatorOfferedRps,
    sent_rps: sentRps,
    achieved_rps: achievedRps,
    server_rps: serverRps,
    error_rate: errorRate,
    'latency.p50': latency.p50,
    'latency.p95': latency.p95,
    'latency.p99': latency.p99,
    'latency.slo': latency.slo,
  })) put(key, value);

  return {
    index: stage.index,
    name: stage.name,
    kind: stage.kind,
    window: { ...window, points: times.length },
    devices,
    ...(stage.replicas !== undefined ? { replicas: stage.replicas } : {}),
    offeredRps,
    ...defined({ generatorOfferedRps, sentRps, achievedRps, serverRps, errorRate }),
    latency,
    latencySource,
    serverLatency,
    clientLatency,
    endpoints: endpointSummaries(tally, results, options, from, to),
    measures,
    hottest,
  };
}

/**
 * Whose the busy CPU was: `host_cpu_share.<role>` in cores for every role measured, `.other` for the
 * rest of the machine or node (busy cores minus the roles: other processes, the hypervisor's steal),
 * and `host_cpu_others_fraction`, the share of the busy CPU that did not go to the API.
 */
function hostCpuShares(byRole: readonly Series[], measures: Readonly<Record<string, number>>, from: number, to: number): Record<string, number> {
  const shares: Record<string, number> = {};
  for (const [role, series] of groupByLabel(byRole, 'role')) {
    const mean = windowStats(series, from, to, 'sum')?.mean;
    if (mean !== undefined) shares[`host_cpu_share.${role}`] = mean;
  }
  const busy = measures['host_cpu_busy.mean'];
  const cores = measures['host_cpu_cores.mean'];
  if (busy === undefined || cores === undefined) return shares;
  const busyCores = busy * cores;
  const accounted = Object.values(shares).reduce((sum, value) => sum + value, 0);
  shares['host_cpu_share.other'] = Math.max(0, busyCores - accounted);
  const api = shares['host_cpu_share.api'];
  if (api !== undefined && busyCores > 0) shares.host_cpu_others_fraction = Math.min(1, Math.max(0, (busyCores - api) / busyCores));
  return shares;
}

/** Which replica's series is highest over the window, for every per-replica "max" query with several. */
function hottestReplicas(catalog: readonly CatalogQuery[], results: QueryResults, from: number, to: number, label: string): Record<string, string> {
  const hottest: Record<string, string> = {};
  for (const query of catalog) {
    const series = results.get(query.name);
    if (query.combine !== 'max' || query.histogram || query.statistics || !series || series.length < 2) continue;
    let best: { replica: string; mean: number } | undefined;
    for (const one of series) {
      const replica = one.labels[label];
      const mean = windowStats([one], from, to, 'max')?.mean;
      if (replica === undefined || mean === undefined) continue;
      if (!best || mean > best.mean) best = { replica, mean };
    }
    if (best) hottest[query.name] = best.replica;
  }
  return hottest;
}

/** mean/max/active of every plain query and p50/p95/p99 of every histogram, over the window. */
function genericMeasures(catalog: readonly CatalogQuery[], results: QueryResults, from: number, to: number, points: number): Record<string, number> {
  const measures: Record<string, number> = {};
  for (const query of catalog) {
    const series = results.get(query.name);
    if (!series || series.length === 0 || query.statistics) continue;
    if (query.histogram) {
      quantilesInWindow(series, from, to, QUANTILES).forEach((value, position) => {
        if (value !== undefined && Number.isFinite(value)) measures[`${query.name}.p${Math.round(QUANTILES[position]! * 100)}`] = value;
      });
      continue;
    }
    const stats = windowStats(series, from, to, query.combine);
    if (!stats) continue;
    // Rates of counters: a missing point is "no increase" (see rateMean); gauges: a gap.
    measures[`${query.name}.mean`] = query.unit === 'rps' && query.combine === 'sum' ? rateMean(series, from, to, points) ?? stats.mean : stats.mean;
    measures[`${query.name}.max`] = stats.max;
    measures[`${query.name}.active`] = stats.active;
  }
  return measures;
}

interface Tally {
  ok: number;
  failed: number;
  transport: number;
  total: number;
}

/** Failures are what the SLO counts: 5xx, 429 (shed) and transport errors; a 4xx is the client's fault. */
export function isFailure(code: string): boolean {
  if (code === 'error' || code === '0' || code === '') return true;
  const status = Number(code);
  return !Number.isFinite(status) || status >= 500 || status === 429;
}

function tallyResponses(seriesList: readonly Series[], from: number, to: number, points: number): Map<string, Tally> {
  const tallies = new Map<string, Tally>();
  for (const [endpoint, group] of groupByLabel(seriesList, 'endpoint')) {
    const tally: Tally = { ok: 0, failed: 0, transport: 0, total: 0 };
    let measured = false;
    for (const series of group) {
      const rate = rateMean([series], from, to, points);
      if (rate === undefined) continue;
      measured = true;
      const code = series.labels.code ?? series.labels.status ?? '';
      tally.total += rate;
      if (isFailure(code)) tally.failed += rate;
      else tally.ok += rate;
      if (code === 'error' || code === '0') tally.transport += rate;
    }
    // Series without a rate in the window (too few samples there) say nothing: not "0 served".
    if (measured) tallies.set(endpoint, tally);
  }
  return tallies;
}

/** The API's counts on the device routes, keyed by the generator's endpoint names. */
function tallyServer(seriesList: readonly Series[], from: number, to: number, points: number): Map<string, Tally> {
  const byEndpoint = seriesList
    .filter((series) => series.labels.route !== undefined && DEVICE_ROUTES[series.labels.route] !== undefined)
    .map((series) => ({ labels: { endpoint: DEVICE_ROUTES[series.labels.route!]!, code: series.labels.status ?? '' }, samples: series.samples }));
  return tallyResponses(byEndpoint, from, to, points);
}

/** A tally that measured something, else undefined. */
function nonEmpty(tallies: Map<string, Tally> | undefined): Map<string, Tally> | undefined {
  return tallies && tallies.size > 0 ? tallies : undefined;
}

function sumWhere(tallies: ReadonlyMap<string, Tally>, include: (endpoint: string) => boolean, field: keyof Tally): number {
  let sum = 0;
  for (const [endpoint, tally] of tallies) if (include(endpoint)) sum += tally[field];
  return sum;
}

function quantiles(seriesList: readonly Series[], from: number, to: number, sloQ: number): Quantiles {
  if (seriesList.length === 0) return {};
  const [p50, p95, p99, slo] = quantilesInWindow(seriesList, from, to, [...QUANTILES, sloQ]);
  return defined({ p50, p95, p99, slo });
}

/**
 * The client's quantiles from k6's native histogram (one series per quantile, labelled stat="p95"
 * etc.); they serve as the client's view of the SLO only when they carry the SLO's percentile,
 * otherwise the server's histogram decides.
 */
function trendQuantiles(seriesList: readonly Series[], from: number, to: number, percentile: number): Quantiles {
  if (seriesList.length === 0) return {};
  const stat = (...names: string[]) => {
    const matching = seriesList.filter((series) => names.includes(series.labels.stat ?? ''));
    return matching.length > 0 ? windowStats(matching, from, to, 'max')?.mean : undefined;
  };
  const sloName = `p${String(percentile).replace('.', '')}`;
  return defined({ p50: stat('p50', 'med'), p95: stat('p95'), p99: stat('p99'), slo: stat(sloName) });
}

function endpointSummaries(
  tally: ReadonlyMap<string, Tally> | undefined,
  results: QueryResults,
  options: StageOptions,
  from: number,
  to: number,
): Record<string, EndpointSummary> {
  const summaries: Record<string, EndpointSummary> = {};
  const clientLatency = groupByLabel(results.get('generator_latency') ?? [], 'endpoint');
  const serverLatency = groupByLabel(
    (results.get('api_latency') ?? []).filter((series) => DEVICE_ROUTES[series.labels.route ?? ''] !== undefined),
    'route',
  );
  const trend = groupByLabel((results.get('generator_latency_trend') ?? []).filter((series) => series.labels.stat === 'p95'), 'endpoint');
  const endpoints = new Set<string>([...(tally?.keys() ?? []), ...Object.values(DEVICE_ROUTES)]);
  for (const endpoint of endpoints) {
    const route = Object.keys(DEVICE_ROUTES).find((candidate) => DEVICE_ROUTES[candidate] === endpoint);
    const counts = tally?.get(endpoint);
    const p95S =
      (engineOf(options) === 'loadlab' ? quantilesInWindow(clientLatency.get(endpoint) ?? [], from, to, [0.95])[0] : windowStats(trend.get(endpoint) ?? [], from, to, 'max')?.mean) ??
      quantilesInWindow(route ? serverLatency.get(route) ?? [] : [], from, to, [0.95])[0];
    const summary: EndpointSummary = defined({
      achievedRps: counts?.ok,
      errorRate: counts && counts.total > 0 ? counts.failed / counts.total : undefined,
      p95S,
    });
    if (Object.keys(summary).length > 0) summaries[endpoint] = summary;
  }
  return summaries;
}

/** Evaluation times of the range queries that fall in [from, to]. */
export function gridTimes(queryStartUnixS: number, stepS: number, from: number, to: number): number[] {
  const times: number[] = [];
  const first = Math.ceil((from - queryStartUnixS) / stepS - 1e-9);
  for (let k = Math.max(0, first); queryStartUnixS + k * stepS <= to + 1e-6; k++) times.push(queryStartUnixS + k * stepS);
  return times;
}

/** The object without its undefined (or non-finite) fields, so "missing" stays absent. */
export function defined<T extends Record<string, number | undefined>>(values: T): { [K in keyof T]?: number } {
  const out: { [K in keyof T]?: number } = {};
  for (const [key, value] of Object.entries(values) as [keyof T, number | undefined][]) {
    if (value !== undefined && Number.isFinite(value)) out[key] = value;
  }
  return out;
}
