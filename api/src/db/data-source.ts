import type { PoolConfig } from 'pg';
import { DataSource, MigrationExecutor } from 'typeorm';
import { migrations } from './migrations/index.js';

export interface DataSourceSettings {
  url: string;
  poolSize: number;
  acquireTimeoutMs: number;
  statementTimeoutMs: number;
  applicationName?: string;
}

/**
 * How every connection of the API is opened, whoever pools it: the API's request pool
 * (db/database.ts) and TypeORM's, which runs the migrations. One definition, so the two cannot
 * disagree on timeouts or on the name the database sees.
 */
/** How much longer than the statement timeout the client waits before it calls the database unresponsive. */
export const QUERY_TIMEOUT_MARGIN_MS = 2_000;

export function poolConfig(settings: DataSourceSettings): PoolConfig {
  return {
    connectionString: settings.url,
    max: settings.poolSize,
    // Bounds both the wait for a free connection and opening a new one: without it, a request
    // waits forever for a connection when the database is gone.
    connectionTimeoutMillis: settings.acquireTimeoutMs,
    application_name: settings.applicationName ?? 'loadlab-api',
    statement_timeout: settings.statementTimeoutMs || undefined,
    // A database that stops answering (not refusing: a hung host, a stopped process) would hold a
    // statement forever; the server's own statement_timeout cannot fire then. The client gives up a
    // little after it would have, and the connection is dropped (isUnavailable: 503).
    query_timeout: (settings.statementTimeoutMs || 30_000) + QUERY_TIMEOUT_MARGIN_MS,
    // Probes an idle connection whose peer vanished without a FIN (a host gone from the network).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Recycle connections now and then so a replaced database host is picked up.
    maxUses: 100_000,
  };
}

/**
 * The one DataSource definition shared by the app (for its migrations on start), the migrate
 * command and the tests. Migrations only: `synchronize` stays off so the schema is what the
 * migrations say.
 */
export function createDataSource(settings: DataSourceSettings): DataSource {
  // TypeORM's typed options where it has them; `extra` goes to pg's Pool as it is.
  const { connectionString, max, connectionTimeoutMillis, application_name, ...extra } = poolConfig(settings);
  return new DataSource({
    type: 'postgres',
    url: connectionString,
    poolSize: max,
    connectTimeoutMS: connectionTimeoutMillis,
    applicationName: application_name,
    extra,
    synchronize: false,
    migrationsRun: false,
    migrations,
    migrationsTableName: 'loadlab_migrations',
    entities: [],
    installExtensions: false,
  });
}

/** Runs pending migrations under an advisory lock, so replicas starting together do not race. */
export async function migrate(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock(727001)');
    // On the connection that holds the lock: with a pool of one, a second connection never comes.
    const executor = new MigrationExecutor(dataSource, runner);
    executor.transaction = 'each';
    const applied = await executor.executePendingMigrations();
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock(727001)').catch(() => undefined);
    await runner.release();
  }
}
