import { fileURLToPath, pathToFileURL } from 'node:url';

/** The compiled API's DataSource module (npm run build builds api/ beside operator/). */
const API_DATA_SOURCE = fileURLToPath(new URL('../../../../api/dist/src/db/data-source.js', import.meta.url));

/** The API's migrations, as the API container applies them on start (MIGRATE_ON_START). */
export async function runApiMigrations(databaseUrl: string): Promise<void> {
  const { createDataSource, migrate } = (await import(pathToFileURL(API_DATA_SOURCE).href)) as {
    createDataSource(settings: { url: string; poolSize: number; acquireTimeoutMs: number; statementTimeoutMs: number }): { initialize(): Promise<unknown>; destroy(): Promise<void> };
    migrate(dataSource: unknown): Promise<string[]>;
  };
  const dataSource = createDataSource({ url: databaseUrl, poolSize: 1, acquireTimeoutMs: 5000, statementTimeoutMs: 0 });
  await dataSource.initialize();
  try {
    await migrate(dataSource);
  } finally {
    await dataSource.destroy();
  }
}
