import type { Resource, Source, Unit } from './queries.js';
import type { LoadEngine } from '../schema/spec.js';
import type { Thresholds } from '../schema/thresholds.js';

/*
 * The USE table: for every resource, which stage measure tells its utilisation, its saturation
 * and its errors, and which of them has a threshold that counts as "saturated". A measure is a
 * key of StageSummary.measures: `<catalog query>.<statistic>` (mean, max, active, p50/p95/p99) or
 * a derived ratio computed by stages.ts (e.g. generator_dropped_fraction).
 */

export type SaturableResource = Exclude<Resource, 'traffic'>;
export type UseCategory = 'utilisation' | 'saturation' | 'errors';

export interface MeasureInfo {
  key: string;
  label: string;
  unit: Unit;
  resource: SaturableResource;
  use: UseCategory;
  /** value >= threshold means saturated. */
  threshold?: keyof Thresholds;
  /** The catalog query the value comes from, for evidence. */
  query: string;
  /** Only meaningful with this source. */
  source?: Source;
  /** Only meaningful with this load generator. */
  engine?: LoadEngine;
}

export const SATURABLE_RESOURCES: readonly SaturableResource[] = ['load-generator', 'host-cpu', 'api-cpu', 'event-loop', 'db-pool', 'database', 'memory-gc'];

/** Roles whose CPU the host-cpu row shows (`host_cpu_share.<role>`); "other" is the rest of the machine or node. */
export const CPU_SHARE_ROLES = ['api', 'database', 'generator', 'monitoring', 'other'] as const;

