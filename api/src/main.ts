import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import { DeviceTokens } from './auth/device-token.js';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { connectWithRetry, Database, type DatabaseSettings } from './db/database.js';
import { createDataSource, migrate } from './db/data-source.js';
import { Lifecycle } from './health/lifecycle.js';
import { ErrorFilter } from './http/error.filter.js';
import { installRequestHooks } from './http/request-hooks.js';
import { createLogger, NestPinoLogger, type Logger } from './logger.js';
import { MeasurementWriter } from './measurements/measurement-writer.js';
import { ApiMetrics } from './metrics/metrics.js';

export interface RunningApi {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

/** Starts the API; resolves once it listens. Used by the process entry point and by the tests. */
export async function startApi(config: Config): Promise<RunningApi> {
  const log = createLogger(config.LOG_LEVEL);
  const lifecycle = new Lifecycle();
  const settings = databaseSettings(config);
  const onRetry = (attempt: number, error: Error) => log.warn({ attempt, error: error.message }, 'database not reachable yet; retrying');
  if (config.MIGRATE_ON_START) await migrateOnStart(settings, log, onRetry);

  const metrics = new ApiMetrics();
  const db = new Database(settings, metrics);
  await db.connect(onRetry);
  const writer = new MeasurementWriter(db, metrics, {
    maxBatchRows: config.WRITE_BATCH_MAX_ROWS,
    maxConcurrency: config.WRITE_BATCH_MAX_CONCURRENCY,
    maxPendingRows: config.MAX_PENDING_WRITES,
  });
  const tokens = new DeviceTokens(config.TOKEN_SECRET, config.TOKEN_TTL_SECONDS);

  const adapter = new FastifyAdapter({ bodyLimit: config.MAX_BODY_BYTES, return503OnClosing: true });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.with({ config, metrics, db, writer, tokens, lifecycle }), adapter, {
    logger: new NestPinoLogger(log),
  });
  installRequestHooks(app.getHttpAdapter().getInstance(), metrics, { maxInFlight: config.MAX_IN_FLIGHT, cpuCostMs: config.CPU_COST_MS });
  app.useGlobalFilters(new ErrorFilter(metrics));
  await app.listen(config.PORT, config.HOST);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  log.info({ port, poolSize: config.DB_POOL_SIZE }, 'listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      lifecycle.shuttingDown = true;
      // Stop accepting, let in-flight requests finish, then flush queued writes, then the pool.
      log.info('shutting down: no new requests; finishing in-flight ones');
      // Node closes idle keep-alive sockets only once, when close() starts; sockets that finish a
      // request afterwards would hold the close open until the client hangs up. Reap them as they
      // go idle (requests arriving meanwhile get Fastify's 503 with Connection: close).
      const server = app.getHttpServer();
      const reaper = setInterval(() => server.closeIdleConnections(), 50);
      await app.close().finally(() => clearInterval(reaper));
      log.info('http server closed; flushing queued writes');
      await writer.drain();
      await db.end();
      log.info('stopped');
    })());
  return { app, url: `http://127.0.0.1:${port}`, close };
}

function databaseSettings(config: Config): DatabaseSettings {
  return {
    url: config.DATABASE_URL,
    poolSize: config.DB_POOL_SIZE,
    acquireTimeoutMs: config.DB_POOL_ACQUIRE_TIMEOUT_MS,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    queryDelayMs: config.QUERY_DELAY_MS,
  };
}

/**
 * Migrations run on a DataSource of their own, with one connection, closed before the request
 * pool opens any: a database that takes a single connection (PGlite in the tests) would otherwise
 * wait forever, and while serving the process holds DB_POOL_SIZE connections, no more.
 */
async function migrateOnStart(settings: DatabaseSettings, log: Logger, onRetry: (attempt: number, error: Error) => void): Promise<void> {
  const dataSource = createDataSource({ ...settings, poolSize: 1 });
  await connectWithRetry(() => dataSource.initialize(), onRetry);
  try {
    const applied = await migrate(dataSource);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  } finally {
    await dataSource.destroy();
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`loadlab-api: ${error.message}\nSee README.md (API configuration) for every variable.\n`);
      process.exit(2);
    }
    throw error;
  }
  const api = await startApi(config);
  const onSignal = (signal: string) => {
    const timer = setTimeout(() => {
      process.stderr.write(`loadlab-api: shutdown took longer than ${config.SHUTDOWN_GRACE_MS} ms after ${signal}; exiting\n`);
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    timer.unref();
    api.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`loadlab-api: shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`loadlab-api: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
