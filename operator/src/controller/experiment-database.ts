import pg from 'pg';
import { prepareDatabase, redactUrl } from '../dataset/prepare.js';
import type { LoadExperiment } from '../schema/load-experiment.js';

/*
 * Isolation between experiments in the one shared TimescaleDB: every experiment object gets its own
 * PostgreSQL schema and a login role of the same name that owns it and nothing else. The API of the
 * experiment connects as that role with the schema first on its search_path
 * (options=-c search_path=<schema>,public in DATABASE_URL; public stays on it for the TimescaleDB
 * extension's functions), so its migrations create their tables there and it cannot read or write
 * another experiment's. The operator prepares the data (reset, device registration, preload) with
 * local mode's prepareDatabase over the same connection, and drops schema and role at the end.
 */

export interface ExperimentDatabase {
  schema: string;
  /** The experiment's own connection (its role and search_path), for the API and for preparing data. */
  url: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function quoteIdentifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new TypeError(`"${name}" is not a plain PostgreSQL identifier`);
  return `"${name}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The admin URL with the experiment's role, password and search_path; host, database and TLS settings kept. */
export function experimentDatabaseUrl(adminUrl: string, schema: string, password: string): string {
  const url = new URL(adminUrl);
  url.username = encodeURIComponent(schema);
  url.password = encodeURIComponent(password);
  url.searchParams.set('options', `-c search_path=${schema},public`);
  return url.toString();
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  // Bounded waits: a reconcile must not hang on a lock; it fails and is retried with backoff.
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000, application_name: 'loadlab-operator', lock_timeout: 10_000, statement_timeout: 60_000 } as pg.ClientConfig);
  try {
    await client.connect();
  } catch (error) {
    throw new DatabaseUnavailableError(`cannot reach the shared database (DATABASE_URL) at ${redactUrl(adminUrl)}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The database could not be reached: worth retrying later (the reconcile backs off). */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/** Creates (or updates the password and connection limit of) the experiment's role and creates its schema; idempotent. */
export async function ensureExperimentDatabase(adminUrl: string, schema: string, password: string, connectionLimit: number): Promise<ExperimentDatabase> {
  if (!(Number.isInteger(connectionLimit) && connectionLimit >= 1)) throw new Error(`connectionLimit: must be a whole number >= 1, got ${connectionLimit}`);
  const role = quoteIdentifier(schema);
  await withAdmin(adminUrl, async (client) => {
    // One transaction so two operators racing on the same experiment cannot half-create it.
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schema]);
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [schema]);
      const verb = exists.rowCount ? 'ALTER' : 'CREATE';
      await client.query(`${verb} ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT ${connectionLimit} PASSWORD ${quoteLiteral(password)}`);
      // An admin that is not a superuser (CREATEROLE only) must be a member of the role to give it a schema.
      const admin = await client.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
      if (admin.rows[0]?.rolsuper !== true) await client.query(`GRANT ${role} TO CURRENT_USER`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${role} AUTHORIZATION ${role}`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
  return { schema, url: experimentDatabaseUrl(adminUrl, schema, password) };
}

/** Whether the API's migrations have created their tables in the experiment's schema yet. */
export async function migrationsApplied(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    const result = await client.query(`SELECT to_regclass(current_schema() || '.device') IS NOT NULL AS ready`);
    return result.rows[0]?.ready === true;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Resets (spec.database.mode: reset), registers the fleet's devices with ids i + 1 and preloads
 * history, in the experiment's schema: local mode's prepareDatabase over the experiment's
 * connection, whose search_path points every statement at that schema.
 */
export async function prepareExperimentData(database: ExperimentDatabase, experiment: LoadExperiment, progress: (line: string) => void): Promise<void> {
  await prepareDatabase(database.url, experiment, progress);
}

/** Drops the schema with everything in it, and the role; idempotent. */
export async function dropExperimentDatabase(adminUrl: string, schema: string): Promise<void> {
  const role = quoteIdentifier(schema);
  await withAdmin(adminUrl, async (client) => {
    // The API's connections would hold locks DROP SCHEMA waits for; they are this experiment's only.
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [schema]);
    await client.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`);
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [schema]);
    if (exists.rowCount) {
      await client.query(`DROP OWNED BY ${role}`);
      await client.query(`DROP ROLE ${role}`);
    }
  });
}
