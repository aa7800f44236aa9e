import { performance } from 'node:perf_hooks';

/* How the benchmark prints: log lines stamped with the run's time, numbers with separators. */

export type Log = (message: string) => void;

/** Lines on stdout stamped with the seconds since the run started. */
export function createLog(): Log {
  const t0 = performance.now();
  return (message) => process.stdout.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${message}\n`);
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';
