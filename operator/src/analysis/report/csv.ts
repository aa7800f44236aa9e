import type { QueriedSeries } from '../analyze.js';
import { parseSampleValue } from '../prometheus-client.js';

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

/** The inverse of seriesToCsv: rows grouped back into series, in order of first appearance. */
export function parseSeriesCsv(text: string): QueriedSeries[] {
  const rows = parseCsv(text);
  const header = rows.shift()?.join(',');
  if (header !== CSV_HEADER) throw new TypeError(`not a loadlab series CSV: the header must be "${CSV_HEADER}", got "${header ?? ''}"`);
  const bySeries = new Map<string, QueriedSeries>();
  rows.forEach((row, position) => {
    if (row.length === 1 && row[0] === '') return;
    if (row.length !== 4) throw new TypeError(`CSV row ${position + 2}: expected 4 fields, got ${row.length}`);
    const [name, labels, time, value] = row as [string, string, string, string];
    const key = `${name}\u0000${labels}`;
    let series = bySeries.get(key);
    if (!series) {
      series = { name, labels: parseLabels(labels), samples: [] };
      bySeries.set(key, series);
    }
    series.samples.push([Number(time), parseSampleValue(value)]);
  });
  return [...bySeries.values()];
}

export function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export function formatLabels(labels: Readonly<Record<string, string>>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((name) => `${name}="${labels[name]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return `{${parts.join(',')}}`;
}

export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const body = text.trim().replace(/^\{/, '').replace(/\}$/, '');
  const pattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/gy;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < body.length && (match = pattern.exec(body)) !== null) {
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, escaped: string) => (escaped === 'n' ? '\n' : escaped));
  }
  if (pattern.lastIndex !== body.length && body.length > 0) throw new TypeError(`cannot read labels ${text}`);
  return labels;
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') {
        quoted = false;
      } else {
        field += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += char;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
