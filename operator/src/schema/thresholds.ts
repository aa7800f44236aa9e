/*
 * Every number the analysis judges by, with its default and the reason for it. Callers override
 * any of them through `thresholds` (a partial object), an experiment through
 * spec.analysis.thresholds; the report prints the values used.
 */
import { boundsText, withinBounds, type NumberBounds } from './bounds.js';

/** The numbers, by name; what each one means and which values it takes is in THRESHOLD_DOCS. */
export interface Thresholds {
  // --- load generator: it must deliver the schedule, or nothing downstream can be judged ---
  generatorDroppedFraction: number;
  generatorLagS: number;
  generatorCpuCores: number;
  // --- host CPU: the machine or node everything shares ---
  hostCpuBusyFraction: number;
  hostCpuOthersFraction: number;
  apiCpuWaitFraction: number;
  // --- API CPU ---
  apiCpuCores: number;
  apiThrottledFraction: number;
  apiCpuLimitFraction: number;
  // --- event loop ---
  eventLoopUtilisation: number;
  eventLoopLagS: number;
  // --- DB pool ---
  poolWaitingActiveFraction: number;
  poolAcquireP95S: number;
  // --- database ---
  dbHoldMeanS: number;
  dbConnectionsFraction: number;
  dbCpuLimitFraction: number;
  dbLockWaitFraction: number;
  dbLongestTransactionS: number;
  // --- memory / GC ---
  gcTimeFraction: number;
  memoryLimitFraction: number;
  // --- the breaking point ---
  kneeRatio: number;
  kneeMarginalGain: number;
  kneeMinStepFraction: number;
  // --- windows ---
  settleS: number;
  rampSkipFraction: number;
}

/**
 * What a threshold means and the values it may take. The LoadExperiment schema builds
 * spec.analysis.thresholds from this (descriptions for kubectl explain, bounds for the CRD and the
 * CLI), resolveThresholds checks library callers against the same bounds, and a test keeps the
 * README's table in step with it.
 */
export interface ThresholdDoc extends NumberBounds {
  /** One sentence: what crosses the threshold, and what follows. */
  meaning: string;
  unit: 'fraction' | 'seconds' | 'cores';
  /**
   * The bound itself is not allowed. A saturation threshold of 0 would call every resource
   * saturated (any measure is ≥ 0), so those exclude it; a knee rule's 0 turns the rule off.
   */
  minExcluded?: boolean;
}

const fraction = { unit: 'fraction', min: 0, minExcluded: true, max: 1 } as const;
const seconds = (max: number) => ({ unit: 'seconds', min: 0, minExcluded: true, max }) as const;
const cores = { unit: 'cores', min: 0, minExcluded: true, max: 256 } as const;

