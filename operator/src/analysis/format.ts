import type { Unit } from './queries.js';

/* Numbers for people: three significant digits, thousands grouped, units spelled the same everywhere. */

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (value === 0) return '0';
  return String(Number(value.toPrecision(3)));
}

export function formatMs(seconds: number): string {
  return `${formatNumber(seconds * 1000)} ms`;
}

export function formatPercent(fraction: number): string {
  return `${formatNumber(fraction * 100)}%`;
}

export function formatValue(value: number | undefined, unit: Unit): string {
  if (value === undefined) return '—';
  switch (unit) {
    case 'seconds': return formatMs(value);
    case 'ratio': return formatPercent(value);
    case 'cores': return `${formatNumber(value)} cores`;
    case 'rps': return `${formatNumber(value)} rps`;
    case 'bytes': return `${formatNumber(value / 2 ** 20)} MiB`;
    case 'devices': return `${formatNumber(value)} devices`;
    case 'count': return formatNumber(value);
  }
}
