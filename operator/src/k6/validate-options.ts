/*
 * A check of k6 options against k6's documented shape, for the fields this project writes. k6
 * itself cannot run here (AGPL: this workplace does not use it), so this stands in for `k6 inspect`:
 * it refuses what k6 would refuse when the runner starts. Sources: the k6 docs pages "Scenarios"
 * (common options; scenario names may hold only letters, digits, "_" and "-"), "Executors" (one page
 * per executor, with its options and which are required), "Thresholds" (expression syntax and the
 * {threshold, abortOnFail, delayAbortEval} form) and "Options" (tags, summaryTrendStats, ...).
 * k6 decodes each scenario strictly: an unknown key is an error, so it is one here too.
 */

export const EXECUTORS = [
  'shared-iterations',
  'per-vu-iterations',
  'constant-vus',
  'ramping-vus',
  'constant-arrival-rate',
  'ramping-arrival-rate',
  'externally-controlled',
] as const;

const COMMON_KEYS = ['executor', 'startTime', 'gracefulStop', 'exec', 'env', 'tags', 'options'];

type FieldKind = 'duration' | 'positiveDuration' | 'count' | 'stages';

/** Each executor's own options (k6 docs, one page per executor); `required` as the docs mark them. */
const EXECUTOR_FIELDS: Record<(typeof EXECUTORS)[number], { fields: Record<string, FieldKind>; required: string[] }> = {
  'shared-iterations': { fields: { vus: 'count', iterations: 'count', maxDuration: 'duration' }, required: [] },
  'per-vu-iterations': { fields: { vus: 'count', iterations: 'count', maxDuration: 'duration' }, required: [] },
  'constant-vus': { fields: { vus: 'count', duration: 'positiveDuration' }, required: ['duration'] },
  'ramping-vus': { fields: { stages: 'stages', startVUs: 'count', gracefulRampDown: 'duration' }, required: ['stages'] },
  'constant-arrival-rate': {
    fields: { rate: 'count', timeUnit: 'positiveDuration', duration: 'positiveDuration', preAllocatedVUs: 'count', maxVUs: 'count' },
    required: ['rate', 'duration', 'preAllocatedVUs'],
  },
  'ramping-arrival-rate': {
    fields: { stages: 'stages', startRate: 'count', timeUnit: 'positiveDuration', preAllocatedVUs: 'count', maxVUs: 'count' },
    required: ['stages', 'preAllocatedVUs'],
  },
  'externally-controlled': { fields: { vus: 'count', maxVUs: 'count', duration: 'positiveDuration' }, required: ['duration'] },
};

/** Go's time.ParseDuration syntax, which k6 uses (plus k6's "d" for days). */
const DURATION = /^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d))+$/;
const DURATION_PART = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d)/g;
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };
const SCENARIO_NAME = /^[0-9a-zA-Z_-]+$/;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** A metric name with an optional tag filter: http_req_duration{endpoint:login,method:POST}. */
const THRESHOLD_METRIC = /^[A-Za-z_][A-Za-z0-9_]*(\{[^{}:,]+:[^{},]*(,[^{}:,]+:[^{},]*)*\})?$/;
const NUMBER = '-?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?';
const AGGREGATION = '(avg|min|max|med|count|rate|value|p\\([0-9]+(\\.[0-9]+)?\\))';
const THRESHOLD_EXPRESSION = new RegExp(`^${AGGREGATION}\\s*(<|<=|>|>=|==|===|!=)\\s*${NUMBER}$`);
const TREND_STAT = /^(avg|min|med|max|count|p\([0-9]+(\.[0-9]+)?\))$/;

/** Nanoseconds in a k6 duration string; undefined when it is not one. */
export function k6DurationNs(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  if (text === '0') return 0;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) total += Number(amount) * UNIT_NS[unit!]!;
  return total;
}

/**
 * Every way `options` departs from k6's documented shape, as "path: problem" lines; empty when it
 * conforms. `exports` (the script's exported function names), when given, is checked against
 * each scenario's exec.
 */
