import type { QueriedSeries } from '../../src/analysis/index.js';
import { CSV_HEADER, parseSampleValue } from '../../src/analysis/index.js';

// Reads series.csv back (the report's CSV export), to check the export against what was queried.

/** The inverse of seriesToCsv: rows grouped back into series, in order of first appearance. */
export function parseSeriesCsv(text: string): QueriedSeries[] {
  const rows = parseCsv(text);
  const header = rows.shift()?.join(',');
  if (header !== CSV_HEADER) throw new Error(`not a loadlab series CSV: the header must be "${CSV_HEADER}", got "${header ?? ''}"`);
  const bySeries = new Map<string, QueriedSeries>();
  rows.forEach((row, position) => {
    if (row.length === 1 && row[0] === '') return;
    if (row.length !== 4) throw new Error(`CSV row ${position + 2}: expected 4 fields, got ${row.length}`);
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

export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const body = text.trim().replace(/^\{/, '').replace(/\}$/, '');
  const pattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/gy;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < body.length && (match = pattern.exec(body)) !== null) {
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, escaped: string) => (escaped === 'n' ? '\n' : escaped));
  }
  if (pattern.lastIndex !== body.length && body.length > 0) throw new Error(`cannot read labels ${text}`);
  return labels;
}

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
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
