import { loadConfig } from '../config/config.js';
import { createDataSource, migrate } from './data-source.js';

/** `npm run migrate -w api`: applies pending migrations with the app's own DataSource definition. */
const config = loadConfig({ TOKEN_SECRET: 'not-used-by-migrations', ...process.env });
const dataSource = createDataSource({ url: config.DATABASE_URL, poolSize: 1, acquireTimeoutMs: 10_000, statementTimeoutMs: 0 });
await dataSource.initialize();
try {
  const applied = await migrate(dataSource);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
} finally {
  await dataSource.destroy();
}
