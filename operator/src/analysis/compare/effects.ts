import { AnalysisInputError } from '../errors.js';
import { DEFAULT_MINIMUM_EFFECTS, type MinimumEffects } from './compare.js';

/*
 * `--min-effect NAME=VALUE`, as a user spells it: percentages for the relative ones (p95=15%, or a
 * fraction 0.15), percentage points for the error rate (errors=2pp, or 0.02), milliseconds for the
 * latency floor (latency-ms=0.5), whole steps for the breaking point (breaking-steps=2).
 */

const KEYS: Readonly<Record<string, { field: keyof MinimumEffects; kind: 'relative' | 'points' | 'ms' | 'steps' }>> = {
  served: { field: 'served', kind: 'relative' },
  errors: { field: 'errors', kind: 'points' },
  p50: { field: 'p50', kind: 'relative' },
  p95: { field: 'p95', kind: 'relative' },
  p99: { field: 'p99', kind: 'relative' },
  'latency-ms': { field: 'latencyMs', kind: 'ms' },
  cpu: { field: 'cpu', kind: 'relative' },
  'breaking-steps': { field: 'breakingSteps', kind: 'steps' },
};

const MIN_EFFECT_NAMES = Object.keys(KEYS);

export function parseMinimumEffects(settings: readonly string[], base: MinimumEffects = DEFAULT_MINIMUM_EFFECTS): MinimumEffects {
  const effects = { ...base };
  for (const setting of settings) {
    const match = /^([a-z0-9-]+)=(.+)$/.exec(setting.trim());
    const key = match ? KEYS[match[1]!] : undefined;
    if (!match || !key) throw new AnalysisInputError(`--min-effect ${JSON.stringify(setting)}: expected NAME=VALUE with NAME one of ${MIN_EFFECT_NAMES.join(', ')}`);
    const text = match[2]!.trim();
    const unit = key.kind === 'relative' ? '%' : key.kind === 'points' ? 'pp' : key.kind === 'ms' ? 'ms' : '';
    const suffixed = unit !== '' && text.endsWith(unit);
    const number = Number(suffixed ? text.slice(0, -unit.length) : text);
    const value = suffixed && (key.kind === 'relative' || key.kind === 'points') ? number / 100 : number;
    const valid = Number.isFinite(value) && value >= 0 && (key.kind !== 'steps' || Number.isInteger(value)) && (key.kind !== 'relative' || value <= 10) && (key.kind !== 'points' || value <= 1);
    if (!valid || text === '') {
      const expected = { relative: 'a percentage such as 10% (or a fraction such as 0.1)', points: 'percentage points such as 1pp (or a fraction such as 0.01)', ms: 'milliseconds such as 1ms', steps: 'a whole number of steps such as 1' }[key.kind];
      throw new AnalysisInputError(`--min-effect ${match[1]}=${text}: expected ${expected}, not negative`);
    }
    effects[key.field] = value;
  }
  return effects;
}
