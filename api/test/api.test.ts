import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DeviceTokens } from '../src/auth/device-token.js';
import { PostgresCluster } from './support/postgres.js';
import { deviceKey, login, measurement, post, startTestApi, TEST_SECRET } from './support/api.js';

type Api = Awaited<ReturnType<typeof startTestApi>>;
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);
const get = (api: Api, path: string, token?: string) => fetch(`${api.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** Polls until a command comes (5 s at most): the API hears of a new one a moment after it commits. */
async function untilCommand(api: Api, token: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const answer = (await (await get(api, '/v1/command', token)).json()) as Record<string, unknown>;
    if (answer.id !== null || Date.now() > deadline) return answer;
    await sleep(10);
  }
}

/** How many devices the poll index holds (its gauge on /metrics). */
async function indexedDevices(api: Api): Promise<number> {
  const text = await (await get(api, '/metrics')).text();
  return Number(/^loadlab_api_command_index_devices (\S+)$/m.exec(text)?.[1] ?? 0);
}

describe('the API over HTTP, against a real PostgreSQL', () => {
  let pg: PostgresCluster;
  let api: Api;
  before(async () => {
    pg = await PostgresCluster.start();
    api = await startTestApi(pg.url, { MAX_BODY_BYTES: '8192', MAX_BATCH_MEASUREMENTS: '5' });
  });
  after(async () => {
    await api?.close();
    await pg?.destroy();
  });

  describe('device login', () => {
    it('registers an unknown device and returns a token that authenticates it', async () => {
      const { deviceId, token } = await login(api.url, 'kettle-login-1');
      assert.ok(deviceId > 0);
      assert.equal(new DeviceTokens(TEST_SECRET, 60).verify(token)?.deviceId, deviceId);
      assert.equal(await pg.psql(`SELECT count(*) FROM device WHERE serial = 'kettle-login-1'`), '1');
    });

    it('is idempotent: logging in again (even concurrently) gives the same device', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, () => login(api.url, 'kettle-login-2')));
      assert.equal(new Set(results.map((r) => r.deviceId)).size, 1);
      assert.equal(await pg.psql(`SELECT count(*) FROM device WHERE serial = 'kettle-login-2'`), '1');
    });

    it('refuses a serial without its key (400 naming key) or with another serial\'s key (401), registering nothing', async () => {
      const missing = await post(api.url, '/v1/devices/login', undefined, { serial: 'kettle-guessed' });
      assert.equal(missing.status, 400);
      assert.deepEqual(((await missing.json()) as { issues: { field: string }[] }).issues.map((i) => i.field), ['key']);
      const wrong = await post(api.url, '/v1/devices/login', undefined, { serial: 'kettle-guessed', key: deviceKey('kettle-other') });
      assert.equal(wrong.status, 401);
      const forged = await post(api.url, '/v1/devices/login', undefined, { serial: 'kettle-guessed', key: deviceKey('kettle-guessed', 'another-secret-0123456789') });
      assert.equal(forged.status, 401, 'a key made with another secret');
      assert.equal(await pg.psql(`SELECT count(*) FROM device WHERE serial = 'kettle-guessed'`), '0');
    });

    it('logs a serial in alone when the API runs with DEVICE_LOGIN=serial (the seed\'s behaviour)', async () => {
      const open = await startTestApi(pg.url, { DEVICE_LOGIN: 'serial' });
      try {
        const response = await post(open.url, '/v1/devices/login', undefined, { serial: 'kettle-serial-only' });
        assert.equal(response.status, 200);
      } finally {
        await open.close();
      }
    });

    for (const [body, field] of [
      [{}, 'serial'],
      [{ serial: '' }, 'serial'],
      [{ serial: 'has space' }, 'serial'],
      [{ serial: 'x'.repeat(129) }, 'serial'],
      [{ serial: 'ok', extra: 1 }, 'body'],
      [{ serial: 'ok', key: 'short' }, 'key'],
    ] as const) {
      it(`refuses ${JSON.stringify(body).slice(0, 40)} with 400 naming ${field}`, async () => {
        const response = await post(api.url, '/v1/devices/login', undefined, body);
        assert.equal(response.status, 400);
        const json = (await response.json()) as { issues: { field: string; reason: string }[] };
        assert.equal(json.issues[0]!.field, field);
        assert.ok(json.issues[0]!.reason.length > 5);
      });
    }
  });

  describe('POST /v1/measurements', () => {
    let token: string;
    let deviceId: number;
    before(async () => ({ token, deviceId } = await login(api.url, 'kettle-ingest')));

    it('stores one measurement and acknowledges with 201 after commit', async () => {
      const at = minutesAgo(10);
      const response = await post(api.url, '/v1/measurements', token, measurement({ waterTemp: 71.5 }, at));
      assert.equal(response.status, 201);
      assert.deepEqual(await response.json(), { accepted: 1 });
      assert.equal(await pg.psql(`SELECT water_temp FROM measurement WHERE device_id = ${deviceId} AND device_time = '${at.toISOString()}'`), '71.5');
    });

    it('stores a batch buffered while offline', async () => {
      const batch = [1, 2, 3].map((i) => measurement({ waterLevel: i }, minutesAgo(100 + i)));
      const response = await post(api.url, '/v1/measurements', token, batch);
      assert.equal(response.status, 201);
      assert.deepEqual(await response.json(), { accepted: 3 });
    });

    it('acknowledges a retried measurement without storing it twice', async () => {
      const at = minutesAgo(20);
      const before = Number(await pg.psql(`SELECT sum(measurements) FROM measurement_hourly`));
      for (let i = 0; i < 3; i++) assert.equal((await post(api.url, '/v1/measurements', token, measurement({}, at))).status, 201);
      assert.equal(await pg.psql(`SELECT count(*) FROM measurement WHERE device_id = ${deviceId} AND device_time = '${at.toISOString()}'`), '1');
      assert.equal(Number(await pg.psql(`SELECT sum(measurements) FROM measurement_hourly`)), before + 1, 'the rollup counts it once');
    });

    it('409 for a reading that contradicts the stored one (same device and time, other values), naming it; the rest of its batch is stored and counted', async () => {
      const [t1, t2, t3] = [minutesAgo(40), minutesAgo(41), minutesAgo(42)];
      assert.equal((await post(api.url, '/v1/measurements', token, measurement({ waterTemp: 50 }, t2))).status, 201);
      const response = await post(api.url, '/v1/measurements', token, [measurement({}, t1), measurement({ waterTemp: 51 }, t2), measurement({}, t3)]);
      assert.equal(response.status, 409);
      const body = (await response.json()) as { accepted: number; message: string; issues: { field: string; reason: string }[] };
      assert.equal(body.accepted, 2);
      assert.deepEqual(body.issues.map((i) => i.field), ['[1].deviceTime']);
      assert.match(body.issues[0]!.reason, /different reading/);
      const stored = await pg.psql(`SELECT string_agg(water_temp::text, ',' ORDER BY device_time DESC) FROM measurement WHERE device_id = ${deviceId} AND device_time IN ('${t1.toISOString()}', '${t2.toISOString()}', '${t3.toISOString()}')`);
      assert.equal(stored, '60,50,60', 'the stored reading is kept, the other two are stored');
      // The same batch again: still 409 for the contradiction, the other two acknowledged as retries.
      assert.equal((await post(api.url, '/v1/measurements', token, [measurement({}, t1), measurement({ waterTemp: 51 }, t2), measurement({}, t3)])).status, 409);
      const single = await post(api.url, '/v1/measurements', token, measurement({ waterTemp: 52 }, t2));
      assert.equal(single.status, 409);
      assert.deepEqual(((await single.json()) as { issues: { field: string }[] }).issues.map((i) => i.field), ['deviceTime']);
    });

    const future = new Date(Date.now() + 3600_000).toISOString();
    const old = new Date(Date.now() - 8 * 24 * 3600_000).toISOString();
    const cases: [string, unknown, string, RegExp][] = [
      ['a string where a number belongs', measurement({ waterTemp: 'hot' }), 'waterTemp', /number/],
      ['charge now above charge full', measurement({ chargeNow: 1300, chargeFull: 1200 }), 'chargeNow', /at most chargeFull \(1200\)/],
      ['a negative charge', measurement({ chargeNow: -1 }), 'chargeNow', />=/],
      ['water hotter than a kettle gets', measurement({ waterTemp: 500 }), 'waterTemp', /<=/],
      ['a missing field', (({ waterLevel: _w, ...rest }) => rest)(measurement()), 'waterLevel', /number/],
      ['an unknown field', measurement({ colour: 'red' }), 'body', /colour/],
      ['a date without a zone', measurement({ deviceTime: '2026-01-01T00:00:00' }), 'deviceTime', /time zone/],
      ['a time in the future', measurement({ deviceTime: future }), 'deviceTime', /future/],
      ['a time older than the limit', measurement({ deviceTime: old }), 'deviceTime', /old/],
      ['an empty batch', [], 'body', /at least one/],
      ['a batch over the limit', Array.from({ length: 6 }, (_, i) => measurement({}, minutesAgo(i))), 'body', /at most 5/],
      ['a bad row inside a batch', [measurement(), measurement({ waterLevel: -3 })], '[1].waterLevel', />=/],
    ];
    for (const [name, body, field, reason] of cases) {
      it(`400 for ${name}, naming ${field}`, async () => {
        const response = await post(api.url, '/v1/measurements', token, body);
        assert.equal(response.status, 400);
        const json = (await response.json()) as { message: string; issues: { field: string; reason: string }[] };
        const issue = json.issues.find((i) => i.field === field);
        assert.ok(issue, `expected an issue for ${field}, got ${JSON.stringify(json.issues)}`);
        assert.match(issue.reason, reason);
        assert.match(json.message, new RegExp(field.replace(/[[\]]/g, '\\$&')));
      });
    }

    it('stores a reading with values too small for any sensor as 0 (201, not a 500 from an underflow in PostgreSQL)', async () => {
      const at = new Date(Date.now() - 3_600_000);
      const response = await post(api.url, '/v1/measurements', token, measurement({ waterTemp: 1.3e-222, ambientTemp: -2.2e-309 }, at));
      assert.equal(response.status, 201, await response.clone().text());
      assert.equal(await pg.psql(`SELECT water_temp || ' ' || ambient_temp FROM measurement WHERE device_id = ${deviceId} AND device_time = '${at.toISOString()}'`), '0 0');
    });

    it('stores nothing from a batch with one bad row', async () => {
      const at = minutesAgo(30);
      await post(api.url, '/v1/measurements', token, [measurement({}, at), measurement({ chargeRate: 1e9 }, minutesAgo(31))]);
      assert.equal(await pg.psql(`SELECT count(*) FROM measurement WHERE device_id = ${deviceId} AND device_time = '${at.toISOString()}'`), '0');
    });

    it('400 (not 500) for a JSON body that does not parse or is empty, naming body', async () => {
      for (const [path, body, reason] of [
        ['/v1/measurements', '{"chargeNow": 800,', /not valid JSON/],
        ['/v1/measurements', '', /empty/],
        ['/v1/devices/login', "{serial: 'kettle'}", /not valid JSON/],
      ] as const) {
        const response = await post(api.url, path, token, body);
        assert.equal(response.status, 400, `${path} ${JSON.stringify(body)}`);
        const json = (await response.json()) as { error: string; message: string; issues: { field: string; reason: string }[] };
        assert.equal(json.error, 'Bad Request');
        assert.deepEqual(json.issues.map((i) => i.field), ['body']);
        assert.match(json.issues[0]!.reason, reason);
        assert.match(json.message, /^body: /);
      }
    });

    it('413 for a body over MAX_BODY_BYTES', async () => {
      const response = await post(api.url, '/v1/measurements', token, JSON.stringify({ pad: 'x'.repeat(10_000) }));
      assert.equal(response.status, 413);
    });

    it('415 for a body that is not JSON', async () => {
      const response = await post(api.url, '/v1/measurements', token, 'chargeNow=1', 'application/x-www-form-urlencoded');
      assert.equal(response.status, 415);
      assert.equal((await post(api.url, '/v1/measurements', token, 'hello', 'text/plain')).status, 415);
    });

    it('gives a percent-encoded path the checks of the route it matches (415, not a validation 400)', async () => {
      // %76 is "v": the router matches /v1/measurements, and the content-type check must see it too.
      const response = await post(api.url, '/%761/measurements', token, 'hello', 'text/plain');
      assert.equal(response.status, 415, await response.clone().text());
    });

    it('401 without a token, with a forged one and with an expired one', async () => {
      assert.equal((await post(api.url, '/v1/measurements', undefined, measurement())).status, 401);
      const forged = new DeviceTokens('another-secret-0123456789', 60).issue(deviceId).token;
      assert.equal((await post(api.url, '/v1/measurements', forged, measurement())).status, 401);
      const expired = new DeviceTokens(TEST_SECRET, 60).issue(deviceId, Date.now() - 3600_000).token;
      assert.equal((await post(api.url, '/v1/measurements', expired, measurement())).status, 401);
      const tampered = token.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
      assert.equal((await post(api.url, '/v1/measurements', tampered, measurement())).status, 401);
    });

    it('401 (not 500) for a valid token of a device the database no longer has', async () => {
      const ghost = new DeviceTokens(TEST_SECRET, 60).issue(9_999_999).token;
      const response = await post(api.url, '/v1/measurements', ghost, measurement());
      assert.equal(response.status, 401);
      assert.match(((await response.json()) as { message: string }).message, /log in again/);
    });
  });

  describe('GET /v1/command', () => {
    it('returns the no-op when nothing is due, then each due command exactly once, oldest first', async () => {
      const { token, deviceId } = await login(api.url, 'kettle-command');
      const noop = { id: null, chargeOn: null, fillOn: null, flushLitres: 0, notBefore: null };
      assert.deepEqual(await (await get(api, '/v1/command', token)).json(), noop);
      await pg.psql(`INSERT INTO command (device_id, not_before, charge_on, fill_on, flush_litres) VALUES
        (${deviceId}, now() - interval '1 minute', true, null, 0),
        (${deviceId}, now() - interval '2 minutes', null, false, 0.5),
        (${deviceId}, now() + interval '1 hour', false, false, 0)`);
      // The API learns of the commands by notification, a moment after they commit.
      const first = await untilCommand(api, token);
      assert.deepEqual([first.chargeOn, first.fillOn, first.flushLitres], [null, false, 0.5]);
      const second = (await (await get(api, '/v1/command', token)).json()) as Record<string, unknown>;
      assert.deepEqual([second.chargeOn, second.fillOn, second.flushLitres], [true, null, 0]);
      assert.deepEqual(await (await get(api, '/v1/command', token)).json(), noop, 'the future command is not due yet');
    });

    it('never hands one command to two concurrent polls', async () => {
      const { token, deviceId } = await login(api.url, 'kettle-command-race');
      const indexed = await indexedDevices(api);
      await pg.psql(`INSERT INTO command (device_id, not_before, charge_on) SELECT ${deviceId}, now() - interval '1 minute', true FROM generate_series(1, 5)`);
      // Every poll below must find the commands: wait until their notification has arrived.
      const deadline = Date.now() + 5000;
      while ((await indexedDevices(api)) <= indexed && Date.now() < deadline) await sleep(10);
      const answers = (await Promise.all(Array.from({ length: 12 }, async () => (await (await get(api, '/v1/command', token)).json()) as { id: number | null }))).map((a) => a.id);
      const delivered = answers.filter((id) => id !== null);
      assert.equal(delivered.length, 5);
      assert.equal(new Set(delivered).size, 5);
    });

    it('401 without a token', async () => {
      assert.equal((await get(api, '/v1/command')).status, 401);
    });
  });

  describe('GET /v1/stats', () => {
    it('equals an independent computation over the stored rows', async () => {
      const devices = await Promise.all([0, 1, 2].map((i) => login(api.url, `kettle-stats-${i}`)));
      for (const [i, { token }] of devices.entries()) {
        const rows = Array.from({ length: 5 }, (_, k) =>
          measurement({ chargeNow: 100 * (i + 1) + k, waterTemp: 20 + 7 * k + i, ambientTemp: 19 + i, waterLevel: 0.5 + k / 10 }, minutesAgo(37 * k + i)),
        );
        assert.equal((await post(api.url, '/v1/measurements', token, rows)).status, 201);
      }
      const stats = (await (await get(api, '/v1/stats')).json()) as {
        measurementCount: number;
        deviceCount: number;
        totalChargeWh: number;
        totalWaterLitres: number;
        totalWaterEnergyKWh: number;
        waterTempByHour: { hour: number; measurements: number; meanC: number; stddevC: number }[];
      };
      const sql = JSON.parse(
        await pg.psql(`
        WITH latest AS (SELECT DISTINCT ON (device_id) * FROM measurement ORDER BY device_id, device_time DESC),
             hourly AS (SELECT extract(hour FROM device_time AT TIME ZONE 'UTC')::int AS hour, count(*) AS n,
                               avg(water_temp) AS mean, coalesce(stddev_samp(water_temp), 0) AS sd
                        FROM measurement GROUP BY 1 ORDER BY 1)
        SELECT json_build_object(
          'count', (SELECT count(*) FROM measurement),
          'devices', (SELECT count(*) FROM device),
          'charge', (SELECT sum(charge_now) FROM latest),
          'water', (SELECT sum(water_level) FROM latest),
          'energy', (SELECT sum(water_level * 4186 * greatest(water_temp - ambient_temp, 0)) / 3.6e6 FROM latest),
          'hourly', (SELECT json_agg(hourly) FROM hourly))`),
      ) as { count: number; devices: number; charge: number; water: number; energy: number; hourly: { hour: number; n: number; mean: number; sd: number }[] };
      assert.equal(stats.measurementCount, sql.count);
      assert.equal(stats.deviceCount, sql.devices);
      assert.ok(Math.abs(stats.totalChargeWh - sql.charge) < 1e-6);
      assert.ok(Math.abs(stats.totalWaterLitres - sql.water) < 1e-9);
      assert.ok(stats.totalWaterEnergyKWh > 0);
      assert.ok(Math.abs(stats.totalWaterEnergyKWh - sql.energy) < 1e-9);
      assert.deepEqual(stats.waterTempByHour.map((h) => [h.hour, h.measurements]), sql.hourly.map((h) => [h.hour, h.n]));
      for (const [i, h] of stats.waterTempByHour.entries()) {
        assert.ok(Math.abs(h.meanC - sql.hourly[i]!.mean) < 1e-9, `mean at hour ${h.hour}`);
        assert.ok(Math.abs(h.stddevC - sql.hourly[i]!.sd) < 1e-6, `stddev at hour ${h.hour}`);
      }
    });
  });

  describe('operations', () => {
    it('serves liveness, readiness and the OpenAPI document', async () => {
      assert.equal((await get(api, '/healthz')).status, 200);
      assert.equal((await get(api, '/readyz')).status, 200);
      const doc = (await (await get(api, '/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown>; components: { schemas: { Measurement: { properties: Record<string, unknown> } } } };
      assert.match(doc.openapi, /^3\./);
      for (const path of ['/v1/devices/login', '/v1/measurements', '/v1/command', '/v1/stats', '/healthz', '/readyz', '/metrics']) assert.ok(doc.paths[path], path);
      assert.deepEqual(Object.keys(doc.components.schemas.Measurement.properties).sort(), ['ambientTemp', 'chargeFull', 'chargeNow', 'chargeRate', 'deviceTime', 'waterLevel', 'waterTemp']);
    });

    it('405 with Allow for a method a path does not have (TRACE and DELETE too), 404 for a path that does not exist', async () => {
      // fetch refuses TRACE: a raw request.
      const raw = (method: string, path: string) =>
        new Promise<{ status: number; allow: string | undefined; body: string }>((resolve, reject) => {
          const request = httpRequest(`${api.url}${path}`, { method }, (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk.toString()));
            response.on('end', () => resolve({ status: response.statusCode!, allow: response.headers.allow, body }));
          });
          request.on('error', reject);
          request.end();
        });
      for (const [method, path, allow] of [
        ['TRACE', '/v1/measurements', 'POST'],
        ['GET', '/v1/measurements', 'POST'],
        ['DELETE', '/v1/command', 'GET, HEAD'],
        ['PUT', '/%761/command', 'GET, HEAD'],
        ['POST', '/healthz', 'GET, HEAD'],
      ] as const) {
        const answer = await raw(method, path);
        assert.equal(answer.status, 405, `${method} ${path}: ${answer.body}`);
        assert.equal(answer.allow, allow, `${method} ${path}`);
        assert.match(answer.body, /is not supported here; use/);
      }
      assert.equal((await raw('GET', '/v1/nothing-here')).status, 404);
      assert.equal((await raw('TRACE', '/nothing-here')).status, 404);
    });

    it('exposes the documented metrics with bounded labels', async () => {
      const text = await (await get(api, '/metrics')).text();
      for (const name of [
        'loadlab_api_http_request_duration_seconds_bucket',
        'loadlab_api_http_requests_in_flight',
        'loadlab_api_measurements_ingested_total',
        'loadlab_api_measurements_duplicate_total',
        'loadlab_api_write_batch_rows_bucket',
        'loadlab_api_db_query_duration_seconds_bucket',
        'loadlab_api_db_pool_acquire_seconds_bucket',
        'loadlab_api_db_pool_max',
        'loadlab_api_db_pool_connections',
        'loadlab_api_db_pool_idle',
        'loadlab_api_db_pool_waiting',
        'loadlab_api_event_loop_active_seconds_total',
        'loadlab_api_cpu_wait_seconds_total',
        'nodejs_eventloop_lag_seconds',
        'nodejs_gc_duration_seconds_bucket',
        'nodejs_heap_size_used_bytes',
        'process_cpu_seconds_total',
      ]) {
        assert.match(text, new RegExp(`^${name}`, 'm'), name);
      }
      const routes = new Set([...text.matchAll(/loadlab_api_http_request_duration_seconds_count\{route="([^"]+)"/g)].map((m) => m[1]));
      assert.ok(routes.has('/v1/measurements') && routes.has('/v1/command'));
      for (const route of routes) assert.doesNotMatch(route!, /\d{3,}/, 'route labels are templates, never ids');
      const ingested = Number(/^loadlab_api_measurements_ingested_total (\d+)/m.exec(text)?.[1]);
      assert.equal(ingested, Number(await pg.psql('SELECT count(*) FROM measurement')), 'the ingest counter matches the stored rows');
    });

    it('reports its own database pool: its size, its connections, and one timed acquire per statement', async () => {
      const scrape = async () => {
        const text = await (await get(api, '/metrics')).text();
        const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
        return { max: value('loadlab_api_db_pool_max'), total: value('loadlab_api_db_pool_connections'), idle: value('loadlab_api_db_pool_idle'), waiting: value('loadlab_api_db_pool_waiting'), acquires: value('loadlab_api_db_pool_acquire_seconds_count') };
      };
      const before = await scrape();
      // Each GET /v1/stats runs two statements, each on a connection of its own.
      for (let i = 0; i < 3; i++) assert.equal((await get(api, '/v1/stats')).status, 200);
      const after = await scrape();
      assert.equal(after.acquires - before.acquires, 6);
      assert.equal(after.max, api.config.DB_POOL_SIZE);
      assert.ok(after.total >= 1 && after.total <= after.max, JSON.stringify(after));
      assert.equal(after.idle, after.total, 'nothing is running between requests');
      assert.equal(after.waiting, 0);
    });
  });
});
