/**
 * `npm run bench:api` (or, after a build, `node operator/dist/bench/api/main.js [--quick] [--duration S]
 * [--max-rate R] ...`, see --help): drives the API on loopback with the device mix and prints figures
 * measured side by side in one run.
 *
 *  1. Highest sustainable request rate (p99 < 100 ms, no errors, the generator kept its schedule:
 *     nothing dropped, few late) of the NestJS API and of a minimal raw Fastify + pg server running
 *     the same SQL (api/bench/raw-server.ts), each in its own process, one at a time, on a freshly
 *     reset schema; and their ratio; and the same for the API with write batching and the poll index
 *     off (the raw server's statements exactly). The mix: per device and interval one POST /v1/measurements and
 *     one GET /v1/command, for N devices (default 200,000, each with its own token).
 *  2. Measurement ingest (rows/s) through the API at its maximum vs a batched-insert ceiling on the
 *     same database: the API's INGEST_SQL itself in 500-row batches from 4 concurrent clients.
 *  3. GET /v1/stats latency with 10k and with 1M stored measurements (same reporting devices), ratio.
 *
 * The load generator is the local driver's engine (undici, open model at a constant rate: the
 * traffic model's schedule), in its own process on the same 2-core machine; each step reports the
 * CPU used by the server, PostgreSQL, the generator, the benchmark and everything else, so a reader
 * can see what limited it. A benchmark, not a test: it exits 0 whatever the figures; 1 when it could
 * not run, 2 for a bad command line, 130 when interrupted.
 *
 * Modules: options (command line), servers (the processes under test), database (the throwaway
 * PostgreSQL), step-plan + generator (the load, in the generator process) and load (one step, its
 * CPU accounting and verdict), search, ingest-ceiling, stats-latency, profile, report. This file is
 * the only one that acts when loaded, and only as the program's entry point.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { snapshot, usageBetween } from '@loadlab/sandbox/procstat';
import { ManagedProcess } from '../../src/local/processes.js';
import type { BenchContext } from './context.js';
import { createLog, fmt, type Log } from './output.js';
import { BenchDatabase } from './database.js';
import { GENERATOR_ROLE, serveGenerator } from './generator.js';
import { CEILING_CLIENTS, ingestCeiling } from './ingest-ceiling.js';
import { Generator, MAX_LATE_FRACTION, P99_LIMIT_MS } from './load.js';
import { parseOptions, USAGE, UsageError, type BenchOptions } from './options.js';
import { profileMode } from './profile.js';
import { QuietGate } from './quiet.js';
import { printSummary, type Results } from './report.js';
import { searchMaxRate, type Search } from './search.js';
import { SERVER_KINDS, SERVER_LABEL, type ServerKind } from './servers.js';
import { statsLatency } from './stats-latency.js';

const EXIT = { ran: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** The benchmark's command line to its exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench: ${error.message}\n${USAGE}`);
    return EXIT.usage;
  }
  if (options === 'help') {
    console.log(USAGE);
    return EXIT.ran;
  }
  return runBenchmark(options);
}

/** Everything the run started, removed on every way out: normal end, error, signal. */
class Cleanup {
  db: BenchDatabase | undefined;
  workDir: string | undefined;
  private running: Promise<void> | undefined;

  run(): Promise<void> {
    return (this.running ??= (async () => {
      await Generator.stopAll();
      await ManagedProcess.stopAll();
      await this.db?.destroy().catch(() => undefined);
      if (this.workDir) await rm(this.workDir, { recursive: true, force: true }).catch(() => undefined);
    })());
  }

  get started(): boolean {
    return this.running !== undefined;
  }
}

