import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { PostgresCluster } from '@loadlab/sandbox/postgres';
import { childrenOf, processTicks } from '@loadlab/sandbox/procstat';
import { prepareDatabase } from '../../src/dataset/prepare.js';
import { apiFile } from './api-package.js';
import { fmt, type Log } from './output.js';
import { benchExperiment } from './step-plan.js';

const run = promisify(execFile);

/*
 * The benchmark's throwaway PostgreSQL (fsync on, like production), with the API's schema applied
 * by the API's own migration entry point run as a process, and what the benchmark does to it
 * between steps: reset the fleet, wait for it to settle, sample what its backends are doing.
 */
export class BenchDatabase {
  private constructor(
    private readonly cluster: PostgresCluster,
    /** The benchmark's own connections (resets, sampling, the ingest ceiling's clients). */
    readonly admin: pg.Pool,
    readonly version: string,
  ) {}

  static async start(adminConnections: number): Promise<BenchDatabase> {
    const cluster = await PostgresCluster.start();
    try {
      await run(process.execPath, [apiFile('@loadlab/api/migrate')], { env: { ...process.env, DATABASE_URL: cluster.url } });
      const admin = new pg.Pool({ connectionString: cluster.url, max: adminConnections });
      const { rows } = await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
      return new BenchDatabase(cluster, admin, rows[0]!.v);
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
  }

  get url(): string {
    return this.cluster.url;
  }

  /** PostgreSQL's CPU: the postmaster, its live children (backends, walwriter, ...) and its reaped ones. */
  readonly ticks = (): number => {
    const pid = this.postmasterPid();
    if (!pid) return 0;
    return processTicks(pid, true) + childrenOf(pid).reduce((sum, child) => sum + processTicks(child), 0);
  };

  private postmasterPid(): number | undefined {
    try {
      return Number(readFileSync(join(this.cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
    } catch {
      return undefined;
    }
  }

  /**
   * Empty tables and the fleet registered as local mode registers it (dataset/prepare.ts: device
   * index i gets id i + 1, which the generator's tokens name); with commands, 1 % of the devices
   * have one due. Then fresh statistics and a checkpoint, so no step inherits the last one's work.
   */
  async resetFleet(devices: number, withCommands: boolean, log: Log): Promise<void> {
    await prepareDatabase(this.url, benchExperiment(devices), log);
    if (withCommands) {
      await this.admin.query(`INSERT INTO command (device_id, charge_on, fill_on, flush_litres) SELECT id, true, null, 0.5 FROM device WHERE id % 100 = 0`);
    }
    await this.admin.query('VACUUM ANALYZE');
    await this.admin.query('CHECKPOINT');
  }

  /** Waits (bounded) until no statement is running, so one step's backlog does not land on the next. */
  async settle(ms: number): Promise<void> {
    await sleep(ms);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const { rows } = await this.admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()`,
      );
      if (rows[0]!.n === 0) return;
      await sleep(250);
    }
  }

  async measurementCount(): Promise<number> {
    const { rows } = await this.admin.query<{ n: string }>('SELECT count(*) AS n FROM measurement');
    return Number(rows[0]!.n);
  }

  waitSampler(): WaitSampler {
    return new WaitSampler(this.admin);
  }

  async destroy(): Promise<void> {
    await this.admin.end().catch(() => undefined);
    await this.cluster.destroy();
  }
}

/**
 * Samples what PostgreSQL's client backends are doing (pg_stat_activity, every 100 ms) while a step
 * is measured: on CPU (no wait event) or waiting on a lock, the WAL, I/O or the client.
 */
export class WaitSampler {
  private readonly counts = new Map<string, number>();
  private samples = 0;
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly admin: pg.Pool) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.admin
        .query<{ w: string; n: number }>(
          `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w, count(*)::int AS n FROM pg_stat_activity
           WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1`,
        )
        .then(({ rows }) => {
          this.samples++;
          for (const { w, n } of rows) {
            this.counts.set(w, (this.counts.get(w) ?? 0) + n);
            this.active += n;
          }
        })
        .catch(() => undefined)
        .finally(() => (this.busy = false));
    }, 100);
  }

  /** Stops sampling; the summary, e.g. "3.2 statements running on average (CPU 60%, LWLock:WALWrite 30%)". */
  stop(): string {
    clearInterval(this.timer);
    if (this.samples === 0) return 'n/a';
    const top = [...this.counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4);
    const parts = top.map(([w, n]) => `${w} ${fmt((n / Math.max(1, this.active)) * 100)}%`);
    return `${fmt(this.active / this.samples, 1)} statements running on average (${parts.join(', ') || 'idle'})`;
  }
}
