/**
 * Kubernetes-style durations ("30s", "5m", "1h30m", "250ms"): the subset of Go's time.ParseDuration
 * that CEL's duration() also parses, so a value the CLI accepts is one the apiserver can compare.
 * Units below a millisecond are left out on purpose: no interval in a load test needs them.
 */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export const DURATION_HINT = 'must be a duration like "30s", "5m", "1h30m" or "250ms"';

export function isDuration(text: string): boolean {
  return DURATION_RE.test(text);
}

/** Milliseconds in a duration string; throws on text that is not one (validate first). */
export function durationMs(text: string): number {
  if (!isDuration(text)) throw new Error(`"${text}" ${DURATION_HINT}`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART_RE)) total += Number(amount) * UNIT_MS[unit!]!;
  return total;
}

export function durationSeconds(text: string): number {
  return durationMs(text) / 1000;
}

/** The shortest Kubernetes-style spelling of a millisecond count, for messages ("1h5m", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const amount = Math.floor(rest / size);
    if (amount > 0) parts.push(`${amount}${unit}`);
    rest -= amount * size;
  }
  return parts.join('');
}
