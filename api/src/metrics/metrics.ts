import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface PoolCounts {
  total: number;
  idle: number;
  waiting: number;
}

/**
 * Every metric the API exposes on GET /metrics. Names carry the `loadlab_api_` prefix (the
 * process/nodejs defaults keep their standard names); label sets are bounded: route templates,
 * never device ids. README.md lists them; the analysis queries them by these names.
 */
@Injectable()
export class ApiMetrics {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'loadlab_api_http_request_duration_seconds',
    help: 'HTTP request duration by route template, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'loadlab_api_http_requests_in_flight',
    help: 'HTTP requests being served right now.',
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'loadlab_api_http_requests_shed_total',
    help: 'Requests refused with 503 to protect the service, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly ingested = new Counter({
    name: 'loadlab_api_measurements_ingested_total',
    help: 'Measurements committed to the database (retries of stored ones are not counted again).',
    registers: [this.registry],
  });
  readonly duplicates = new Counter({
    name: 'loadlab_api_measurements_duplicate_total',
    help: 'Measurements acknowledged but already stored (device retries).',
    registers: [this.registry],
  });
  readonly conflicts = new Counter({
    name: 'loadlab_api_measurements_conflict_total',
    help: 'Measurements refused (409) because a different reading of the same device and device time is stored.',
    registers: [this.registry],
  });
  readonly writeBatchRows = new Histogram({
    name: 'loadlab_api_write_batch_rows',
    help: 'Rows per ingest statement (write batching coalesces concurrent requests).',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
    registers: [this.registry],
  });
  readonly pendingWrites = new Gauge({
    name: 'loadlab_api_write_queue_rows',
    help: 'Measurement rows waiting for an ingest statement.',
    registers: [this.registry],
  });
  readonly queryDuration = new Histogram({
    name: 'loadlab_api_db_query_duration_seconds',
    help: 'Database statement duration by query name, including the connection acquire wait.',
    labelNames: ['query', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly poolAcquire = new Histogram({
    name: 'loadlab_api_db_pool_acquire_seconds',
    help: 'Time spent waiting for a connection from the pool.',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly poolMax = new Gauge({ name: 'loadlab_api_db_pool_max', help: 'Configured pool size (DB_POOL_SIZE).', registers: [this.registry] });
  readonly poolTotal = new Gauge({
    name: 'loadlab_api_db_pool_connections',
    help: 'Open pool connections.',
    registers: [this.registry],
    collect: () => this.collectPool(),
  });
  readonly poolIdle = new Gauge({ name: 'loadlab_api_db_pool_idle', help: 'Idle pool connections.', registers: [this.registry] });
  readonly poolWaiting = new Gauge({ name: 'loadlab_api_db_pool_waiting', help: 'Callers waiting for a pool connection.', registers: [this.registry] });
  readonly commandPolls = new Counter({
    name: 'loadlab_api_command_polls_total',
    help: 'GET /v1/command polls by where they were answered: memory (no command could be due) or database.',
    labelNames: ['answered'] as const,
    registers: [this.registry],
  });
  readonly commandIndexDevices = new Gauge({
    name: 'loadlab_api_command_index_devices',
    help: 'Devices the poll index holds as possibly having a pending command.',
    registers: [this.registry],
    collect: () => this.collectCommandIndex(),
  });
  readonly commandIndexTrusted = new Gauge({
    name: 'loadlab_api_command_index_trusted',
    help: '1 while polls may be answered from memory; 0 while every poll asks the database (the control connection is down, or COMMAND_INDEX=false).',
    registers: [this.registry],
  });
  readonly eventLoopActive = new Counter({
    name: 'loadlab_api_event_loop_active_seconds_total',
    help: 'Time the event loop spent busy; rate() of it is event-loop utilisation (0..1).',
    registers: [this.registry],
    collect: () => this.collectEventLoop(),
  });

  /**
   * Absent where the kernel does not keep scheduler statistics (not Linux, or no schedstat), so a
   * missing series means "not measured", never 0.
   */
  readonly cpuWait = readRunQueueWaitS() === undefined
    ? undefined
    : new Counter({
        name: 'loadlab_api_cpu_wait_seconds_total',
        help: 'Time the event-loop thread was ready to run but waited for a CPU (/proc/self/schedstat); rate() of it is the share of time the API did not get the CPU it asked for.',
        registers: [this.registry],
        collect: () => this.collectCpuWait(),
      });

  private lastElu = performance.eventLoopUtilization();
  private lastWaitS = readRunQueueWaitS() ?? 0;
  private readPool: () => PoolCounts | undefined = () => undefined;
  private readCommandIndex: () => { devices: number; trusted: boolean } = () => ({ devices: 0, trusted: false });

  constructor() {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
  }

  /** The database pool to report: its size, and its counters, read at scrape time. */
  trackPool(max: number, read: () => PoolCounts): void {
    this.poolMax.set(max);
    this.readPool = read;
  }

  /** The poll index to report, read at scrape time. */
  trackCommandIndex(read: () => { devices: number; trusted: boolean }): void {
    this.readCommandIndex = read;
  }

  private collectCommandIndex(): void {
    const { devices, trusted } = this.readCommandIndex();
    this.commandIndexDevices.set(devices);
    this.commandIndexTrusted.set(trusted ? 1 : 0);
  }

  // Sampled at scrape time, so an idle service does no metrics work between scrapes.
  private collectPool(): void {
    const pool = this.readPool();
    if (!pool) return;
    this.poolTotal.set(pool.total);
    this.poolIdle.set(pool.idle);
    this.poolWaiting.set(pool.waiting);
  }

  private collectCpuWait(): void {
    const now = readRunQueueWaitS();
    if (now === undefined || !this.cpuWait) return;
    this.cpuWait.inc(Math.max(0, now - this.lastWaitS));
    this.lastWaitS = now;
  }

  private collectEventLoop(): void {
    const now = performance.eventLoopUtilization();
    this.eventLoopActive.inc(performance.eventLoopUtilization(now, this.lastElu).active / 1000);
    this.lastElu = now;
  }
}

/**
 * Seconds the main thread (the event loop) has spent runnable but waiting on a run queue: the second
 * field of /proc/self/schedstat, which describes the thread-group leader. CPU time alone cannot tell
 * "the code needs a core" from "the code did not get one"; this can.
 */
function readRunQueueWaitS(): number | undefined {
  try {
    const waitNs = Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(waitNs) ? waitNs / 1e9 : undefined;
  } catch {
    return undefined;
  }
}
