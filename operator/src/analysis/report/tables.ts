import type { AnalysisResult } from '../analyze.js';
import { formatMs, formatNumber, formatPercent, formatValue } from '../format.js';
import { measuresFor } from '../measures.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from '../../schema/thresholds.js';
import { judgedStages } from '../timeline.js';
import { uslCapacity } from '../usl.js';
import type { UseRow } from '../verdict.js';

/* The report's tables as plain strings, shared by the Markdown and HTML writers. */

export interface Table {
  headers: string[];
  rows: string[][];
  /** Row positions to emphasise (the breaking stage). */
  highlight?: number[];
}

const dash = '—';
const orDash = (value: number | undefined, format: (value: number) => string) => (value === undefined ? dash : format(value));

export function stagesTable(result: AnalysisResult): Table {
  const breakIndex = result.breakingPoint.breaking?.index;
  const judged = new Set(judgedStages(result.stages).map((stage) => stage.index));
  const rows = result.stages.map((stage) => [
    stage.name + (judged.has(stage.index) ? '' : ' (not judged)') + (stage.window.short ? ' (short window)' : ''),
    formatNumber(stage.devices),
    formatNumber(stage.offeredRps),
    orDash(stage.achievedRps, formatNumber),
    orDash(stage.latency.p50, formatMs),
    orDash(stage.latency.p95, formatMs),
    orDash(stage.latency.p99, formatMs),
    orDash(stage.errorRate, formatPercent),
    orDash(stage.measures['api_cpu.mean'], formatNumber),
    orDash(stage.measures['event_loop_utilisation.mean'], formatPercent),
    orDash(stage.measures['pool_waiting.mean'], formatNumber),
    orDash(stage.measures['db_hold_time.mean'], formatMs),
  ]);
  return {
    headers: ['stage', 'devices', 'offered rps', 'served rps', 'p50', 'p95', 'p99', 'errors', 'API CPU (cores)', 'event loop', 'pool waiting', 'DB hold'],
    rows,
    highlight: breakIndex === undefined ? [] : [result.stages.findIndex((stage) => stage.index === breakIndex)],
  };
}

export function endpointsTable(result: AnalysisResult): Table {
  const stage = result.stages.find((entry) => entry.index === (result.breakingPoint.breaking?.index ?? result.breakingPoint.lastGood?.index));
  if (!stage) return { headers: [], rows: [] };
  return {
    headers: ['endpoint', 'served rps', 'errors', 'p95'],
    rows: Object.entries(stage.endpoints).map(([endpoint, summary]) => [
      endpoint,
      orDash(summary.achievedRps, formatNumber),
      orDash(summary.errorRate, formatPercent),
      orDash(summary.p95S, formatMs),
    ]),
  };
}

export function evidenceTable(result: AnalysisResult): Table {
  return {
    headers: ['resource', 'signal', 'value', 'threshold', 'stage', 'query'],
    rows: result.verdict.evidence.map((entry) => [
      entry.resource,
      entry.replica ? `${entry.label} on ${entry.replica}` : entry.label,
      formatValue(entry.value, entry.unit),
      entry.threshold === undefined ? dash : formatValue(entry.threshold, entry.unit),
      entry.stageName,
      entry.query,
    ]),
  };
}

export function useTable(rows: readonly UseRow[]): Table {
  const cell = (row: UseRow, category: 'utilisation' | 'saturation' | 'errors') =>
    row.entries
      .filter((entry) => entry.category === category && entry.value !== undefined)
      .map((entry) => `${entry.label} ${formatValue(entry.value, entry.unit)}${entry.threshold !== undefined ? ` / ${formatValue(entry.threshold, entry.unit)}` : ''}${entry.crossed ? ' ⚠' : ''}`)
      .join('; ') || dash;
  return {
    headers: ['resource', 'utilisation', 'saturation', 'errors', 'state'],
    rows: rows.map((row) => [
      row.resource,
      cell(row, 'utilisation'),
      cell(row, 'saturation'),
      cell(row, 'errors'),
      !row.assessed ? 'not assessed' : row.saturated ? `saturated since ${row.saturatedSince?.name ?? '?'}` : 'ok',
    ]),
  };
}

export function thresholdsTable(thresholds: Thresholds): Table {
  return {
    headers: ['threshold', 'value', 'default'],
    rows: (Object.keys(DEFAULT_THRESHOLDS) as (keyof Thresholds)[]).map((key) => [key, String(thresholds[key]), String(DEFAULT_THRESHOLDS[key])]),
  };
}

export function queriesTable(result: AnalysisResult): Table {
  const missing = new Set(result.missing);
  const failed = new Map(result.failed.map((entry) => [entry.name, entry.error]));
  const thresholds = (name: string) =>
    measuresFor(result.settings.source, result.settings.engine)
      .filter((measure) => measure.query === name && measure.threshold !== undefined)
      .map((measure) => `${measure.key.replace(`${name}.`, '')} ≥ ${formatValue(result.settings.thresholds[measure.threshold!], measure.unit)}`)
      .join(', ') || dash;
  return {
    headers: ['query', 'resource', 'unit', 'saturated when', 'result', 'PromQL'],
    rows: result.catalog.map((query) => [
      query.name,
      query.resource,
      query.unit,
      thresholds(query.name),
      failed.has(query.name) ? `refused: ${failed.get(query.name)!}` : missing.has(query.name) ? 'no data' : 'ok',
      query.promql,
    ]),
  };
}

export function uslLines(result: AnalysisResult): string[] {
  const fit = result.usl;
  if (!fit) return [];
  const lines = [
    `λ (one replica) ${formatNumber(fit.lambda)} rps, σ (contention) ${formatNumber(fit.sigma)}, κ (coherency) ${formatNumber(fit.kappa)}; R² ${formatNumber(fit.rSquared)} over ${fit.points} replica counts.`,
  ];
  if (fit.peakN !== undefined && fit.peakCapacity !== undefined) {
    lines.push(`Capacity peaks at about ${formatNumber(fit.peakN)} replicas (${formatNumber(fit.peakCapacity)} rps); more replicas serve less.`);
  }
  const measured = Math.max(...result.stages.map((stage) => stage.replicas ?? 1));
  const predictions = [1, 2, 4, 8, 16, 32, 64].filter((n) => n <= Math.max(4, 2 * measured));
  lines.push(`Predicted capacity: ${predictions.map((n) => `${n} → ${formatNumber(uslCapacity(fit, n))} rps`).join(', ')}.`);
  return lines;
}

export function headline(result: AnalysisResult): [string, string][] {
  const { summary, breakingPoint, settings } = result;
  const items: [string, string][] = [
    ['outcome', breakingPoint.status === 'broke' ? 'SLO broke' : breakingPoint.status === 'held' ? 'SLO held' : 'undetermined'],
    ['bottleneck', summary.bottleneck],
  ];
  if (summary.devicesAtBreak !== undefined) items.push(['breaks at', `${formatNumber(summary.devicesAtBreak)} devices`]);
  if (breakingPoint.lastGood) items.push(['last good', `${formatNumber(breakingPoint.lastGood.devices)} devices, ${orDash(breakingPoint.lastGood.achievedRps, formatNumber)} rps`]);
  if (summary.p95Ms !== undefined) items.push(['p95 there', formatMs(summary.p95Ms / 1000)]);
  items.push(['SLO', `p${settings.slo.percentile} ≤ ${formatMs(settings.slo.latencyThresholdS)}, errors ≤ ${formatPercent(settings.slo.maxErrorRate)}`]);
  return items;
}
