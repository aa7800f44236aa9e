import type { QueriedSeries } from '../analyze.js';

/*
 * Every queried series as CSV in long format, one sample per row (the seed's "CSV export from
 * Prometheus"): series (the catalog query's name), labels (Prometheus' own {a="b"} notation),
 * unix_time, value. RFC 4180 quoting; values keep full precision and Prometheus' NaN/+Inf/-Inf.
 */

export const CSV_HEADER = 'series,labels,unix_time,value';

export function seriesToCsv(series: readonly QueriedSeries[]): string {
  const lines = [CSV_HEADER];
  for (const entry of series) {
    const prefix = `${csvField(entry.name)},${csvField(formatLabels(entry.labels))},`;
    for (const [time, value] of entry.samples) lines.push(`${prefix}${String(time)},${formatSampleValue(value)}`);
  }
  return lines.join('\r\n') + '\r\n';
}

function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: Readonly<Record<string, string>>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((name) => `${name}="${labels[name]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return `{${parts.join(',')}}`;
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