export const USE_MEASURES: readonly MeasureInfo[] = [
  // load generator
  { key: 'generator_cpu.mean', label: 'driver CPU', unit: 'cores', resource: 'load-generator', use: 'utilisation', threshold: 'generatorCpuCores', query: 'generator_cpu', engine: 'loadlab' },
  { key: 'generator_cpu.mean', label: 'k6 pod CPU', unit: 'cores', resource: 'load-generator', use: 'utilisation', query: 'generator_cpu', engine: 'k6' },
  { key: 'generator_vus.mean', label: 'k6 VUs in use', unit: 'count', resource: 'load-generator', use: 'utilisation', query: 'generator_vus', engine: 'k6' },
  { key: 'generator_dropped_fraction', label: 'dropped / offered', unit: 'ratio', resource: 'load-generator', use: 'saturation', threshold: 'generatorDroppedFraction', query: 'generator_dropped' },
  { key: 'generator_schedule_lag.mean', label: 'schedule lag', unit: 'seconds', resource: 'load-generator', use: 'saturation', threshold: 'generatorLagS', query: 'generator_schedule_lag', engine: 'loadlab' },
  { key: 'generator_late_fraction', label: 'sent late / sent', unit: 'ratio', resource: 'load-generator', use: 'saturation', query: 'generator_late', engine: 'loadlab' },
  { key: 'generator_transport_error_fraction', label: 'transport errors / responses', unit: 'ratio', resource: 'load-generator', use: 'errors', query: 'generator_responses' },
  // host CPU: the machine (local) or the API's nodes (cluster), shared with everything on them
  { key: 'host_cpu_busy.mean', label: 'CPU busy (machine or API node)', unit: 'ratio', resource: 'host-cpu', use: 'utilisation', threshold: 'hostCpuBusyFraction', query: 'host_cpu_busy' },
  { key: 'host_cpu_others_fraction', label: 'busy CPU taken by others than the API', unit: 'ratio', resource: 'host-cpu', use: 'utilisation', threshold: 'hostCpuOthersFraction', query: 'host_cpu_by_role' },
  { key: 'host_cpu_share.api', label: 'CPU: API', unit: 'cores', resource: 'host-cpu', use: 'utilisation', query: 'host_cpu_by_role' },
  { key: 'host_cpu_share.database', label: 'CPU: database', unit: 'cores', resource: 'host-cpu', use: 'utilisation', query: 'host_cpu_by_role' },
  { key: 'host_cpu_share.generator', label: 'CPU: load generator', unit: 'cores', resource: 'host-cpu', use: 'utilisation', query: 'host_cpu_by_role' },
  { key: 'host_cpu_share.monitoring', label: 'CPU: Prometheus and exporters', unit: 'cores', resource: 'host-cpu', use: 'utilisation', query: 'host_cpu_by_role', source: 'local' },
  { key: 'host_cpu_share.other', label: 'CPU: everything else', unit: 'cores', resource: 'host-cpu', use: 'utilisation', query: 'host_cpu_by_role' },
  { key: 'api_cpu_wait.mean', label: 'API event loop waiting for a CPU (hottest replica)', unit: 'ratio', resource: 'host-cpu', use: 'saturation', threshold: 'apiCpuWaitFraction', query: 'api_cpu_wait' },
  { key: 'host_cpu_pressure.mean', label: 'CPU pressure (some task waiting)', unit: 'ratio', resource: 'host-cpu', use: 'saturation', query: 'host_cpu_pressure', source: 'local' },
  { key: 'host_load_per_cpu.mean', label: 'load average per CPU', unit: 'ratio', resource: 'host-cpu', use: 'saturation', query: 'host_load_per_cpu', source: 'local' },
  // API CPU
  { key: 'api_cpu.mean', label: 'API CPU (hottest replica)', unit: 'cores', resource: 'api-cpu', use: 'utilisation', threshold: 'apiCpuCores', query: 'api_cpu' },
  { key: 'api_cpu_demand', label: 'API CPU the offered load needs (used × offered / served)', unit: 'cores', resource: 'api-cpu', use: 'utilisation', threshold: 'apiCpuCores', query: 'api_cpu' },
  { key: 'api_cpu_limit_fraction.mean', label: 'API CPU / limit', unit: 'ratio', resource: 'api-cpu', use: 'utilisation', threshold: 'apiCpuLimitFraction', query: 'api_cpu_limit_fraction', source: 'kubernetes' },
  { key: 'api_cpu_throttled.mean', label: 'CFS periods throttled', unit: 'ratio', resource: 'api-cpu', use: 'saturation', threshold: 'apiThrottledFraction', query: 'api_cpu_throttled', source: 'kubernetes' },
  // event loop
  { key: 'event_loop_utilisation.mean', label: 'event-loop utilisation', unit: 'ratio', resource: 'event-loop', use: 'utilisation', threshold: 'eventLoopUtilisation', query: 'event_loop_utilisation' },
  { key: 'event_loop_lag_p99.mean', label: 'event-loop lag p99', unit: 'seconds', resource: 'event-loop', use: 'saturation', threshold: 'eventLoopLagS', query: 'event_loop_lag_p99' },
  { key: 'api_in_flight.mean', label: 'requests in flight', unit: 'count', resource: 'event-loop', use: 'saturation', query: 'api_in_flight' },
  { key: 'api_shed.mean', label: 'requests shed', unit: 'rps', resource: 'event-loop', use: 'errors', query: 'api_shed' },
  // DB pool
  { key: 'pool_busy_fraction.mean', label: 'pool connections busy', unit: 'ratio', resource: 'db-pool', use: 'utilisation', query: 'pool_busy_fraction' },
  { key: 'pool_waiting.active', label: 'time with callers waiting', unit: 'ratio', resource: 'db-pool', use: 'saturation', threshold: 'poolWaitingActiveFraction', query: 'pool_waiting' },
  { key: 'pool_acquire.p95', label: 'pool acquire p95', unit: 'seconds', resource: 'db-pool', use: 'saturation', threshold: 'poolAcquireP95S', query: 'pool_acquire' },
  { key: 'pool_waiting.mean', label: 'callers waiting', unit: 'count', resource: 'db-pool', use: 'saturation', query: 'pool_waiting' },
  // database
  { key: 'db_cpu_limit_fraction.mean', label: 'database CPU / limit', unit: 'ratio', resource: 'database', use: 'utilisation', threshold: 'dbCpuLimitFraction', query: 'db_cpu_limit_fraction', source: 'kubernetes' },
  { key: 'db_active.mean', label: 'active backends', unit: 'count', resource: 'database', use: 'utilisation', query: 'db_active' },
  { key: 'db_hold_time.mean', label: 'connection hold time (query − wait)', unit: 'seconds', resource: 'database', use: 'saturation', threshold: 'dbHoldMeanS', query: 'db_hold_time' },
  { key: 'db_connections_fraction.max', label: 'backends / max_connections', unit: 'ratio', resource: 'database', use: 'saturation', threshold: 'dbConnectionsFraction', query: 'db_connections_fraction' },
  { key: 'db_lock_wait_fraction.mean', label: 'active backends waiting for a lock', unit: 'ratio', resource: 'database', use: 'saturation', threshold: 'dbLockWaitFraction', query: 'db_lock_wait_fraction' },
  { key: 'db_longest_transaction.max', label: 'oldest open transaction', unit: 'seconds', resource: 'database', use: 'saturation', threshold: 'dbLongestTransactionS', query: 'db_longest_transaction' },
  { key: 'db_longest_active.max', label: 'longest active transaction', unit: 'seconds', resource: 'database', use: 'saturation', query: 'db_longest_active' },
  { key: 'db_query.p95', label: 'query p95 (incl. wait)', unit: 'seconds', resource: 'database', use: 'saturation', query: 'db_query' },
  { key: 'db_query_errors.mean', label: 'failed statements', unit: 'rps', resource: 'database', use: 'errors', query: 'db_query_errors' },
  { key: 'db_deadlocks.mean', label: 'deadlocks', unit: 'rps', resource: 'database', use: 'errors', query: 'db_deadlocks' },
  // memory / GC
  { key: 'heap_used_fraction.max', label: 'heap used / allocated', unit: 'ratio', resource: 'memory-gc', use: 'utilisation', query: 'heap_used_fraction' },
  { key: 'memory_limit_fraction.max', label: 'working set / memory limit', unit: 'ratio', resource: 'memory-gc', use: 'utilisation', threshold: 'memoryLimitFraction', query: 'memory_limit_fraction', source: 'kubernetes' },
  { key: 'gc_time_fraction.mean', label: 'time in GC', unit: 'ratio', resource: 'memory-gc', use: 'saturation', threshold: 'gcTimeFraction', query: 'gc_time_fraction' },
];

export function measuresFor(source: Source, engine: LoadEngine): MeasureInfo[] {
  return USE_MEASURES.filter((measure) => (measure.source === undefined || measure.source === source) && (measure.engine === undefined || measure.engine === engine));
}
