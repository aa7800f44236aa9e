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

/*
 * Fencing. With leader election only the leader reconciles, but a leader that lost its Lease without
 * noticing (a paused process, a partition) could still run a statement it had started to send
 * after its successor began: TRUNCATE an experiment's tables that the new leader just prepared, or
 * DROP a schema. So every destructive statement runs in a transaction that first checks this
 * term's fencing token (leader.ts: fencingToken) against the highest the database has seen, in
 * table loadlab_operator.leader_fence, under an advisory lock: claiming a term takes it
 * exclusively, a destructive transaction shares it. A claim therefore waits for the old leader's
 * transaction in flight, and any transaction begun after the claim sees the new token and is
 * refused (FencedOffError) before it changes anything. Experiment roles (the API's) may read the
 * table, never write it: only the admin claims.
 */

export interface Fence {
  /** The Lease, namespace/name: one fence per operator installation. */
  lease: string;
  token: number;
  /** Set once this term's token is in the database. */
  claimed?: boolean;
}

const FENCE_TABLE = 'loadlab_operator.leader_fence';
/** pg_advisory_xact_lock's key for the fence (any bigint no other user of the database picks). */
export const FENCE_LOCK = 7_301_766_458_110_911_833n;

/** A newer leader has claimed the fence: this process must not change the database any more. */
export class FencedOffError extends Error {
  override name = 'FencedOffError';
}

/** Puts the term's token in the database (the highest wins); throws FencedOffError if a newer term is there already. */
async function claimFence(client: pg.Client, fence: Fence): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [FENCE_LOCK.toString()]);
    await client.query('CREATE SCHEMA IF NOT EXISTS loadlab_operator');
    await client.query(`CREATE TABLE IF NOT EXISTS ${FENCE_TABLE} (lease text PRIMARY KEY, token bigint NOT NULL)`);
    await client.query('GRANT USAGE ON SCHEMA loadlab_operator TO PUBLIC');
    await client.query(`GRANT SELECT ON ${FENCE_TABLE} TO PUBLIC`);
    const result = await client.query<{ token: string }>(
      `INSERT INTO ${FENCE_TABLE} (lease, token) VALUES ($1, $2) ON CONFLICT (lease) DO UPDATE SET token = GREATEST(${FENCE_TABLE}.token, EXCLUDED.token) RETURNING token`,
      [fence.lease, fence.token],
    );
    await client.query('COMMIT');
    const seen = Number(result.rows[0]!.token);
    if (seen !== fence.token) throw fencedOff(fence, seen);
    fence.claimed = true;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function fencedOff(fence: Fence, seen: number): FencedOffError {
  return new FencedOffError(`another operator leads now (fencing token ${seen} in ${FENCE_TABLE} > this term's ${fence.token} for Lease ${fence.lease}): this one changes nothing in the database`);
}

/**
 * Inside a transaction, before its destructive statements: waits for a claim in flight, then
 * refuses (FencedOffError) if a newer term has claimed. No fence: no leader election, nothing to check.
 */
async function checkFence(client: pg.ClientBase, fence: Fence | undefined): Promise<void> {
  if (!fence) return;
  await client.query('SELECT pg_advisory_xact_lock_shared($1)', [FENCE_LOCK.toString()]);
  const result = await client.query<{ token: string }>(`SELECT token FROM ${FENCE_TABLE} WHERE lease = $1`, [fence.lease]);
  const seen = Number(result.rows[0]?.token ?? Number.NaN);
  if (seen !== fence.token) throw fencedOff(fence, seen);
}

/** Claims the term's fence once (as the admin) before its first destructive statement. */
async function claimOnce(adminUrl: string, fence: Fence | undefined): Promise<void> {
  if (!fence || fence.claimed) return;
  await withAdmin(adminUrl, (client) => claimFence(client, fence));
}

/** The database could not be reached: worth retrying later (the reconcile backs off). */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/** Creates (or updates the password and connection limit of) the experiment's role and creates its schema; idempotent. */
export async function ensureExperimentDatabase(adminUrl: string, schema: string, password: string, connectionLimit: number, fence?: Fence): Promise<ExperimentDatabase> {
  if (!(Number.isInteger(connectionLimit) && connectionLimit >= 1)) throw new Error(`connectionLimit: must be a whole number >= 1, got ${connectionLimit}`);
  const role = quoteIdentifier(schema);
  await claimOnce(adminUrl, fence);
  await withAdmin(adminUrl, async (client) => {
    // One transaction so two operators racing on the same experiment cannot half-create it.
    await client.query('BEGIN');
    try {
      // A password change cuts off the running API of a newer leader's run.
      await checkFence(client, fence);
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schema]);
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [schema]);
      // The attributes it may never have are set once, at CREATE: an admin that is no superuser
      // may not name SUPERUSER or REPLICATION at all in an ALTER ROLE, even to say NO.
      const attributes = exists.rowCount ? 'LOGIN' : 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION';
      await client.query(`${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${role} WITH ${attributes} CONNECTION LIMIT ${connectionLimit} PASSWORD ${quoteLiteral(password)}`);
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
export async function prepareExperimentData(adminUrl: string, database: ExperimentDatabase, experiment: LoadExperiment, progress: (line: string) => void, fence?: Fence, signal?: AbortSignal): Promise<void> {
  await claimOnce(adminUrl, fence);
  await prepareDatabase(database.url, experiment, progress, {
    beforeReset: (client) => checkFence(client, fence),
    // A stopped operator (or a lost Lease) ends its preload; one statement (a preload day) never pins a worker for long.
    ...(signal ? { signal } : {}),
    statementTimeoutMs: PREPARE_STATEMENT_TIMEOUT_MS,
  });
}

/** The longest one statement of data preparation may take: a day of preload for the largest fleet MAX_PRELOAD_ROWS allows. */
const PREPARE_STATEMENT_TIMEOUT_MS = 30 * 60_000;

/** Drops the schema with everything in it, and the role; idempotent. */
export async function dropExperimentDatabase(adminUrl: string, schema: string, fence?: Fence): Promise<void> {
  const role = quoteIdentifier(schema);
  await claimOnce(adminUrl, fence);
  await withAdmin(adminUrl, async (client) => {
    await client.query('BEGIN');
    try {
      await checkFence(client, fence);
      // The API's connections would hold locks DROP SCHEMA waits for; they are this experiment's only.
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [schema]);
      await client.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`);
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [schema]);
      if (exists.rowCount) {
        await client.query(`DROP OWNED BY ${role}`);
        await client.query(`DROP ROLE ${role}`);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}
