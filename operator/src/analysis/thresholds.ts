/*
 * Every number the analysis judges by, with its default and the reason for it. Callers override
 * any of them through `thresholds` (a partial object); the report prints the values used.
 */

export interface Thresholds {
  // --- load generator: it must deliver the schedule, or nothing downstream can be judged ---
  /** Requests the generator dropped (or k6 iterations it dropped) as a fraction of offered. */
  generatorDroppedFraction: number;
  /** Mean schedule lag of the generator over the window, seconds. */
  generatorLagS: number;
  /** Generator process CPU, cores: a Node driver's event loop is one thread. */
  generatorCpuCores: number;

  // --- API CPU ---
  /** Hottest replica's process CPU, cores. A Node process serves on one thread, so ~1 core is its ceiling. */
  apiCpuCores: number;
  /** Fraction of CFS periods in which the API container was throttled (Kubernetes CPU limit). */
  apiThrottledFraction: number;
  /** Container CPU as a fraction of its CPU limit (Kubernetes, when limits are known). */
  apiCpuLimitFraction: number;

  // --- event loop ---
  /** Event-loop utilisation (rate of active time, 0..1) of the hottest replica. */
  eventLoopUtilisation: number;
  /** Event-loop lag p99, seconds. */
  eventLoopLagS: number;

  // --- DB pool ---
  /** Fraction of the window's points with callers waiting for a connection ("sustained"). */
  poolWaitingActiveFraction: number;
  /** Pool acquire time p95, seconds. */
  poolAcquireP95S: number;

  // --- database ---
  /** Mean time a statement holds its connection (query time minus the pool wait), seconds. */
  dbHoldMeanS: number;
  /** Backends as a fraction of max_connections. */
  dbConnectionsFraction: number;
  /** Database container CPU as a fraction of its limit (Kubernetes, when known). */
  dbCpuLimitFraction: number;

  // --- memory / GC ---
  /** Fraction of wall time spent in GC, hottest replica. */
  gcTimeFraction: number;
  /** Container working set as a fraction of its memory limit (Kubernetes, when known). */
  memoryLimitFraction: number;

  // --- the breaking point ---
  /** Achieved / offered below this is a knee: the API stopped keeping up with its load. */
  kneeRatio: number;
  /** Served / added load between consecutive steps below this is a knee (flattening throughput). */
  kneeMarginalGain: number;
  /** The marginal rule only applies when a step adds at least this fraction of load (noise). */
  kneeMinStepFraction: number;

  // --- windows ---
  /** Seconds excluded at the start of every stage (new devices log in, pools and JIT warm up). */
  settleS: number;
  /** For a ramp: the fraction of its duration dropped at its start (the rest is summarised). */
  rampSkipFraction: number;
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  // 0.5% dropped is beyond any scheduling jitter; the generator could not keep up.
  generatorDroppedFraction: 0.005,
  // A device schedule one second behind changes the offered load the experiment claims.
  generatorLagS: 1,
  generatorCpuCores: 0.9,

  apiCpuCores: 0.9,
  // Throttled in one period out of five: latency already carries the CFS quota's 100 ms stalls.
  apiThrottledFraction: 0.2,
  apiCpuLimitFraction: 0.9,

  eventLoopUtilisation: 0.9,
  // 100 ms of lag is on the order of the whole latency SLO's budget.
  eventLoopLagS: 0.1,

  poolWaitingActiveFraction: 0.5,
  // A healthy pool hands out a connection in well under a millisecond; 10 ms is queueing.
  poolAcquireP95S: 0.01,

  // The API's statements (batched inserts, single-row reads) hold a connection for a few ms on a
  // healthy database; 20 ms is several times that, and caps a 10-connection pool at 500 statements/s.
  dbHoldMeanS: 0.02,
  dbConnectionsFraction: 0.9,
  dbCpuLimitFraction: 0.9,

  // Node's own guidance: more than ~10% of time in GC is a memory problem, not a CPU one.
  gcTimeFraction: 0.1,
  memoryLimitFraction: 0.9,

  kneeRatio: 0.95,
  kneeMarginalGain: 0.5,
  kneeMinStepFraction: 0.05,

  settleS: 10,
  rampSkipFraction: 0.5,
});

export function resolveThresholds(overrides: Partial<Thresholds> = {}): Thresholds {
  const merged = { ...DEFAULT_THRESHOLDS };
  for (const [key, value] of Object.entries(overrides) as [keyof Thresholds, number | undefined][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_THRESHOLDS)) throw new TypeError(`unknown analysis threshold "${key}": one of ${Object.keys(DEFAULT_THRESHOLDS).join(', ')}`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`analysis threshold ${key} must be a non-negative number, got ${String(value)}`);
    }
    merged[key] = value;
  }
  return merged;
}
