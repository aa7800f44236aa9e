import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { ApiMetrics } from '../metrics/metrics.js';
import { ControlConnection } from './control-connection.js';
import { poolConfig, type DataSourceSettings } from './data-source.js';

/** The database could not be reached: callers answer 503 with Retry-After, never 500 or 2xx. */
export class DatabaseUnavailableError extends Error {}

/**
 * The database is up but gave up on this statement (statement_timeout, deadlock, serialization
 * failure, lock timeout): nothing was stored and the same request may well succeed a moment
 * later, so callers answer 503 with Retry-After as for an outage. `code` keeps the SQLSTATE for
 * callers that retry some of them (pgCode() reads it).
 */
export class DatabaseBusyError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', // admin shutdown, crash shutdown, cannot connect now
  '08000', '08001', '08003', '08004', '08006', // connection exceptions
  '53300', // too many connections
]);

const BUSY_CODES = new Set([
  '57014', // query_canceled: DB_STATEMENT_TIMEOUT_MS elapsed (or a cancel request)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available (lock_timeout)
]);

export function isUnavailable(error: unknown): boolean {
  const code = pgCode(error);
  if (code && UNAVAILABLE_CODES.has(code)) return true;
  const message = String((error as { message?: string } | undefined)?.message ?? '');
  return /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|Cannot use a pool after calling end|Query read timeout/i.test(message);
}

/** SQLSTATE of a PostgreSQL error (or the errno code of a socket error). */
export function pgCode(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}

export interface DatabaseSettings extends DataSourceSettings {
  /** QUERY_DELAY_MS: a slow database, simulated by pg_sleep before every statement. */
  queryDelayMs: number;
}

/**
 * The API's request statements, on a pg Pool the API creates and owns (TypeORM only runs the
 * migrations): per-query metrics, the pool's acquire time and counters, the QUERY_DELAY_MS knob
 * (simulated inside the database on the statement's own connection, so the connection is held
 * exactly as a slow query would hold it) and error classification.
 */
export class Database {
  private readonly pool: pg.Pool;
  /**
   * Readiness pings and LISTEN, on a connection of their own (control-connection.ts says why).
   * Features that listen call `control.listen()` while Nest builds them and connect() opens it;
   * without listeners it opens at the first readiness ping.
   */
  readonly control: ControlConnection;
  private readonly queryDelayMs: number;

  constructor(
    settings: DatabaseSettings,
    private readonly metrics: ApiMetrics,
  ) {
    this.pool = new pg.Pool(poolConfig(settings));
    // The pool's settings (timeouts, keep-alive) for one client; the pool-only ones are ignored.
    this.control = new ControlConnection({ ...poolConfig(settings), application_name: `${settings.applicationName ?? 'loadlab-api'}-control` });
    // An idle connection that breaks (the database restarted) is dropped and replaced on demand;
    // the requests that need the database meanwhile get its error. Unhandled, it would crash us.
    this.pool.on('error', () => undefined);
    // pg-pool listens for a client's errors only while it is idle. A connection that breaks while
    // a request holds it (the database killed mid-statement) emits 'error' besides failing its
    // query: with nobody listening that is an uncaught exception, which ends the process. The
    // query's own rejection is what the request answers with (503).
    const ignoreErrors = (client: pg.PoolClient) => void client.on('error', () => undefined);
    this.pool.on('connect', ignoreErrors);
    this.queryDelayMs = settings.queryDelayMs;
    metrics.trackPool(settings.poolSize, () => ({ total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount }));
  }

  /** `name` labels the metrics and names the prepared statement: one name, one SQL text. */
  async run<Row = Record<string, unknown>>(name: string, sql: string, params: unknown[] = []): Promise<Row[]> {
    const end = this.metrics.queryDuration.startTimer({ query: name });
    let client: pg.PoolClient | undefined;
    try {
      client = await this.acquire();
      if (this.queryDelayMs > 0) await client.query({ name: 'query_delay', text: 'SELECT pg_sleep($1)', values: [this.queryDelayMs / 1000] });
      // Named: each connection prepares the statement once and then only binds and executes it
      // (the benchmark measured 720 µs of PostgreSQL CPU per ingest re-planned, 290 µs prepared).
      const result = await client.query({ name, text: sql, values: params });
      end({ outcome: 'ok' });
      return result.rows as Row[];
    } catch (error) {
      end({ outcome: 'error' });
      // A broken connection must not go back to the pool.
      if (client && isUnavailable(error)) {
        client.release(error as Error);
        client = undefined;
      }
      if (isUnavailable(error)) throw new DatabaseUnavailableError(`database unavailable: ${(error as Error).message}`);
      // The connection itself is fine after these: it goes back to the pool as usual.
      const code = pgCode(error);
      if (code && BUSY_CODES.has(code)) throw new DatabaseBusyError(`database busy, try again: ${(error as Error).message}`, code);
      throw error;
    } finally {
      client?.release();
    }
  }

  /** Whether the database answers within `timeoutMs`, on the control connection. */
  ping(timeoutMs: number): Promise<boolean> {
    return this.control.ping(timeoutMs);
  }

  /**
   * Opens a first connection, retrying while the database is not reachable yet (it may start
   * after the API), so the process listens only once it can serve.
   */
  async connect(onRetry: (attempt: number, error: Error) => void): Promise<void> {
    await connectWithRetry(async () => (await this.pool.connect()).release(), onRetry);
    if (this.control.hasListeners) await this.control.start();
  }

  /** Closes every connection; statements still running finish first. */
  async end(): Promise<void> {
    await Promise.all([this.pool.end(), this.control.close()]);
  }

  // pg-pool counts waiting callers but not how long they wait: the wait is timed around our own
  // connect() call, the one way the API acquires a connection.
  private async acquire(): Promise<pg.PoolClient> {
    const end = this.metrics.poolAcquire.startTimer();
    try {
      return await this.pool.connect();
    } finally {
      end();
    }
  }
}

/** Retries `connect` for about two minutes (30 attempts, backing off up to 5 s), then gives up. */
export async function connectWithRetry(connect: () => Promise<unknown>, onRetry: (attempt: number, error: Error) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await connect();
      return;
    } catch (error) {
      if (attempt >= 30) throw error;
      onRetry(attempt, error as Error);
      await sleep(Math.min(5000, 200 * attempt));
    }
  }
}
