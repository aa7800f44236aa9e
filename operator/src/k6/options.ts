import { durationMs, formatDuration } from '../schema/duration.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import type { Endpoint, TrafficPlan } from '../traffic/plan.js';
import { loginSpreadS, resolvePhaseRange, schedulePhases } from '../traffic/phases.js';
import { loginPieces, type LoginPiece, type PhaseRange } from '../traffic/schedule.js';

/*
 * k6's options for an experiment: one open-model scenario per endpoint, thresholds from the SLO.
 * Pure (no I/O), so the operator, `loadlab render` and the tests compute the same object; the
 * script embeds it verbatim (see bundle.ts).
 *
 * Why rates are exact: ramping-arrival-rate takes integer targets per timeUnit, and ramps linearly
 * between stages, as the plan's fleet does. For the periodic endpoints the timeUnit is the
 * device's interval, so a stage's target is simply the fleet size (an integer) and the integral of
 * k6's rate equals the plan's expected requests, with no rounding. Logins come in pieces of
 * constant rate (new devices over a stretch of time); their timeUnit is the smallest one that
 * makes every piece's rate an integer (see loginTimeUnitMs).
 */

export type K6Endpoint = Endpoint | 'login';
export const K6_ENDPOINTS: readonly K6Endpoint[] = ['measurements', 'command', 'login'];

/** Route templates: the `name` tag of every request, never a per-device URL. */
export const ROUTES: Readonly<Record<K6Endpoint, string>> = {
  measurements: '/v1/measurements',
  command: '/v1/command',
  login: '/v1/devices/login',
};

/** Pre-allocated VUs cover this multiple of the concurrency expected at the SLO threshold. */
export const VU_HEADROOM = 2;
/**
 * maxVUs when spec.generator.maxVUs is unset: this multiple of the pre-allocated VUs. With the
 * headroom above, it covers requests lasting REQUEST_TIMEOUT_FACTOR (= 2 x 5) times the SLO
 * threshold, which is the request timeout: a slow API then shows up as latency and timeouts, not
 * as dropped iterations, and dropped iterations keep meaning "the generator fell short".
 */
export const DEFAULT_MAX_VUS_FACTOR = 5;
/** Requests time out after this multiple of the SLO threshold (at least 1 s, at most 60 s). */
export const REQUEST_TIMEOUT_FACTOR = VU_HEADROOM * DEFAULT_MAX_VUS_FACTOR;
/** The login timeUnit is exact up to this; beyond it the rates are rounded per hour (see loginTimeUnitMs). */
export const LOGIN_TIME_UNIT_LIMIT_MS = 86_400_000;
const LOGIN_FALLBACK_TIME_UNIT_MS = 3_600_000;

export interface K6Stage {
  duration: string;
  target: number;
}

/** The fields of k6's ramping-arrival-rate scenario this project uses (k6 docs: Scenarios, Executors). */
export interface RampingArrivalRateScenario {
  executor: 'ramping-arrival-rate';
  /** The exported script function the scenario runs. */
  exec: K6Endpoint;
  startRate: number;
  timeUnit: string;
  stages: K6Stage[];
  preAllocatedVUs: number;
  maxVUs: number;
  gracefulStop: string;
  tags: Record<string, string>;
}

export interface K6Threshold {
  threshold: string;
  abortOnFail: boolean;
}

export interface K6Options {
  scenarios: Partial<Record<K6Endpoint, RampingArrivalRateScenario>>;
  thresholds: Record<string, K6Threshold[]>;
  /** Tags on every metric; the script adds `run` from LOADLAB_RUN_ID at start. */
  tags: Record<string, string>;
  discardResponseBodies: boolean;
  summaryTrendStats: string[];
  userAgent: string;
}

/** The VU sizing of one scenario, with the numbers it came from (for tests and `render`). */
export interface VuSizing {
  peakRatePerS: number;
  preAllocatedVUs: number;
  maxVUs: number;
}





export function requestTimeoutS(experiment: LoadExperiment): number {
  const thresholdS = durationMs(experiment.spec.slo.latencyThreshold) / 1000;
  return Math.min(60, Math.max(1, thresholdS * REQUEST_TIMEOUT_FACTOR));
}

