import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { connectWithRetry } from './db/database.js';
import { databaseSettings } from './db/database.module.js';
import { createDataSource, migrate } from './db/data-source.js';
import { installRequestHooks } from './http/request-hooks.js';
import { createLogger, NestPinoLogger, type Logger } from './logger.js';
import { ApiMetrics } from './metrics/metrics.js';

export interface RunningApi {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

/** Starts the API; resolves once it listens. Used by the process entry point and by the tests. */
export async function startApi(config: Config): Promise<RunningApi> {
  const log = createLogger(config.LOG_LEVEL);
  if (config.MIGRATE_ON_START) await migrateOnStart(config, log);

  const adapter = new FastifyAdapter({
    bodyLimit: config.MAX_BODY_BYTES,
    return503OnClosing: true,
    // Slow clients (slowloris, a trickled body) get 408 and lose the socket instead of holding it.
    // Node checks these deadlines on a timer of its own (30 s by default): once a second keeps
    // the bound close to what is configured.
    http: { headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    // No bytes either way for this long, during a request or between two on a kept-alive socket.
    connectionTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_IDLE_TIMEOUT_MS,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: new NestPinoLogger(log),
  });
  // On Fastify itself, before listen(); see request-hooks.ts for why not a Nest interceptor.
  installRequestHooks(app.getHttpAdapter().getInstance(), app.get(ApiMetrics), { maxInFlight: config.MAX_IN_FLIGHT, cpuCostMs: config.CPU_COST_MS });
  // listen() runs the modules' init hooks first: the database module waits for its first connection.
  await app.listen(config.PORT, config.HOST);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  log.info({ port, poolSize: config.DB_POOL_SIZE }, 'listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info('shutting down: no new requests; finishing in-flight ones');
      // Node closes idle keep-alive sockets only once, when close() starts; sockets that finish a
      // request afterwards would hold the close open until the client hangs up. Reap them as they
      // go idle (requests arriving meanwhile get Fastify's 503 with Connection: close).
      const server = app.getHttpServer();
      const reaper = setInterval(() => server.closeIdleConnections(), 50);
      // Nest turns readiness to 503, closes the HTTP server once the requests in flight are
      // answered, then runs the shutdown hooks: queued writes are flushed, then the pool closed.
      await app.close().finally(() => clearInterval(reaper));
      log.info('stopped');
    })());
  return { app, url: `http://127.0.0.1:${port}`, close };
}

/**
 * Migrations run here, before Nest builds the application, rather than in a lifecycle hook: no
 * provider can then touch a schema that is not current yet, and the migrations' one connection
 * (a DataSource of their own) is closed before the request pool opens any. A database that takes
 * a single connection (PGlite in the tests) would otherwise wait forever, and while serving the
 * process holds DB_POOL_SIZE connections, no more.
 */
async function migrateOnStart(config: Config, log: Logger): Promise<void> {
  const dataSource = createDataSource({ ...databaseSettings(config), poolSize: 1 });
  await connectWithRetry(
    () => dataSource.initialize(),
    (attempt, error) => log.warn({ attempt, error: error.message }, 'database not reachable yet; retrying'),
  );
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
