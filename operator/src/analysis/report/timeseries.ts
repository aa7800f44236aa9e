import type { AnalysisResult, QueriedSeries } from '../analyze.js';
import { formatMs, formatNumber } from '../format.js';
import { parseLe, quantileFromBuckets } from '../histogram.js';
import { DEVICE_ROUTES } from '../queries.js';
import { combineIn, type Sample, type Series } from '../series.js';
import { isFailure } from '../stages.js';
import { judgedStages } from '../timeline.js';
import { lineChart, PALETTE, type ChartBand, type ChartMarker, type ChartSeries } from './svg.js';

/*
 * The run over time, as performance engineers read it first: offered vs served, latency
 * percentiles (client and server), errors, CPU and the saturation signals, per endpoint, every
 * value a point of the range queries the analysis made (analysis.series, at its step), with the
 * judged windows shaded and the break marked; and the latency distribution at the break.
 */

export interface TimeChart {
  id: string;
  title: string;
  yLabel: string;
  log?: boolean;
  percent?: boolean;
  series: { name: string; points: Sample[]; dashed?: boolean }[];
  /** The chart's series that had no data (named in its title, not left out without a word). */
  missing: string[];
}

const LOGIN = 'login';
const PERCENTILES = [0.5, 0.95, 0.99] as const;
const BREAK_COLOR = '#D55E00';

/** What the charts over time are drawn from: an analysis, or the live view's own range queries. */
export interface TimeSeriesInput {
  series: readonly QueriedSeries[];
  settings: Pick<AnalysisResult['settings'], 'startUnixS' | 'endUnixS' | 'slo'>;
}

/** The charts' data: pure, from the series the analysis queried. */
export function timeCharts(result: TimeSeriesInput): TimeChart[] {
  // Every point the range queries returned: they asked for exactly the run's window, and Prometheus
  // places its last step by the millisecond (the window's end, unrounded, may be a hair before it).
  const [from, to] = [-Infinity, Infinity];
  const of = (name: string, keep: (labels: Readonly<Record<string, string>>) => boolean = () => true) =>
    result.series.filter((series) => series.name === name && keep(series.labels));
  const sum = (list: readonly Series[]) => combineIn(list, from, to, 'sum');
  const max = (list: readonly Series[]) => combineIn(list, from, to, 'max');
  const device = (labels: Readonly<Record<string, string>>) => labels.endpoint !== undefined && labels.endpoint !== LOGIN;
  const deviceRoute = (labels: Readonly<Record<string, string>>) => labels.route !== undefined && DEVICE_ROUTES[labels.route] !== undefined;
  const code = (labels: Readonly<Record<string, string>>) => labels.code ?? labels.status ?? '';
  const percent = (points: Sample[]) => points.map(([t, v]) => [t, v * 100] as Sample);
  const ms = (points: Sample[]) => points.map(([t, v]) => [t, v * 1000] as Sample);

  const responses = of('generator_responses', device);
  const clientLatency = of('generator_latency', device);
  const serverLatency = of('api_latency', deviceRoute);
  const charts: Omit<TimeChart, 'missing'>[] = [
    {
      id: 'rates', title: 'Offered vs served', yLabel: 'requests per second',
      series: [
        { name: 'offered', points: sum(of('generator_offered')), dashed: true },
        { name: 'served OK (client)', points: sum(responses.filter((s) => !isFailure(code(s.labels)))) },
        { name: 'served (API, any status)', points: sum(of('api_requests', deviceRoute)), dashed: true },
      ],
    },
    {
      id: 'latency', title: 'Latency percentiles', yLabel: 'milliseconds (log scale)', log: true,
      series: [
        ...PERCENTILES.map((q) => ({ name: `client p${q * 100}`, points: ms(quantilesOverTime(clientLatency, q)) })),
        { name: `server p${PERCENTILES[1] * 100}`, points: ms(quantilesOverTime(serverLatency, PERCENTILES[1])), dashed: true },
      ],
    },
    {
      id: 'errors', title: 'Errors', yLabel: 'percent of responses', percent: true,
      series: [{ name: 'failed (5xx, 429, no response)', points: percent(ratioOverTime(sum(responses.filter((s) => isFailure(code(s.labels)))), sum(responses))) }],
    },
    {
      id: 'cpu', title: 'CPU', yLabel: 'cores',
      series: [
        { name: 'API (hottest replica)', points: max(of('api_cpu')) },
        { name: 'load generator', points: max(of('generator_cpu')) },
        ...groupBy(of('host_cpu_by_role'), 'role').filter(([role]) => role !== 'api' && role !== 'generator').map(([role, list]) => ({ name: role, points: sum(list), dashed: true })),
      ],
    },
    {
      id: 'saturation', title: 'Saturation signals', yLabel: 'percent busy', percent: true,
      series: [
        { name: 'event loop', points: percent(max(of('event_loop_utilisation'))) },
        { name: 'pool busy', points: percent(max(of('pool_busy_fraction'))) },
        { name: 'host CPUs', points: percent(max(of('host_cpu_busy'))) },
        { name: 'DB connections', points: percent(max(of('db_connections_fraction'))) },
      ],
    },
    {
      id: 'endpoint-rates', title: 'Served OK by endpoint', yLabel: 'requests per second',
      series: groupBy(of('generator_responses'), 'endpoint').map(([endpoint, list]) => ({ name: endpoint, points: sum(list.filter((s) => !isFailure(code(s.labels)))) })),
    },
    {
      id: 'endpoint-latency', title: 'Client p95 by endpoint', yLabel: 'milliseconds (log scale)', log: true,
      series: groupBy(of('generator_latency'), 'endpoint').map(([endpoint, list]) => ({ name: endpoint, points: ms(quantilesOverTime(list, 0.95)) })),
    },
  ];
  return charts
    .map((chart) => ({ ...chart, series: chart.series.filter((series) => series.points.length > 0), missing: chart.series.filter((series) => series.points.length === 0).map((series) => series.name) }))
    .filter((chart) => chart.series.length > 0);
}