/**
 * A k6 duration string (Go's time.ParseDuration syntax) for a number of seconds: "90s" is written
 * "1m30s"; sub-millisecond parts fall back to microseconds so the value stays exact.
 */
export function k6Duration(seconds: number): string {
  const ms = seconds * 1000;
  const wholeMs = Math.round(ms);
  if (Math.abs(ms - wholeMs) < 1e-6) return formatDuration(wholeMs);
  return `${Math.round(ms * 1000)}us`;
}

export function k6Options(experiment: LoadExperiment, plan: TrafficPlan, phaseRange?: PhaseRange): K6Options {
  const range = resolvePhaseRange(plan, phaseRange);
  const { slo, generator } = experiment.spec;
  const timeout = k6Duration(requestTimeoutS(experiment));

  const drafts: { endpoint: K6Endpoint; draft: ScenarioDraft }[] = [
    { endpoint: 'measurements', draft: periodicScenario(plan, 'measurements', range) },
    { endpoint: 'command', draft: periodicScenario(plan, 'command', range) },
  ];
  const login = loginScenario(plan, range);
  if (login) drafts.push({ endpoint: 'login', draft: login });

  const latencyS = durationMs(slo.latencyThreshold) / 1000;
  const sizing = sizeVus(
    drafts.map(({ draft }) => draft.peakRatePerS),
    latencyS,
    generator.parallelism,
    generator.maxVUs,
  );

  const scenarios: K6Options['scenarios'] = {};
  const thresholds: K6Options['thresholds'] = {};
  const latency = `p(${formatNumber(slo.latencyPercentile)})<${formatNumber(durationMs(slo.latencyThreshold))}`;
  const errors = `rate<=${formatNumber(slo.maxErrorRate)}`;
  drafts.forEach(({ endpoint, draft }, index) => {
    const vus = sizing[index]!;
    scenarios[endpoint] = {
      executor: 'ramping-arrival-rate',
      exec: endpoint,
      startRate: draft.startRate,
      timeUnit: draft.timeUnit,
      stages: draft.stages,
      preAllocatedVUs: vus.preAllocatedVUs,
      maxVUs: vus.maxVUs,
      gracefulStop: timeout,
      tags: { endpoint },
    };
    thresholds[`http_req_duration{endpoint:${endpoint}}`] = [{ threshold: latency, abortOnFail: false }];
    thresholds[`http_req_failed{endpoint:${endpoint}}`] = [{ threshold: errors, abortOnFail: false }];
  });
  thresholds.http_req_failed = [{ threshold: errors, abortOnFail: false }];

  const namespace = experiment.metadata.namespace ?? 'default';
  const percentile = `p(${formatNumber(slo.latencyPercentile)})`;
  return {
    scenarios,
    thresholds,
    tags: { experiment: `${namespace}/${experiment.metadata.name}` },
    discardResponseBodies: true,
    summaryTrendStats: [...new Set(['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', percentile])],
    userAgent: 'loadlab-k6',
  };
}

interface ScenarioDraft {
  startRate: number;
  timeUnit: string;
  stages: K6Stage[];
  peakRatePerS: number;
}

/** Measurements or polls: the rate per interval is the fleet size, ramps and holds as planned. */
function periodicScenario(plan: TrafficPlan, endpoint: Endpoint, range: PhaseRange): ScenarioDraft {
  const phases = plan.phases.slice(range.from, range.to);
  const startRate = phases[0]!.devicesAtStart;
  const stages: K6Stage[] = [];
  let rate = startRate;
  let peak = startRate;
  for (const phase of phases) {
    // A hold that changes the fleet is a step: a zero-length stage jumps, k6 does not ramp over it.
    if (phase.devicesAtStart !== rate) stages.push({ duration: '0s', target: phase.devicesAtStart });
    stages.push({ duration: k6Duration(phase.durationS), target: phase.devicesAtEnd });
    rate = phase.devicesAtEnd;
    peak = Math.max(peak, phase.devicesAtStart, phase.devicesAtEnd);
  }
  return { startRate, timeUnit: k6Duration(plan.intervalS[endpoint]), stages, peakRatePerS: peak / plan.intervalS[endpoint] };
}

