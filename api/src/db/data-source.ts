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
 * The one DataSource definition shared by the app, the migrate command and the tests.
 * Migrations only: `synchronize` stays off so the schema is what the migrations say.
 */
export function createDataSource(settings: DataSourceSettings): DataSource {
  return new DataSource({
    type: 'postgres',
    url: settings.url,
    poolSize: settings.poolSize,
    // Without a bound, a request waits forever for a connection when the database is gone.
    connectTimeoutMS: settings.acquireTimeoutMs,
    applicationName: settings.applicationName ?? 'loadlab-api',
    synchronize: false,
    migrationsRun: false,
    migrations,
    migrationsTableName: 'loadlab_migrations',
    entities: [],
    installExtensions: false,
    extra: {
      statement_timeout: settings.statementTimeoutMs || undefined,
      // Recycle connections now and then so a replaced database host is picked up.
      maxUses: 100_000,
    },
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
