import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DataSource } from 'typeorm';
import { createDataSource, migrate } from '../src/db/data-source.js';
import { Database } from '../src/db/database.js';
import { login, measurement, post, startTestApi } from './support/api.js';
import { PGliteTimescaleDb } from './support/pglite-timescaledb.js';

type TestApi = Awaited<ReturnType<typeof startTestApi>>;

interface StatsBody {
  measurementCount: number;
  deviceCount: number;
  reportingDeviceCount: number;
  waterTempByHour: { hour: number; measurements: number; meanC: number; stddevC: number }[];
}

const HOUR = 3600_000;

/**
 * The TimescaleDB path of the schema and the API, proven on PGlite's WASM build with the
 * TimescaleDB 2.23 extension (the only TimescaleDB this machine can run), reached over the wire
 * protocol like a server. Single connection: every pool here has size 1 and only one is open.
 */
describe('TimescaleDB path on PGlite with TimescaleDB (WASM), not a TimescaleDB server', { timeout: 60_000 }, () => {
  let pglite: PGliteTimescaleDb | undefined;
  let migrations: DataSource | undefined;
  let api: TestApi | undefined;
  let token = '';
  let deviceId = 0;
  const posted: Record<string, unknown>[] = [];

  /** SQL on the API's own pool: the single connection the server accepts is the API's. */
  // Database.run prepares statements by name: one name per SQL text.
  const sql = <Row>(text: string, params: unknown[] = []) =>
    api!.app.get(Database).run<Row>(`test_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text, params);

  const stats = async (): Promise<StatsBody> => {
    const response = await fetch(`${api!.url}/v1/stats`);
    assert.equal(response.status, 200);
    return (await response.json()) as StatsBody;
  };

  /** GET /v1/stats (served from the rollups) against the same figures computed from `measurement`. */
  const assertStatsMatchMeasurementTable = async () => {
    const body = await stats();
    const [{ n }] = (await sql<{ n: number }>('SELECT count(*)::int AS n FROM measurement')) as [{ n: number }];
    assert.equal(body.measurementCount, n);
    const byHour = await sql<{ hour: number; n: number; mean: number }>(`
      SELECT extract(hour FROM device_time AT TIME ZONE 'UTC')::int AS hour, count(*)::int AS n, avg(water_temp) AS mean
      FROM measurement GROUP BY 1 ORDER BY 1`);
    assert.deepEqual(
      body.waterTempByHour.map(({ hour, measurements }) => ({ hour, n: measurements })),
      byHour.map(({ hour, n }) => ({ hour, n })),
    );
    body.waterTempByHour.forEach(({ hour, meanC }, i) => {
      assert.ok(Math.abs(meanC - byHour[i]!.mean) < 1e-9, `hour ${hour}: stats mean ${meanC} vs SQL ${byHour[i]!.mean}`);
    });
    return { body, count: n };
  };

  before(async () => {
    pglite = await PGliteTimescaleDb.start();
  });

  after(async () => {
    await api?.close().catch(() => undefined);
    if (migrations?.isInitialized) await migrations.destroy().catch(() => undefined);
    await pglite?.stop();
  });

  test('migrations make measurement a compressed hypertable with a columnstore policy', async () => {
    migrations = createDataSource({ url: pglite!.url, poolSize: 1, acquireTimeoutMs: 10_000, statementTimeoutMs: 0 });
    await migrations.initialize();
    try {
      const applied = await migrate(migrations);
      assert.deepEqual(applied, ['InitialSchema1732700000000', 'MeasurementHypertable1732700000001', 'CommandDueNotify1732700000002']);

      const extension = await migrations.query(`SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'`);
      assert.equal(extension.length, 1, 'timescaledb extension installed');
      assert.match(extension[0].extversion, /^2\.23\./);

      const hypertables = await migrations.query(`
        SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'measurement'`);
      assert.deepEqual(hypertables, [{ hypertable_name: 'measurement', compression_enabled: true }]);

      const dimensions = await migrations.query(`
        SELECT column_name, dimension_type, time_interval = INTERVAL '1 day' AS one_day
        FROM timescaledb_information.dimensions WHERE hypertable_name = 'measurement'`);
      assert.deepEqual(dimensions, [{ column_name: 'device_time', dimension_type: 'Time', one_day: true }]);

      // 2.23 names it columnstore; hypertable_compression_settings is the older name of the same view.
      const settings = await migrations.query(`
        SELECT segmentby, orderby FROM timescaledb_information.hypertable_columnstore_settings WHERE hypertable = 'measurement'::regclass`);
      assert.deepEqual(settings, [{ segmentby: 'device_id', orderby: 'device_time DESC' }]);
      const columns = await migrations.query(`
        SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc
        FROM timescaledb_information.compression_settings WHERE hypertable_name = 'measurement' ORDER BY attname`);
      assert.deepEqual(columns, [
        { attname: 'device_id', segmentby_column_index: 1, orderby_column_index: null, orderby_asc: null },
        { attname: 'device_time', segmentby_column_index: null, orderby_column_index: 1, orderby_asc: false },
      ]);

      const jobs = await migrations.query(`
        SELECT proc_name, config->>'compress_after' AS compress_after
        FROM timescaledb_information.jobs WHERE hypertable_name = 'measurement'`);
      assert.deepEqual(jobs, [{ proc_name: 'policy_compression', compress_after: '7 days' }]);
    } finally {
      // The server takes one connection at a time: the API's pool needs it next.
      await migrations.destroy();
    }
  });

  test('the API ingests into hypertable chunks idempotently and /stats agrees with the table', async () => {
    // The schema is already current: migrating on start finds nothing to do, on the one connection.
    // The poll index would hold a second connection (LISTEN) that this single-connection server
    // cannot give: polls go to the table, as with COMMAND_INDEX=false anywhere.
    api = await startTestApi(pglite!.url, { DB_POOL_SIZE: '1', MIGRATE_ON_START: 'true', COMMAND_INDEX: 'false' });
    ({ deviceId, token } = await login(api.url, 'tsdb-kettle-1'));

    // Three readings in each of the last five hours, water temperature varying with time.
    const now = Date.now();
    for (let hoursAgo = 4; hoursAgo >= 0; hoursAgo--) {
      for (let minute = 0; minute < 3; minute++) {
        const at = new Date(now - hoursAgo * HOUR - minute * 7 * 60_000 - 60_000);
        posted.push(measurement({ waterTemp: 40 + hoursAgo * 5 + minute * 1.5, ambientTemp: 20 + minute }, at));
      }
    }
    const batch = await post(api.url, '/v1/measurements', token, posted);
    assert.equal(batch.status, 201, await batch.clone().text());
    assert.deepEqual(await batch.json(), { accepted: posted.length });

    // A retried report (same device, same device time) is acknowledged and not stored twice.
    const retried = posted[5]!;
    const retry = await post(api.url, '/v1/measurements', token, retried);
    assert.equal(retry.status, 201);
    const stored = await sql<{ n: number }>('SELECT count(*)::int AS n FROM measurement WHERE device_id = $1 AND device_time = $2', [deviceId, retried.deviceTime]);
    assert.deepEqual(stored, [{ n: 1 }]);

    const { body, count } = await assertStatsMatchMeasurementTable();
    assert.equal(count, posted.length);
    assert.equal(body.deviceCount, 1);
    assert.equal(body.reportingDeviceCount, 1);

    // The rows live in chunks, not in the hypertable's own (empty) heap.
    const chunks = await sql<{ chunk: string }>(`SELECT show_chunks('measurement')::text AS chunk`);
    assert.ok(chunks.length > 0, 'show_chunks(measurement) is empty');
    const homes = await sql<{ home: string; n: number }>('SELECT tableoid::regclass::text AS home, count(*)::int AS n FROM measurement GROUP BY 1 ORDER BY 1');
    assert.deepEqual(homes.map(({ home }) => home), chunks.map(({ chunk }) => chunk).sort());
    assert.equal(homes.reduce((sum, { n }) => sum + n, 0), posted.length);
    assert.deepEqual(await sql('SELECT count(*)::int AS n FROM ONLY measurement'), [{ n: 0 }]);

    // A Timescale-only query: hourly buckets, checked against the readings as posted.
    const buckets = await sql<{ bucket: Date; n: number; mean: number }>(`
      SELECT time_bucket(INTERVAL '1 hour', device_time) AS bucket, count(*)::int AS n, avg(water_temp) AS mean
      FROM measurement WHERE device_id = $1 GROUP BY bucket ORDER BY bucket`, [deviceId]);
    const expected = new Map<string, number[]>();
    for (const m of posted) {
      const hour = new Date(Math.floor(Date.parse(m.deviceTime as string) / HOUR) * HOUR).toISOString();
      expected.set(hour, [...(expected.get(hour) ?? []), m.waterTemp as number]);
    }
    assert.deepEqual(
      buckets.map(({ bucket, n }) => ({ bucket: bucket.toISOString(), n })),
      [...expected].sort(([a], [b]) => a.localeCompare(b)).map(([bucket, temps]) => ({ bucket, n: temps.length })),
    );
    for (const { bucket, mean } of buckets) {
      const temps = expected.get(bucket.toISOString())!;
      assert.ok(Math.abs(mean - temps.reduce((a, b) => a + b, 0) / temps.length) < 1e-9);
    }
  });

  test('after compress_chunk, a retried reading into a compressed chunk is acknowledged and not duplicated', async () => {
    assert.ok(api, 'the API did not start');
    const compressed = await sql<{ chunk: string }>(`SELECT compress_chunk(c)::text AS chunk FROM show_chunks('measurement') c`);
    assert.ok(compressed.length > 0);
    const status = async () => sql<{ chunk_name: string; is_compressed: boolean }>(`
      SELECT chunk_name, is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = 'measurement' ORDER BY chunk_name`);
    const chunksBefore = await status();
    assert.ok(chunksBefore.every((c) => c.is_compressed), JSON.stringify(chunksBefore));
    const stats1 = await sql<{ status: string }>(`SELECT DISTINCT compression_status AS status FROM chunk_compression_stats('measurement')`);
    assert.deepEqual(stats1, [{ status: 'Compressed' }]);
    const countBefore = (await assertStatsMatchMeasurementTable()).count;

    // Retries of readings that are now in compressed chunks: one alone, then a whole batch.
    for (const body of [posted[0]!, posted]) {
      const retry = await post(api.url, '/v1/measurements', token, body);
      assert.equal(retry.status, 201, await retry.clone().text());
    }
    const again = await assertStatsMatchMeasurementTable();
    assert.equal(again.count, countBefore, 'a retry into a compressed chunk was stored twice');
    assert.equal(again.body.measurementCount, countBefore);
    const duplicates = await sql('SELECT device_id, device_time FROM measurement GROUP BY 1, 2 HAVING count(*) > 1');
    assert.deepEqual(duplicates, []);
    assert.deepEqual(await status(), chunksBefore, 'a skipped retry must not decompress the chunk');

    // A new reading whose time falls in a compressed chunk is stored once, and its retry skipped.
    const late = measurement({ waterTemp: 77 }, new Date(Date.parse(posted[0]!.deviceTime as string) + 1000));
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await post(api.url, '/v1/measurements', token, late);
      assert.equal(response.status, 201, await response.clone().text());
    }
    const final = await assertStatsMatchMeasurementTable();
    assert.equal(final.count, countBefore + 1);
    assert.deepEqual(await sql('SELECT count(*)::int AS n FROM measurement WHERE device_id = $1 AND device_time = $2', [deviceId, late.deviceTime]), [{ n: 1 }]);
  });
});