/** Each device logs in once when it joins; undefined when no device joins within the range. */
function loginScenario(plan: TrafficPlan, range: PhaseRange): ScenarioDraft | undefined {
  const pieces = loginPieces(schedulePhases(plan), range, loginSpreadS(plan));
  if (!pieces.some((piece) => piece.logins > 0)) return undefined;
  const { timeUnitMs, exact } = loginTimeUnitMs(pieces);
  const rates = pieces.map((piece) => {
    const perUnit = (piece.logins * timeUnitMs) / (piece.durationS * 1000);
    return exact ? Math.round(perUnit) : Math.max(piece.logins > 0 ? 1 : 0, Math.round(perUnit));
  });
  const stages: K6Stage[] = [];
  let previous = rates[0]!;
  pieces.forEach((piece, index) => {
    const rate = rates[index]!;
    if (rate !== previous) stages.push({ duration: '0s', target: rate });
    stages.push({ duration: k6Duration(piece.durationS), target: rate });
    previous = rate;
  });
  const peakRatePerS = Math.max(...pieces.map((piece) => piece.logins / piece.durationS));
  return { startRate: rates[0]!, timeUnit: k6Duration(timeUnitMs / 1000), stages, peakRatePerS };
}

/**
 * The smallest timeUnit (whole ms) in which every piece's login rate is an integer: the least
 * common multiple of duration / gcd(logins, duration) over the pieces. When that exceeds a day
 * (odd durations), an hour is used and rates are rounded: at most half a login per hour of
 * piece off, and iterations past the planned logins are skipped by the script.
 */
export function loginTimeUnitMs(pieces: readonly LoginPiece[]): { timeUnitMs: number; exact: boolean } {
  let unit = 1;
  for (const piece of pieces) {
    if (piece.logins === 0) continue;
    const durationMsExact = piece.durationS * 1000;
    const whole = Math.round(durationMsExact);
    if (Math.abs(durationMsExact - whole) > 1e-6 || whole <= 0) return { timeUnitMs: LOGIN_FALLBACK_TIME_UNIT_MS, exact: false };
    const needed = whole / gcd(piece.logins, whole);
    unit = (unit / gcd(unit, needed)) * needed;
    if (unit > LOGIN_TIME_UNIT_LIMIT_MS) return { timeUnitMs: LOGIN_FALLBACK_TIME_UNIT_MS, exact: false };
  }
  return { timeUnitMs: unit, exact: true };
}

/**
 * Little's law per scenario: concurrency = rate x latency. Pre-allocated VUs cover the peak rate
 * at the SLO threshold with VU_HEADROOM; at least one per generator pod (k6 splits VUs between
 * the pods, and a pod with none would sit idle). maxVUs: spec.generator.maxVUs is a per-pod
 * budget shared by the scenarios in proportion to their need; unset, DEFAULT_MAX_VUS_FACTOR x
 * the pre-allocation.
 */
export function sizeVus(peakRatesPerS: readonly number[], latencyS: number, parallelism: number, maxVUsPerPod?: number): VuSizing[] {
  const needs = peakRatesPerS.map((rate) => Math.max(parallelism, Math.ceil(rate * latencyS * VU_HEADROOM - 1e-9)));
  if (maxVUsPerPod === undefined) {
    return needs.map((need, index) => ({ peakRatePerS: peakRatesPerS[index]!, preAllocatedVUs: need, maxVUs: need * DEFAULT_MAX_VUS_FACTOR }));
  }
  const budget = maxVUsPerPod * parallelism;
  const totalNeed = needs.reduce((sum, need) => sum + need, 0);
  return needs.map((need, index) => {
    const maxVUs = Math.max(1, Math.floor((budget * need) / totalNeed));
    return { peakRatePerS: peakRatesPerS[index]!, preAllocatedVUs: Math.min(need, maxVUs), maxVUs };
  });
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Numbers in thresholds: plain decimal, as k6's threshold parser reads them. */
function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
}
