import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The API's migrations, as the API container applies them on start (MIGRATE_ON_START): the API
 * package's own migrate entry point (@loadlab/api/migrate), run as a process.
 */
export async function runApiMigrations(databaseUrl: string): Promise<void> {
  await run(process.execPath, [fileURLToPath(import.meta.resolve('@loadlab/api/migrate'))], { env: { ...process.env, DATABASE_URL: databaseUrl }, timeout: 60_000 });
}