async function runBenchmark(options: BenchOptions): Promise<number> {
  const log = createLog();
  const cleanup = new Cleanup();
  // Whatever goes wrong, children and the throwaway database must not outlive the benchmark.
  const interrupted = new Promise<number>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        log(`${signal}: stopping children and removing the database`);
        void cleanup.run().finally(() => resolve(EXIT.interrupted));
      });
    }
    for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
      process.on(event, (error: unknown) => {
        if (cleanup.started) return;
        console.error(`bench: could not run: ${describe(error)}`);
        void cleanup.run().finally(() => resolve(EXIT.failed));
      });
    }
  });
  const work = (async () => {
    try {
      await measure(options, cleanup, log);
      await cleanup.run();
      return EXIT.ran;
    } catch (error) {
      if (cleanup.started) return EXIT.interrupted; // a signal is cleaning up under us
      console.error(`bench: could not run: ${describe(error)}`);
      await cleanup.run();
      return EXIT.failed;
    }
  })();
  return Promise.race([work, interrupted]);
}

async function measure(options: BenchOptions, cleanup: Cleanup, log: Log): Promise<void> {
  if (!process.version.startsWith('v24')) log(`warning: running on Node ${process.version}; the project targets Node 24 (node_modules/.bin/node)`);
  log(`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}; ${options.quick ? 'QUICK mode' : 'full mode'}`);
  const workDir = (cleanup.workDir = await mkdtemp(join(tmpdir(), 'loadlab-bench-')));
  const idleFrom = snapshot({});
  await sleep(2000);
  const idle = usageBetween(idleFrom, snapshot({}));
  log(
    `before the start, other processes use ${fmt(idle.percent.machine ?? 0)} % of a core` +
      ((idle.percent.machine ?? 0) >= 15 ? ': WARNING, the machine is not quiet, figures will be lower and noisier' : ''),
  );
  const db = (cleanup.db = await BenchDatabase.start(CEILING_CLIENTS + 1));
  log(`PostgreSQL ${db.version} at ${db.url} (throwaway), schema migrated by the API's migrations`);
  const ctx: BenchContext = { options, db, quiet: new QuietGate(log), log, workDir };
  log(
    `${fmt(options.devices)} devices; steps: ${options.warmupS} s warm-up + ${options.measureS} s measured; ` +
      `pass = p99 < ${P99_LIMIT_MS} ms, 0 errors, nothing dropped and <= ${MAX_LATE_FRACTION * 100} % late`,
  );

  if (options.profileRate !== undefined) {
    await profileMode(ctx, options.profileRate);
    return;
  }

  const searches: Partial<Record<ServerKind, Search>> = {};
  for (const kind of SERVER_KINDS) {
    if (options.only && options.only !== kind) continue;
    log(`=== ${SERVER_LABEL[kind]}: searching the highest sustainable rate (freshly reset schema, own process, pool ${options.pool})`);
    const s = (searches[kind] = await searchMaxRate(ctx, kind));
    log(
      `=== ${SERVER_LABEL[kind]}: max ${s.best ? `${fmt(s.best.rate)} req/s` : 'none passed'}${s.cappedAtMax ? ' (reached --max-rate)' : ''}; ` +
        `${fmt(s.stored)} measurements stored, ${fmt(s.acknowledged)} acknowledged`,
    );
  }
  const ceiling = options.skipIngest ? undefined : await ingestCeiling(ctx, options.quick ? 3 : 5);
  // The API's own ingest capacity: the mix's maximum is capped by its polls too.
  let ingest: Search | undefined;
  if (ceiling && (!options.only || options.only === 'nest')) {
    log(`=== ${SERVER_LABEL.nest}: searching the highest sustainable rate of POST /v1/measurements alone`);
    ingest = await searchMaxRate(ctx, 'nest', 'ingest');
  }
  const stats = options.skipStats ? undefined : await statsLatency(ctx);
  const results: Results = { options, postgresVersion: db.version, searches, ...(ceiling ? { ceiling } : {}), ...(ingest ? { ingest } : {}), ...(stats ? { stats } : {}) };
  printSummary(results);
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

// The program's entry point only: importing this module (a test, another script) does nothing.
// Forked with the generator role, the process serves the benchmark's steps until it disconnects.
if (import.meta.main) {
  if (process.argv[2] === GENERATOR_ROLE) serveGenerator();
  // Exit explicitly: a pool's idle timer or a lingering socket must not keep a finished run alive.
  else process.exit(await main(process.argv.slice(2)));
}
