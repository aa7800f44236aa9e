import type { Table } from './tables.js';

/*
 * A table for a terminal: numbers right-aligned, the first column (and any named in `left`)
 * left-aligned, the highlighted rows marked at their end.
 */

export function textTable(table: Table, options: { mark?: string; left?: readonly number[] } = {}): string[] {
  const mark = options.mark ?? '<- breaks';
  const left = new Set([0, ...(options.left ?? [])]);
  const widths = table.headers.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const highlight = new Set(table.highlight ?? []);
  return [line(table.headers), ...table.rows.map((row, i) => `${line(row)}${highlight.has(i) ? `  ${mark}` : ''}`)];
}
