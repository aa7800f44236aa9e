import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/*
 * Files of the system under test, by the @loadlab/api package's exports: the benchmark starts the
 * API, its migrations and the raw baseline server as processes, and reads the API's ingest
 * statement, without importing the API's sources (which the operator's image does not contain).
 */

export type ApiExport = '@loadlab/api' | '@loadlab/api/migrate' | '@loadlab/api/bench/raw-server' | '@loadlab/api/ingest-sql';

/** The built file behind an export of the API package; throws with what to do when it is missing. */
export function apiFile(specifier: ApiExport): string {
  let path: string;
  try {
    path = fileURLToPath(import.meta.resolve(specifier));
  } catch {
    throw new Error(`${specifier} does not resolve: run npm ci in the repository (the operator workspace depends on @loadlab/api)`);
  }
  if (!existsSync(path)) throw new Error(`${specifier} is not built (${path} is missing): run npm run build`);
  return path;
}

/**
 * INGEST_SQL and ROLLUP_SHARDS from the API, the statement its writer runs. A dynamic import of a
 * resolved path, checked at run time: a static import would need the API's type declarations to
 * compile the operator workspace, and its image is built without them.
 */
export async function apiIngestSql(): Promise<{ INGEST_SQL: string; ROLLUP_SHARDS: number }> {
  const module = (await import(import.meta.resolve('@loadlab/api/ingest-sql'))) as Record<string, unknown>;
  const { INGEST_SQL, ROLLUP_SHARDS } = module;
  if (typeof INGEST_SQL !== 'string' || typeof ROLLUP_SHARDS !== 'number') {
    throw new Error('@loadlab/api/ingest-sql no longer exports INGEST_SQL (string) and ROLLUP_SHARDS (number): update the ingest ceiling to the API');
  }
  return { INGEST_SQL, ROLLUP_SHARDS };
}