export function validateK6Options(options: unknown, exports?: readonly string[]): string[] {
  const problems: string[] = [];
  const fail = (path: string, problem: string) => problems.push(`${path}: ${problem}`);
  if (!isRecord(options)) return ['options: must be an object'];

  if (options.scenarios !== undefined) {
    if (!isRecord(options.scenarios) || Object.keys(options.scenarios).length === 0) {
      fail('scenarios', 'must be an object with at least one scenario');
    } else {
      for (const [name, scenario] of Object.entries(options.scenarios)) {
        validateScenario(`scenarios.${name}`, name, scenario, exports, fail);
      }
    }
  }

  if (options.thresholds !== undefined) {
    if (!isRecord(options.thresholds)) fail('thresholds', 'must be an object of metric name to thresholds');
    else {
      for (const [metric, list] of Object.entries(options.thresholds)) {
        const path = `thresholds["${metric}"]`;
        if (!THRESHOLD_METRIC.test(metric)) fail(path, 'must be a metric name with an optional {tag:value,...} filter');
        if (!Array.isArray(list) || list.length === 0) {
          fail(path, 'must be a non-empty list of thresholds');
          continue;
        }
        list.forEach((entry: unknown, index) => {
          const at = `${path}[${index}]`;
          const expression = typeof entry === 'string' ? entry : isRecord(entry) ? entry.threshold : undefined;
          if (typeof expression !== 'string' || !THRESHOLD_EXPRESSION.test(expression)) {
            fail(at, 'must be an expression like "p(95)<250" or "rate<0.01"');
          }
          if (isRecord(entry)) {
            for (const key of Object.keys(entry)) {
              if (!['threshold', 'abortOnFail', 'delayAbortEval'].includes(key)) fail(`${at}.${key}`, 'unknown field');
            }
            if (entry.abortOnFail !== undefined && typeof entry.abortOnFail !== 'boolean') fail(`${at}.abortOnFail`, 'must be a boolean');
            if (entry.delayAbortEval !== undefined && (typeof entry.delayAbortEval !== 'string' || k6DurationNs(entry.delayAbortEval) === undefined)) {
              fail(`${at}.delayAbortEval`, 'must be a duration');
            }
          }
        });
      }
    }
  }

  if (options.tags !== undefined) validateStringMap('tags', options.tags, fail);
  for (const key of ['discardResponseBodies', 'noConnectionReuse', 'insecureSkipTLSVerify'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') fail(key, 'must be a boolean');
  }
  if (options.userAgent !== undefined && typeof options.userAgent !== 'string') fail('userAgent', 'must be a string');
  if (options.summaryTrendStats !== undefined) {
    if (!Array.isArray(options.summaryTrendStats)) fail('summaryTrendStats', 'must be a list');
    else {
      options.summaryTrendStats.forEach((stat: unknown, index) => {
        if (typeof stat !== 'string' || !TREND_STAT.test(stat)) fail(`summaryTrendStats[${index}]`, 'must be avg, min, med, max, count or p(N)');
      });
    }
  }
  return problems;
}

function validateScenario(
  path: string,
  name: string,
  scenario: unknown,
  exports: readonly string[] | undefined,
  fail: (path: string, problem: string) => void,
): void {
  if (!SCENARIO_NAME.test(name)) fail(path, 'the scenario name may only hold letters, digits, "_" and "-"');
  if (!isRecord(scenario)) {
    fail(path, 'must be an object');
    return;
  }
  const executor = scenario.executor;
  if (typeof executor !== 'string' || !(EXECUTORS as readonly string[]).includes(executor)) {
    fail(`${path}.executor`, `must be one of ${EXECUTORS.join(', ')}`);
    return;
  }
  const spec = EXECUTOR_FIELDS[executor as (typeof EXECUTORS)[number]];
  for (const key of Object.keys(scenario)) {
    if (!COMMON_KEYS.includes(key) && !(key in spec.fields)) fail(`${path}.${key}`, `unknown field for executor ${executor}`);
  }
  for (const key of spec.required) {
    if (scenario[key] === undefined) fail(`${path}.${key}`, `is required for executor ${executor}`);
  }
  for (const [key, kind] of Object.entries(spec.fields)) {
    const value = scenario[key];
    if (value !== undefined) validateField(`${path}.${key}`, kind, value, fail);
  }
  for (const key of ['startTime', 'gracefulStop']) {
    if (scenario[key] !== undefined) validateField(`${path}.${key}`, 'duration', scenario[key], fail);
  }
  if (scenario.exec !== undefined) {
    if (typeof scenario.exec !== 'string' || !IDENTIFIER.test(scenario.exec)) fail(`${path}.exec`, 'must be the name of an exported function');
    else if (exports && !exports.includes(scenario.exec)) fail(`${path}.exec`, `names ${scenario.exec}, which the script does not export`);
  }
  if (scenario.tags !== undefined) validateStringMap(`${path}.tags`, scenario.tags, fail);
  if (scenario.env !== undefined) validateStringMap(`${path}.env`, scenario.env, fail);
  const pre = scenario.preAllocatedVUs;
  const max = scenario.maxVUs;
  if (typeof pre === 'number' && typeof max === 'number' && max < pre) fail(`${path}.maxVUs`, 'must be at least preAllocatedVUs');
}

function validateField(path: string, kind: FieldKind, value: unknown, fail: (path: string, problem: string) => void): void {
  switch (kind) {
    case 'count':
      if (!Number.isSafeInteger(value) || (value as number) < 0) fail(path, 'must be a whole number, 0 or more');
      return;
    case 'duration':
    case 'positiveDuration': {
      const ns = typeof value === 'string' ? k6DurationNs(value) : undefined;
      if (ns === undefined) fail(path, 'must be a duration string like "30s", "1m30s" or "250ms"');
      else if (kind === 'positiveDuration' && ns <= 0) fail(path, 'must be longer than 0');
      return;
    }
    case 'stages':
      if (!Array.isArray(value) || value.length === 0) {
        fail(path, 'must be a non-empty list of {duration, target}');
        return;
      }
      value.forEach((stage: unknown, index) => {
        const at = `${path}[${index}]`;
        if (!isRecord(stage)) {
          fail(at, 'must be an object {duration, target}');
          return;
        }
        for (const key of Object.keys(stage)) if (key !== 'duration' && key !== 'target') fail(`${at}.${key}`, 'unknown field');
        if (stage.duration === undefined) fail(`${at}.duration`, 'is required');
        else validateField(`${at}.duration`, 'duration', stage.duration, fail);
        if (stage.target === undefined) fail(`${at}.target`, 'is required');
        else validateField(`${at}.target`, 'count', stage.target, fail);
      });
      return;
  }
}

function validateStringMap(path: string, value: unknown, fail: (path: string, problem: string) => void): void {
  if (!isRecord(value)) {
    fail(path, 'must be a map of string to string');
    return;
  }
  for (const [key, entry] of Object.entries(value)) if (typeof entry !== 'string') fail(`${path}.${key}`, 'must be a string');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
