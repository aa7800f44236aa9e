import type { AnalysisResult } from '../analyze.js';
import { formatMs, formatNumber } from '../format.js';
import { measuresFor, SATURABLE_RESOURCES } from '../measures.js';
import { judgedStages } from '../timeline.js';
import { lineChart, PALETTE, type ChartMarker } from './svg.js';

/*
 * The report's charts, all against fleet size (the question is "how does it behave as the fleet
 * grows"), each with the breaking point marked: latency percentiles against the SLO, offered vs
 * served throughput, errors, and one chart per resource with its signals as a percentage of their
 * thresholds (so signals of different units share an axis and 100% means saturated).
 */

const BREAK_COLOR = '#D55E00';
const SLO_COLOR = '#CC79A7';

export function renderCharts(result: AnalysisResult): string[] {
  const judged = judgedStages(result.stages);
  const breaking = result.breakingPoint.breaking;
  const markers: ChartMarker[] = breaking ? [{ x: breaking.devices, label: `breaks at ${formatNumber(breaking.devices)}`, color: BREAK_COLOR }] : [];
  const xLabel = 'fleet size (devices)';
  const along = (value: (stage: (typeof judged)[number]) => number | undefined) =>
    judged.flatMap((stage) => {
      const y = value(stage);
      return y === undefined ? [] : [[stage.devices, y] as const];
    });
  const charts: string[] = [];
  const slo = result.settings.slo;

  charts.push(lineChart({
    title: `Latency (${judged.find((stage) => stage.latencySource !== 'none')?.latencySource ?? 'no'} side)`,
    xLabel, yLabel: 'milliseconds (log scale)',
    series: [
      { name: 'p50', points: along((stage) => ms(stage.latency.p50)), color: PALETTE[2] },
      { name: 'p95', points: along((stage) => ms(stage.latency.p95)), color: PALETTE[0] },
      { name: 'p99', points: along((stage) => ms(stage.latency.p99)), color: PALETTE[1] },
      { name: 'server p95', points: along((stage) => (stage.latencySource === 'client' ? ms(stage.serverLatency.p95) : undefined)), color: PALETTE[5], dashed: true },
    ].filter((series) => series.points.length > 0),
    lines: [{ y: slo.latencyThresholdS * 1000, label: `SLO p${slo.percentile} ${formatMs(slo.latencyThresholdS)}`, color: SLO_COLOR }],
    markers,
    yScale: 'log',
  }));

  charts.push(lineChart({
    title: 'Throughput: offered vs served',
    xLabel, yLabel: 'requests per second',
    series: [
      { name: 'offered', points: along((stage) => stage.offeredRps), color: PALETTE[7], dashed: true },
      { name: 'served OK', points: along((stage) => stage.achievedRps), color: PALETTE[0] },
    ].filter((series) => series.points.length > 0),
    markers,
  }));

  charts.push(lineChart({
    title: 'Errors',
    xLabel, yLabel: 'percent of requests',
    series: [{ name: 'error rate', points: along((stage) => (stage.errorRate === undefined ? undefined : stage.errorRate * 100)), color: PALETTE[3] }],
    lines: [{ y: slo.maxErrorRate * 100, label: `SLO ${formatNumber(slo.maxErrorRate * 100)}%`, color: SLO_COLOR }],
    markers,
    formatY: (value) => `${formatNumber(value)}%`,
  }));

  const measures = measuresFor(result.settings.source, result.settings.engine).filter((measure) => measure.threshold !== undefined);
  for (const resource of SATURABLE_RESOURCES) {
    const series = measures
      .filter((measure) => measure.resource === resource)
      .map((measure, position) => ({
        name: measure.label,
        points: along((stage) => {
          const value = stage.measures[measure.key];
          const threshold = result.settings.thresholds[measure.threshold!];
          return value === undefined || !(threshold > 0) ? undefined : (value / threshold) * 100;
        }),
        color: PALETTE[position % PALETTE.length]!,
      }))
      .filter((entry) => entry.points.length > 0);
    if (series.length === 0) continue;
    charts.push(lineChart({
      title: `${resource}: signals as % of their thresholds`,
      xLabel, yLabel: '% of threshold',
      series,
      lines: [{ y: 100, label: 'saturated', color: BREAK_COLOR }],
      markers,
      formatY: (value) => `${formatNumber(value)}%`,
      height: 240,
    }));
  }
  return charts;
}

function ms(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000;
}