/** The latency distribution over the judged window of the break (else the last judged stage). */
export function latencySpectrum(result: AnalysisResult): { stage: string; source: 'client' | 'server'; points: [number, number][] } | undefined {
  const judged = judgedStages(result.stages);
  const stage = result.stages.find((s) => s.index === result.breakingPoint.breaking?.index) ?? judged.at(-1);
  if (!stage) return undefined;
  const { fromUnixS: from, toUnixS: to } = stage.window;
  const client = result.series.filter((s) => s.name === 'generator_latency' && s.labels.endpoint !== LOGIN);
  const server = result.series.filter((s) => s.name === 'api_latency' && s.labels.route !== undefined && DEVICE_ROUTES[s.labels.route] !== undefined);
  for (const [source, list] of [['client', client], ['server', server]] as const) {
    const buckets = new Map<number, number>();
    for (const series of list) {
      const le = parseLe(series.labels.le);
      if (Number.isNaN(le)) continue;
      for (const [t, v] of series.samples) if (t >= from && t <= to && Number.isFinite(v)) buckets.set(le, (buckets.get(le) ?? 0) + v);
    }
    const bucketList = [...buckets].map(([le, count]) => ({ le, count }));
    const points = SPECTRUM.flatMap((q) => {
      const value = quantileFromBuckets(q, bucketList);
      return value === undefined ? [] : [[spectrumX(q), value * 1000] as [number, number]];
    });
    if (points.length > 0) return { stage: stage.name, source, points };
  }
  return undefined;
}

const SPECTRUM = [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999] as const;
/** Percentiles on an axis where each "nine" takes the same room: x = −log10(1 − q). */
const spectrumX = (q: number) => -Math.log10(1 - q);
/** The spectrum's axis marks: the percentiles people quote (evenly spaced ticks fell on p68.4 and p96.8). */
const SPECTRUM_TICKS = [0.1, 0.5, 0.9, 0.99, 0.999] as const;
const spectrumLabel = (x: number) => `p${formatNumber(100 * (1 - 10 ** -x))}`;

/** The time charts and the spectrum as inline SVG, x in minutes:seconds from the run's start. */
export function renderTimeCharts(result: AnalysisResult): string[] {
  const start = result.settings.startUnixS;
  const bands: ChartBand[] = judgedStages(result.stages).map((stage) => ({ from: stage.window.fromUnixS - start, to: stage.window.toUnixS - start, label: `${stage.index + 1}` }));
  const breaking = result.stages.find((s) => s.index === result.breakingPoint.breaking?.index);
  const markers: ChartMarker[] = breaking ? [{ x: breaking.window.fromUnixS - start, label: `breaks: ${breaking.name}`, color: BREAK_COLOR }] : [];
  const svgs = drawTimeCharts(result, { bands, markers, xLabel: 'time since the start (m:ss); shaded: the judged windows, numbered by stage' });
  const slo = result.settings.slo;
  const spectrum = latencySpectrum(result);
  if (spectrum) {
    svgs.push(lineChart({
      title: `Latency distribution at ${spectrum.stage} (${spectrum.source} side)`,
      xLabel: 'percentile', yLabel: 'milliseconds (log scale)',
      series: [{ name: `${spectrum.source} latency`, points: spectrum.points, color: PALETTE[0] }],
      lines: [{ y: slo.latencyThresholdS * 1000, label: `SLO p${slo.percentile} ${formatMs(slo.latencyThresholdS)}`, color: '#CC79A7' }],
      formatX: spectrumLabel, xTicks: SPECTRUM_TICKS.map(spectrumX), yScale: 'log', width: 760,
    }));
  }
  return svgs;
}