export const THRESHOLD_DOCS: Readonly<Record<keyof Thresholds, Readonly<ThresholdDoc>>> = Object.freeze({
  generatorDroppedFraction: { ...fraction, meaning: 'The load generator is saturated when the requests it dropped (k6: the iterations it dropped) reach this fraction of those offered.' },
  generatorLagS: { ...seconds(3600), meaning: 'The load generator is saturated when its mean schedule lag over the window reaches this many seconds (the loadlab driver, locally or in a cluster).' },
  generatorCpuCores: { ...cores, meaning: 'The load generator is saturated when its process CPU reaches this many cores (the loadlab driver, per runner; a Node driver\'s event loop is one thread).' },

  hostCpuBusyFraction: { ...fraction, meaning: 'host-cpu is saturated when the machine\'s (in a cluster: the API\'s nodes\') CPUs are busy this fraction of the time, the API\'s event loop waited for a CPU apiCpuWaitFraction of the time, and others than the API took hostCpuOthersFraction of the busy CPU.' },
  hostCpuOthersFraction: { ...fraction, meaning: 'host-cpu needs at least this fraction of the machine\'s or node\'s busy CPU to go to others than the API (the generator, the database, other processes); below it the API itself is what fills the host, and the verdict stays api-cpu.' },
  apiCpuWaitFraction: { ...fraction, meaning: 'host-cpu needs the hottest API replica\'s event-loop thread to have waited for a CPU (ready, not running) this fraction of the time: the API did not get the CPU it asked for.' },

  apiCpuCores: { ...cores, meaning: 'api-cpu is saturated when the hottest API replica\'s process CPU, or the CPU the offered load needs of it (CPU used × offered / served), reaches this many cores (a Node process serves on one thread, so about 1 core is its ceiling).' },
  apiThrottledFraction: { ...fraction, meaning: 'api-cpu is saturated when the API container was CPU-throttled in this fraction of CFS periods (in a cluster, with a CPU limit).' },
  apiCpuLimitFraction: { ...fraction, meaning: 'api-cpu is saturated when the API container\'s CPU reaches this fraction of its CPU limit (in a cluster, when the limit is known).' },

  eventLoopUtilisation: { ...fraction, meaning: 'event-loop is saturated when the hottest replica\'s event loop is busy this fraction of the time.' },
  eventLoopLagS: { ...seconds(60), meaning: 'event-loop is saturated when the hottest replica\'s event-loop lag p99 reaches this many seconds.' },

  poolWaitingActiveFraction: { ...fraction, meaning: 'db-pool is saturated when callers wait for a connection in this fraction of the window\'s points, and the acquire p95 reaches poolAcquireP95S.' },
  poolAcquireP95S: { ...seconds(60), meaning: 'db-pool is saturated when the pool\'s acquire time p95 reaches this many seconds, and callers waited in poolWaitingActiveFraction of the window.' },

  dbHoldMeanS: { ...seconds(60), meaning: 'database is saturated when a statement holds its connection this many seconds on average (query time minus the pool wait).' },
  dbConnectionsFraction: { ...fraction, meaning: 'database is saturated when its backends reach this fraction of max_connections.' },
  dbCpuLimitFraction: { ...fraction, meaning: 'database is saturated when its container\'s CPU reaches this fraction of its CPU limit (in a cluster, when the limit is known).' },
  dbLockWaitFraction: { ...fraction, meaning: 'database is saturated when this fraction of its active backends wait for a lock on average (a transaction holds rows or a table that others need).' },
  dbLongestTransactionS: { ...seconds(86400), meaning: 'database is saturated when a transaction (running or idle in transaction) has been open this many seconds: it holds its locks and keeps vacuum from cleaning up.' },

  gcTimeFraction: { ...fraction, meaning: 'memory-gc is saturated when the hottest replica spends this fraction of wall time in garbage collection.' },
  memoryLimitFraction: { ...fraction, meaning: 'memory-gc is saturated when the API container\'s working set reaches this fraction of its memory limit (in a cluster, when the limit is known).' },

  kneeRatio: { unit: 'fraction', min: 0, max: 1, meaning: 'A stage is past the knee (the SLO breaks there) when it serves less than this fraction of the load offered; 0 turns the rule off.' },
  kneeMarginalGain: { unit: 'fraction', min: 0, max: 1, meaning: 'A step is past the knee (throughput flattens) when it serves less than this fraction of the load it added over the previous step; 0 turns the rule off.' },
  kneeMinStepFraction: { unit: 'fraction', min: 0, max: 10, meaning: 'The flattening rule only judges a step that adds at least this fraction of the previous step\'s offered load (smaller steps are noise).' },

  settleS: { unit: 'seconds', min: 0, max: 3600, meaning: 'Seconds left out at the start of every hold, besides one rate window, while new devices log in and pools and JIT warm up.' },
  rampSkipFraction: { unit: 'fraction', min: 0, max: 1, maxExcluded: true, meaning: 'The fraction of every ramp left out at its start (at least one rate window); the rest is summarised with its fleet size averaged.' },
} satisfies Record<keyof Thresholds, ThresholdDoc>);

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  // 0.5% dropped is beyond any scheduling jitter; the generator could not keep up.
  generatorDroppedFraction: 0.005,
  // A device schedule one second behind changes the offered load the experiment claims.
  generatorLagS: 1,
  generatorCpuCores: 0.9,

  // On a machine of few CPUs the scheduler leaves moments idle while tasks queue on another CPU:
  // 80% busy with the API's loop waiting is contention already.
  hostCpuBusyFraction: 0.8,
  // More than half of the busy CPU went to someone else: giving the API room would change the result.
  hostCpuOthersFraction: 0.5,
  // A tenth of the time ready but not running: on a dedicated core this stays near 0.
  apiCpuWaitFraction: 0.1,

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
  // A healthy ingest waits on a rollup row now and then; a quarter of the active backends waiting
  // on locks all along is contention that decides throughput.
  dbLockWaitFraction: 0.25,
  // The API's own statements end within DB_STATEMENT_TIMEOUT_MS (10 s by default): a transaction
  // open three times that long is someone else's, holding what it locked.
  dbLongestTransactionS: 30,

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
    const doc = THRESHOLD_DOCS[key];
    if (typeof value !== 'number' || !withinBounds(doc, value)) {
      throw new TypeError(`analysis threshold ${key} must be a number ${boundsText(doc)} (${doc.unit}), got ${String(value)}`);
    }
    merged[key] = value;
  }
  return merged;
}
