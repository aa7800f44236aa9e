import pg from 'pg';
import type { LoadExperiment } from '../schema/index.js';
import { durationSeconds } from '../schema/duration.js';
import { deviceSerial } from '../traffic/index.js';

const TABLES = 'command, device_latest, measurement_hourly, measurement, device';
const REGISTER_CHUNK = 20_000;

/** Connects once to check that the URL works, with a message a person can act on when it does not. */
export async function checkDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(`cannot reach the database at ${redactUrl(url)}: ${(error as Error).message} (check DATABASE_URL, or unset it to use a throwaway PostgreSQL)`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The URL with its password masked, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

export interface PrepareOptions {
  /** Runs in the reset's transaction before TRUNCATE; throwing leaves every table as it was (the operator's fence). */
  beforeReset?: (client: pg.ClientBase) => Promise<void>;
  /** Aborting closes the connection: the statement in flight ends with it (the server checks every 5 s). */
  signal?: AbortSignal;
  /** Bounds each statement (a preload day is one); 0: unbounded, as local mode runs it. */
  statementTimeoutMs?: number;
}

/**
 * Prepares the database for a run, after the API's migrations: `reset` empties every table;
 * then the fleet's devices are registered with deterministic ids (device index i -> id i + 1),
 * which is what lets the load generator mint device tokens itself (see the k6 script and the
 * driver); then `preloadDays` of history are written. Idempotent for `keep`.
 */
export async function prepareDatabase(url: string, experiment: LoadExperiment, progress: (line: string) => void, options: PrepareOptions = {}): Promise<void> {
  options.signal?.throwIfAborted();
  // The server notices a closed connection only when it checks: without this a cancelled preload
  // would go on writing until its statement ends. Added to the URL's own options (its search_path).
  const withOptions = new URL(url);
  const settings = ['-c client_connection_check_interval=5000', ...(options.statementTimeoutMs ? [`-c statement_timeout=${options.statementTimeoutMs}`] : [])];
  withOptions.searchParams.set('options', [withOptions.searchParams.get('options'), ...settings].filter(Boolean).join(' '));
  const client = new pg.Client({ connectionString: withOptions.toString(), connectionTimeoutMillis: 10_000 });
  await client.connect();
  const cancel = () => void client.end().catch(() => undefined);
  options.signal?.addEventListener('abort', cancel, { once: true });
  try {
    const { devices } = experiment.spec.fleet;
    if (experiment.spec.database.mode === 'reset') {
      await client.query('BEGIN');
      try {
        await options.beforeReset?.(client);
        await client.query(`TRUNCATE ${TABLES} RESTART IDENTITY`);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
    for (let start = 0; start < devices; start += REGISTER_CHUNK) {
      const count = Math.min(REGISTER_CHUNK, devices - start);
      const serials = Array.from({ length: count }, (_, k) => deviceSerial(experiment, start + k));
      await client.query(
        `INSERT INTO device (id, serial) OVERRIDING SYSTEM VALUE
         SELECT $1::bigint + ord, serial FROM unnest($2::text[]) WITH ORDINALITY AS t(serial, ord)
         ON CONFLICT DO NOTHING`,
        [start, serials],
      );
    }
    // Logins of devices outside the fleet must not collide with the ids above.
    await client.query(`SELECT setval(pg_get_serial_sequence('device', 'id'), greatest((SELECT max(id) FROM device), 1))`);
    progress(`database: ${devices.toLocaleString('en')} devices registered`);
    if (experiment.spec.database.preloadDays > 0) await preloadHistory(client, experiment, progress, options.signal);
  } finally {
    options.signal?.removeEventListener('abort', cancel);
    await client.end().catch(() => undefined);
  }
}

/**
 * The seed's fill-database tool: one reading per device per report interval over the last N days,
 * generated in SQL (plausible values, not the traffic model's walks: fast enough for millions of
 * rows), then the /stats rollups recomputed from the table so they agree with it.
 */
async function preloadHistory(client: pg.Client, experiment: LoadExperiment, progress: (line: string) => void, signal?: AbortSignal): Promise<void> {
  const { devices, reportInterval } = experiment.spec.fleet;
  const days = experiment.spec.database.preloadDays;
  const started = Date.now();
  for (let day = days; day >= 1; day--) {
    signal?.throwIfAborted();
    await client.query(
      `INSERT INTO measurement (device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level)
       SELECT d, t, 150 + 100 * sin(extract(epoch FROM t) / 7200 + d), 300, 20 * cos(extract(epoch FROM t) / 7200 + d),
              21 + 3 * sin(extract(epoch FROM t) / 13751), 20 + 70 * abs(sin(extract(epoch FROM t) / 3600 + d)), 0.2 + abs(sin(d + extract(epoch FROM t) / 5400))
       FROM generate_series(1, $1::bigint) AS d,
            generate_series(now() - make_interval(days => $2::int), now() - make_interval(days => $2::int - 1) - interval '1 microsecond', make_interval(secs => $3::float8)) AS t
       ON CONFLICT DO NOTHING`,
      [devices, day, durationSeconds(reportInterval)],
    );
    progress(`database: preloaded day ${days - day + 1}/${days} (${Math.round((Date.now() - started) / 1000)} s)`);
  }
  await client.query(`DELETE FROM measurement_hourly`);
  await client.query(
    `INSERT INTO measurement_hourly (hour_of_day, shard, measurements, water_temp_sum, water_temp_sumsq)
     SELECT extract(hour FROM device_time AT TIME ZONE 'UTC'), 0, count(*), sum(water_temp), sum(water_temp * water_temp)
     FROM measurement GROUP BY 1`,
  );
  await client.query(
    `INSERT INTO device_latest (device_id, device_time, charge_now, ambient_temp, water_temp, water_level)
     SELECT DISTINCT ON (device_id) device_id, device_time, charge_now, ambient_temp, water_temp, water_level
     FROM measurement ORDER BY device_id, device_time DESC
     ON CONFLICT (device_id) DO UPDATE SET device_time = excluded.device_time, charge_now = excluded.charge_now,
       ambient_temp = excluded.ambient_temp, water_temp = excluded.water_temp, water_level = excluded.water_level`,
  );
  await client.query('ANALYZE measurement');
}