/** The charts over time as inline SVG (the report's, and the live view's as the run goes). */
export function drawTimeCharts(input: TimeSeriesInput, options: { bands?: ChartBand[]; markers?: ChartMarker[]; xLabel?: string } = {}): string[] {
  const start = input.settings.startUnixS;
  const clock = (x: number) => `${Math.floor(x / 60)}:${String(Math.round(x % 60)).padStart(2, '0')}`;
  const slo = input.settings.slo;
  return timeCharts(input).map((chart) => lineChart({
    title: chart.missing.length > 0 ? `${chart.title} (no data: ${chart.missing.join(', ')})` : chart.title,
    xLabel: options.xLabel ?? 'time since the start (m:ss)',
    yLabel: chart.yLabel,
    series: chart.series.map((series, i): ChartSeries => ({ name: series.name, points: series.points.map(([t, v]) => [t - start, v] as const), color: PALETTE[i % PALETTE.length]!, ...(series.dashed ? { dashed: true } : {}) })),
    ...(options.bands ? { bands: options.bands } : {}),
    ...(options.markers ? { markers: options.markers } : {}),
    dots: false, formatX: clock,
    ...(chart.log ? { yScale: 'log' as const } : {}),
    ...(chart.percent ? { formatY: (value: number) => `${formatNumber(value)}%` } : {}),
    ...(chart.id === 'latency' ? { lines: [{ y: slo.latencyThresholdS * 1000, label: `SLO p${slo.percentile} ${formatMs(slo.latencyThresholdS)}`, color: '#CC79A7' }] } : {}),
    ...(chart.id === 'errors' ? { lines: [{ y: slo.maxErrorRate * 100, label: `SLO ${formatNumber(slo.maxErrorRate * 100)}%`, color: '#CC79A7' }] } : {}),
    width: 760,
  }));
}

/** Per endpoint, its latest point: served OK, client p95, failed share, as the live view's table. */
export function endpointNow(input: TimeSeriesInput): { endpoint: string; servedRps?: number; p95Ms?: number; errorPercent?: number }[] {
  const charts = timeCharts(input);
  const last = (id: string, name: string) => charts.find((c) => c.id === id)?.series.find((s) => s.name === name)?.points.at(-1)?.[1];
  const endpoints = new Set(input.series.filter((s) => s.name === 'generator_responses' && s.labels.endpoint).map((s) => s.labels.endpoint!));
  return [...endpoints].sort().map((endpoint) => {
    const responses = input.series.filter((s) => s.name === 'generator_responses' && s.labels.endpoint === endpoint);
    const at = Math.max(...responses.map((s) => s.samples.at(-1)?.[0] ?? -Infinity));
    let total = 0;
    let failed = 0;
    for (const series of responses) {
      const value = series.samples.find(([t]) => t === at)?.[1];
      if (value === undefined || !Number.isFinite(value)) continue;
      total += value;
      if (isFailure(series.labels.code ?? '')) failed += value;
    }
    const servedRps = last('endpoint-rates', endpoint);
    const p95Ms = last('endpoint-latency', endpoint);
    return { endpoint, ...(servedRps !== undefined ? { servedRps } : {}), ...(p95Ms !== undefined ? { p95Ms } : {}), ...(total > 0 ? { errorPercent: (failed / total) * 100 } : {}) };
  });
}

/** One quantile per timestamp from bucket-rate series (summed across their other labels). */
export function quantilesOverTime(list: readonly Series[], q: number): Sample[] {
  const byTime = new Map<number, Map<number, number>>();
  for (const series of list) {
    const le = parseLe(series.labels.le);
    if (Number.isNaN(le)) continue;
    for (const [t, v] of series.samples) {
      if (!Number.isFinite(v)) continue;
      const buckets = byTime.get(t) ?? new Map<number, number>();
      buckets.set(le, (buckets.get(le) ?? 0) + v);
      byTime.set(t, buckets);
    }
  }
  return [...byTime].sort(([a], [b]) => a - b).flatMap(([t, buckets]) => {
    const value = quantileFromBuckets(q, [...buckets].map(([le, count]) => ({ le, count })));
    return value === undefined ? [] : [[t, value] as Sample];
  });
}

function ratioOverTime(part: Sample[], whole: Sample[]): Sample[] {
  const parts = new Map(part);
  return whole.flatMap(([t, total]) => (total > 0 ? [[t, (parts.get(t) ?? 0) / total] as Sample] : []));
}

function groupBy(list: readonly QueriedSeries[], label: string): [string, QueriedSeries[]][] {
  const groups = new Map<string, QueriedSeries[]>();
  for (const series of list) {
    const key = series.labels[label];
    if (key === undefined) continue;
    groups.set(key, [...(groups.get(key) ?? []), series]);
  }
  return [...groups].sort(([a], [b]) => a.localeCompare(b));
}
