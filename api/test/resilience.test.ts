import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DeviceTokens } from '../src/auth/device-token.js';
import { PostgresCluster } from './support/postgres.js';
import { deviceKey, login, measurement, post, spawnApi, startTestApi, TEST_SECRET, waitUntilReady } from './support/api.js';

/** Retry-After is 1 to 3 s at random (spreads retries), never absent on a 503. */
const RETRY_AFTER = /^[123]$/;

describe('resilience, against a real PostgreSQL', () => {
  let pg: PostgresCluster;
  before(async () => {
    pg = await PostgresCluster.start();
  });
  after(async () => {
    await pg?.destroy();
  });

  it('database stopped: readiness and writes answer 503 (never 500 or 2xx); database back: recovers without a restart', async () => {
    const api = await startTestApi(pg.url, { DB_POOL_ACQUIRE_TIMEOUT_MS: '1000' });
    try {
      const { token } = await login(api.url, 'kettle-outage');
      assert.equal((await post(api.url, '/v1/measurements', token, measurement())).status, 201);
      await pg.stopServer();

      const ready = await fetch(`${api.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.headers.get('retry-after') ?? '', RETRY_AFTER);
      assert.equal((await fetch(`${api.url}/healthz`)).status, 200, 'liveness does not depend on the database');
      const statuses = [];
      for (let i = 0; i < 5; i++) {
        const response = await post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - i * 1000 - 5000)));
        statuses.push(response.status);
        if (response.status === 503) {
          assert.match(response.headers.get('retry-after') ?? '', RETRY_AFTER);
          const body = await response.text();
          assert.doesNotMatch(body, /ECONNREFUSED|127\.0\.0\.1|connect|:\d{4,5}/, `no driver internals in the body: ${body}`);
          assert.match(body, /the database is unavailable; retry later/);
        }
      }
      assert.deepEqual(statuses, [503, 503, 503, 503, 503]);
      assert.equal((await post(api.url, '/v1/devices/login', undefined, { serial: 'kettle-new', key: deviceKey('kettle-new') })).status, 503);
      assert.equal((await fetch(`${api.url}/v1/command`, { headers: { authorization: `Bearer ${token}` } })).status, 503);
      assert.equal((await fetch(`${api.url}/v1/stats`)).status, 503);

      await pg.startServer();
      await waitUntilReady(api.url, 10_000);
      assert.equal((await post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - 60_000)))).status, 201);
      assert.equal(await pg.psql('SELECT count(*) FROM measurement'), '2', 'only the acknowledged writes were stored');
      const metrics = await (await fetch(`${api.url}/metrics`)).text();
      assert.match(metrics, /loadlab_api_http_requests_shed_total\{reason="database_unavailable"\} [1-9]/);
      assert.doesNotMatch(metrics, /status="500"/);
    } finally {
      await api.close();
    }
  });

  it('a database that stops answering (SIGSTOP): 503 within the statement timeout and a margin, readiness false; answers again after SIGCONT', async () => {
    // DB_STATEMENT_TIMEOUT_MS 1000: the client gives up 2 s after that (query_timeout) on a
    // connection it holds, the acquire timeout bounds a new one.
    const api = await startTestApi(pg.url, { DB_STATEMENT_TIMEOUT_MS: '1000', DB_POOL_ACQUIRE_TIMEOUT_MS: '1000', DB_POOL_SIZE: '2' });
    let stopped = false;
    try {
      const { token } = await login(api.url, 'kettle-frozen');
      assert.equal((await post(api.url, '/v1/measurements', token, measurement())).status, 201);
      await pg.signalServer('SIGSTOP');
      stopped = true;
      const startedAt = performance.now();
      const responses = await Promise.all([0, 1, 2].map((i) => post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - 5_000 - i * 1000)))));
      const tookMs = performance.now() - startedAt;
      console.log(`  frozen database: ${responses.map((r) => r.status).join(', ')} after ${Math.round(tookMs)} ms`);
      for (const response of responses) {
        assert.equal(response.status, 503);
        assert.match(((await response.json()) as { message: string }).message, /the database is unavailable; retry later/);
      }
      assert.ok(tookMs < 8_000, `answered within the timeouts, not held until the database came back: ${Math.round(tookMs)} ms`);
      const ready = await fetch(`${api.url}/readyz`);
      assert.equal(ready.status, 503, 'not ready while the database does not answer');

      await pg.signalServer('SIGCONT');
      stopped = false;
      await waitUntilReady(api.url, 15_000);
      const after = await post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - 60_000)));
      assert.equal(after.status, 201, 'recovered without a restart');
      // A statement the stopped server had already received runs when it resumes: a reading answered
      // 503 may be stored after all (the device's retry is then acknowledged, not stored twice).
      const stored = Number(await pg.psql(`SELECT count(*) FROM measurement m JOIN device d ON d.id = m.device_id WHERE d.serial = 'kettle-frozen'`));
      assert.ok(stored >= 2 && stored <= 5, `every acknowledged reading stored, each at most once: ${stored}`);
    } finally {
      if (stopped) await pg.signalServer('SIGCONT');
      await api.close();
    }
  });

  it('PostgreSQL SIGKILLed mid-load and restarted: every acknowledged reading is stored once, the outage answers 503 (never 500), the API recovers on its own', async () => {
    const api = await startTestApi(pg.url, { DB_POOL_ACQUIRE_TIMEOUT_MS: '1000', DB_STATEMENT_TIMEOUT_MS: '2000' });
    let killed = false;
    try {
      const devices = await Promise.all([0, 1, 2, 3].map((i) => login(api.url, `kettle-crash-${i}`)));
      const acknowledged: string[] = [];
      const statuses = new Map<number, number>();
      let next = 0;
      let stop = false;
      let firstAfterRestart: number | undefined;
      let restartedAt = Number.NaN; // set once the restart begins
      const base = Date.now() - 3 * 3600_000;
      // Eight clients posting small batches of unique readings as fast as they are answered.
      const client = async (c: number) => {
        while (!stop) {
          const device = devices[c % devices.length]!;
          const times = [0, 1, 2].map(() => new Date(base - ++next * 10));
          const response = await post(api.url, '/v1/measurements', device.token, times.map((t) => measurement({}, t))).catch(() => undefined);
          const status = response?.status ?? 0;
          await response?.arrayBuffer();
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === 201) {
            for (const t of times) acknowledged.push(`${device.deviceId}@${t.toISOString()}`);
            if (!Number.isNaN(restartedAt)) firstAfterRestart ??= performance.now();
          } else {
            await sleep(50);
          }
        }
      };
      const clients = Array.from({ length: 8 }, (_, c) => client(c));
      await sleep(1000);
      const beforeCrash = acknowledged.length;
      await pg.signalServer('SIGKILL');
      killed = true;
      await sleep(1500);
      restartedAt = performance.now();
      await pg.startServer(); // crash recovery replays the WAL
      killed = false;
      const serverUp = performance.now();
      for (let waited = 0; firstAfterRestart === undefined && waited < 20_000; waited += 50) await sleep(50);
      await sleep(500);
      stop = true;
      await Promise.all(clients);
      assert.ok(beforeCrash > 50, `load ran before the crash: ${beforeCrash} readings acknowledged`);
      assert.ok(firstAfterRestart !== undefined, 'the API stored readings again after the restart, without being restarted itself');
      console.log(`  PostgreSQL SIGKILLed: answers ${JSON.stringify(Object.fromEntries(statuses))}; server restarted (crash recovery) in ${Math.round(serverUp - restartedAt)} ms, first 201 ${Math.round(firstAfterRestart - restartedAt)} ms after the restart began`);
      assert.deepEqual([...statuses.keys()].filter((s) => s !== 201 && s !== 503), [], 'only 201 and 503 (no 500, no dropped connection)');
      assert.ok((statuses.get(503) ?? 0) > 0, 'the outage was seen as 503');
      const ids = devices.map((d) => d.deviceId).join(',');
      const stored = new Set((await pg.psql(`SELECT device_id || '@' || to_char(device_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM measurement WHERE device_id IN (${ids})`)).split('\n'));
      const lost = acknowledged.filter((key) => !stored.has(key));
      assert.deepEqual(lost.slice(0, 5), [], `${lost.length} of ${acknowledged.length} acknowledged readings lost`);
      assert.equal(new Set(acknowledged).size, acknowledged.length, 'each reading acknowledged once');
      const hourly = Number(await pg.psql('SELECT sum(measurements) FROM measurement_hourly'));
      const rows = Number(await pg.psql('SELECT count(*) FROM measurement'));
      assert.equal(hourly, rows, 'the rollup agrees with the rows after crash recovery (stored in the same statement)');
    } finally {
      if (killed) await pg.startServer();
      await api.close();
    }
  });

  it('readiness has a connection of its own: a request pool saturated by slow statements stays ready', async () => {
    const api = await startTestApi(pg.url, { DB_POOL_SIZE: '1', QUERY_DELAY_MS: '1500', DB_POOL_ACQUIRE_TIMEOUT_MS: '5000' });
    try {
      const { token } = await login(api.url, 'kettle-busy-pool');
      const slow = Array.from({ length: 3 }, (_, i) => post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - 5_000 - i * 1000))));
      await sleep(200);
      const ready = await fetch(`${api.url}/readyz`);
      assert.equal(ready.status, 200, 'the one request connection is busy for seconds, the readiness ping is not behind it');
      assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [201, 201, 201]);
    } finally {
      await api.close();
    }
  });

  it('sheds load with 503 + Retry-After instead of falling over', async () => {
    const api = await startTestApi(pg.url, { MAX_IN_FLIGHT: '4', QUERY_DELAY_MS: '300', DB_POOL_SIZE: '2' });
    try {
      const { token } = await login(api.url, 'kettle-shed');
      const responses = await Promise.all(
        Array.from({ length: 40 }, (_, i) => post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - 10_000 - i * 1000)))),
      );
      const statuses = responses.map((r) => r.status);
      const accepted = statuses.filter((s) => s === 201).length;
      const shed = responses.filter((r) => r.status === 503);
      assert.ok(accepted >= 1, `some were served: ${statuses}`);
      assert.ok(shed.length >= 20, `most were shed: ${statuses}`);
      assert.ok(shed.every((r) => RETRY_AFTER.test(r.headers.get('retry-after') ?? '')));
      assert.ok(new Set(shed.map((r) => r.headers.get('retry-after'))).size > 1, 'the waits differ, so the retries do not come back together');
      assert.equal(statuses.filter((s) => s !== 201 && s !== 503).length, 0);
      assert.equal(await pg.psql(`SELECT count(*) FROM measurement m JOIN device d ON d.id = m.device_id WHERE d.serial = 'kettle-shed'`), String(accepted));
      assert.equal((await fetch(`${api.url}/metrics`)).status, 200, 'metrics are never shed');
    } finally {
      await api.close();
    }
  });

  it('statement timeout: 503 + Retry-After as for an outage (never 500), and nothing stored', async () => {
    // Every statement sleeps longer than PostgreSQL lets it run, so each one is cancelled (57014).
    const api = await startTestApi(pg.url, { DB_STATEMENT_TIMEOUT_MS: '100', QUERY_DELAY_MS: '1000' });
    try {
      // Login needs the database too, so the device is registered and its token issued directly.
      const deviceId = Number(await pg.psql(`INSERT INTO device (serial) VALUES ('kettle-timeout') RETURNING id`));
      const { token } = new DeviceTokens(TEST_SECRET, 60).issue(deviceId);

      const responses = [
        await post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - 60_000))),
        await post(api.url, '/v1/measurements', token, [measurement({}, new Date(Date.now() - 120_000)), measurement({}, new Date(Date.now() - 180_000))]),
        await post(api.url, '/v1/devices/login', undefined, { serial: 'kettle-timeout-new', key: deviceKey('kettle-timeout-new') }),
        await fetch(`${api.url}/v1/stats`),
      ];
      for (const response of responses) {
        assert.equal(response.status, 503, `${response.url}: ${await response.clone().text()}`);
        assert.match(response.headers.get('retry-after') ?? '', RETRY_AFTER);
        assert.equal(((await response.json()) as { message: string }).message, 'the database gave up on this request (timeout or conflict); retry later');
      }
      assert.equal(await pg.psql(`SELECT count(*) FROM measurement WHERE device_id = ${deviceId}`), '0', 'nothing was stored');
      const metrics = await (await fetch(`${api.url}/metrics`)).text();
      assert.match(metrics, /loadlab_api_http_requests_shed_total\{reason="database_busy"\} 4/);
      assert.doesNotMatch(metrics, /status="500"/);
    } finally {
      await api.close();
    }
  });

  it('write queue full: 503 + Retry-After, counted as write_queue_full, and only acknowledged rows stored', async () => {
    // One statement at a time on a slow database, and room for one waiting row: a burst overflows.
    const api = await startTestApi(pg.url, { MAX_PENDING_WRITES: '1', WRITE_BATCH_MAX_CONCURRENCY: '1', QUERY_DELAY_MS: '300' });
    try {
      const { token } = await login(api.url, 'kettle-queue');
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, i) => post(api.url, '/v1/measurements', token, measurement({}, new Date(Date.now() - 10_000 - i * 1000)))),
      );
      const statuses = responses.map((r) => r.status);
      const accepted = statuses.filter((s) => s === 201).length;
      const shed = responses.filter((r) => r.status === 503);
      assert.ok(accepted >= 1, `some were written: ${statuses}`);
      assert.ok(shed.length >= 5, `most were shed: ${statuses}`);
      assert.ok(shed.every((r) => RETRY_AFTER.test(r.headers.get('retry-after') ?? '')));
      assert.match(((await shed[0]!.json()) as { message: string }).message, /too many readings are waiting to be stored/);
      assert.equal(statuses.filter((s) => s !== 201 && s !== 503).length, 0);
      assert.equal(await pg.psql(`SELECT count(*) FROM measurement m JOIN device d ON d.id = m.device_id WHERE d.serial = 'kettle-queue'`), String(accepted));
      const metrics = await (await fetch(`${api.url}/metrics`)).text();
      assert.match(metrics, new RegExp(`loadlab_api_http_requests_shed_total\\{reason="write_queue_full"\\} ${shed.length}\n`));
      assert.doesNotMatch(metrics, /reason="in_flight"/, 'shed by the write queue, not by MAX_IN_FLIGHT');
    } finally {
      await api.close();
    }
  });

  it('SIGTERM under load: requests in flight finish with 201, no acknowledged measurement is lost (a separate API process)', async () => {
    // QUERY_DELAY_MS keeps each request at the server for 300 ms or more, so when the signal arrives
    // most devices have one in flight, which the drain must finish rather than cut.
    const api = await spawnApi({ DATABASE_URL: pg.url, WRITE_BATCH_MAX_ROWS: '200', QUERY_DELAY_MS: '300' });
    await waitUntilReady(api.url);
    const devices = await Promise.all(Array.from({ length: 30 }, (_, i) => login(api.url, `kettle-sigterm-${i}`)));
    const requests: { key: string; sentAt: number; answeredAt?: number; outcome?: number | 'refused or reset' }[] = [];
    let stop = false;
    const loops = devices.map(async ({ token, deviceId }, d) => {
      for (let k = 0; !stop && k < 5000; k++) {
        const at = new Date(Date.now() - 3600_000 + k * 10 + d);
        const request: (typeof requests)[number] = { key: `${deviceId}@${at.toISOString()}`, sentAt: performance.now() };
        requests.push(request);
        const response = await post(api.url, '/v1/measurements', token, measurement({}, at)).catch(() => undefined);
        request.answeredAt = performance.now();
        request.outcome = response?.status ?? 'refused or reset';
        if (!response) return; // the server is gone
        await response.arrayBuffer();
      }
    });
    // A request written just before the signal can still sit unread in its keep-alive connection
    // when the server closes the idle ones (the keep-alive race of every HTTP server), so it was
    // never in flight; only requests sent SETTLE_MS or more before SIGTERM count as in flight.
    const SETTLE_MS = 100;
    const settledInFlight = () => requests.filter((r) => r.answeredAt === undefined && r.sentAt < performance.now() - SETTLE_MS).length;
    // Under load first: enough acknowledged writes for the count check below to mean something.
    await until(() => requests.filter((r) => r.outcome === 201).length >= 150, 30_000, '150 acknowledged writes');
    for (const deadline = Date.now() + 5000; settledInFlight() < devices.length / 2 && Date.now() < deadline; ) await sleep(5);
    const sigtermAt = performance.now();
    api.child.kill('SIGTERM');
    const code = await api.exited;
    stop = true;
    await Promise.all(loops);
    assert.equal(code, 0, `clean exit; stderr: ${api.stderr()}`);

    const sentBefore = requests.filter((r) => r.sentAt < sigtermAt - SETTLE_MS);
    const inFlight = sentBefore.filter((r) => r.answeredAt! > sigtermAt);
    assert.ok(inFlight.length >= devices.length / 2, `the drain was exercised: ${inFlight.length} requests in flight at SIGTERM`);
    const notServed = sentBefore.filter((r) => r.outcome !== 201);
    assert.deepEqual(
      notServed.map((r) => `${r.outcome}, sent ${Math.round(sigtermAt - r.sentAt)} ms before SIGTERM`),
      [],
      `every request sent before SIGTERM was answered 201 (${inFlight.length} of them drained)`,
    );
    const later = new Set(requests.filter((r) => r.sentAt >= sigtermAt - SETTLE_MS).map((r) => r.outcome));
    assert.deepEqual([...later].filter((o) => o !== 201 && o !== 503 && o !== 'refused or reset'), [], 'while closing the API answers 503 or refuses, nothing else');

    const acknowledged = requests.filter((r) => r.outcome === 201).map((r) => r.key);
    const stored = new Set(
      (await pg.psql(`SELECT m.device_id || '@' || to_char(m.device_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM measurement m JOIN device d ON d.id = m.device_id WHERE d.serial LIKE 'kettle-sigterm-%'`)).split('\n'),
    );
    const lost = acknowledged.filter((key) => !stored.has(key));
    assert.deepEqual(lost, [], `${lost.length} acknowledged measurements were not stored`);
  });

  it('readiness answers 503 from SIGTERM on, while an in-flight request drains (a separate API process)', async () => {
    // QUERY_DELAY_MS holds the measurement at the server while /readyz is asked; it stays under the
    // readiness ping's 1 s, so the API is ready before the signal.
    const api = await spawnApi({ DATABASE_URL: pg.url, QUERY_DELAY_MS: '600', LOG_LEVEL: 'info' });
    await waitUntilReady(api.url);
    const { token, deviceId } = await login(api.url, 'kettle-draining');
    // After SIGTERM the listener is closed and idle connections are dropped, so only a connection
    // busy with a request gets an answer: this one starts its /readyz before the signal and
    // finishes it after. (A probe on a new connection is refused, checked below.)
    const probe = await RawHttpConnection.open(api.url);
    assert.equal((await probe.request('GET /readyz HTTP/1.1\r\nHost: api\r\n\r\n')).status, 200);
    probe.write('GET /readyz HTTP/1.1\r\nHost: api\r\n');

    const at = new Date(Date.now() - 60_000);
    let drained = false;
    const inFlight = post(api.url, '/v1/measurements', token, measurement({}, at)).finally(() => (drained = true));
    await sleep(200);
    api.child.kill('SIGTERM');
    await until(() => api.stdout().includes('shutting down'), 5000, 'the shutting-down log line');
    const ready = await probe.request('\r\n');
    assert.equal(ready.status, 503, ready.body);
    assert.equal(drained, false, 'the measurement was still in flight when readiness said 503');
    await assert.rejects(fetch(`${api.url}/readyz`), 'a new connection is refused');
    probe.close();

    assert.equal((await inFlight).status, 201, 'the in-flight request was finished, not cut');
    assert.equal(await api.exited, 0, api.stderr());
    assert.equal(await pg.psql(`SELECT count(*) FROM measurement WHERE device_id = ${deviceId}`), '1');
  });

  it('logs one JSON object per line on stdout, with level, time, msg and service (a separate API process)', async () => {
    const api = await spawnApi({ DATABASE_URL: pg.url, LOG_LEVEL: 'info' });
    await waitUntilReady(api.url);
    api.child.kill('SIGTERM');
    assert.equal(await api.exited, 0, api.stderr());
    const logs = api
      .stdout()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          assert.fail(`not a JSON line: ${line}`);
        }
      });
    assert.ok(logs.length >= 3, api.stdout());
    for (const log of logs) {
      assert.equal(typeof log.level, 'number', JSON.stringify(log));
      assert.match(String(log.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(typeof log.msg, 'string');
      assert.equal(log.service, 'loadlab-api');
    }
    const listening = logs.find((log) => log.msg === 'listening');
    assert.equal(listening?.level, 30, 'info is pino level 30');
    assert.equal(listening?.port, Number(new URL(api.url).port));
    assert.ok(logs.some((log) => typeof log.context === 'string' && log.level === 30), "Nest's own messages go through the same logger, with their context");
    assert.equal(logs.at(-1)?.msg, 'stopped');
  });

  it('slow clients lose their socket: unfinished headers and a trickled body get 408 after their timeouts, a kept-alive connection that falls silent is closed', async () => {
    const api = await startTestApi(pg.url, { HTTP_HEADERS_TIMEOUT_MS: '500', HTTP_REQUEST_TIMEOUT_MS: '1000', HTTP_IDLE_TIMEOUT_MS: '1500' });
    const connections: RawHttpConnection[] = [];
    try {
      const { token } = await login(api.url, 'kettle-slowloris');
      const start = performance.now();
      const headers = await RawHttpConnection.open(api.url);
      const body = await RawHttpConnection.open(api.url);
      const silent = await RawHttpConnection.open(api.url);
      connections.push(headers, body, silent);
      // A connection that never sends a request is subject to the headers deadline; one that
      // finished a request and fell silent, to the idle timeout.
      assert.equal((await silent.request('GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n')).status, 200);
      // Bytes keep coming on the first two, so only the request deadlines can end them.
      headers.write('POST /v1/measurements HTTP/1.1\r\nHost: api\r\n');
      body.write(`POST /v1/measurements HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n[`);
      const trickle = setInterval(() => {
        headers.write(`X-Slow-${Math.round(performance.now())}: 1\r\n`);
        body.write(' ');
      }, 100);
      try {
        const [headersEnd, bodyEnd, silentEnd] = await Promise.all([headers.whenClosed(4000), body.whenClosed(4000), silent.whenClosed(4000)]);
        // Node checks the deadlines once a second (connectionsCheckingInterval): up to 1 s late.
        const within = (at: number, from: number, to: number) => assert.ok(at - start >= from && at - start <= to, `${at - start} ms not in [${from}, ${to}]`);
        assert.match(headersEnd.received, /^HTTP\/1\.1 408 /);
        within(headersEnd.at, 500, 2000);
        assert.match(bodyEnd.received, /^HTTP\/1\.1 408 /);
        within(bodyEnd.at, 1000, 2500);
        assert.equal(silentEnd.received, '', 'an idle kept-alive connection is closed without a response');
        within(silentEnd.at, 1500, 3500);
      } finally {
        clearInterval(trickle);
      }
      // The API served other clients all along and still does.
      assert.equal((await post(api.url, '/v1/measurements', token, measurement())).status, 201);
    } finally {
      for (const connection of connections) connection.close();
      await api.close();
    }
  });

  it('two API replicas (two instances, each with its own pool and writer) given the same readings at once store each once; of two contradicting readings sent at once, one is stored and the other gets 409', async () => {
    const [api, second] = await Promise.all([startTestApi(pg.url), startTestApi(pg.url)]);
    try {
      const { token: own, deviceId: id } = await login(api.url, 'kettle-two-replicas');
      const base = Date.now() - 2 * 3600_000;
      const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 5 }, (_, r) => measurement({ waterTemp: 40 + r }, new Date(base - (b * 5 + r) * 1000))));
      const rollupBefore = Number(await pg.psql('SELECT sum(measurements) FROM measurement_hourly'));
      const answers = await Promise.all(batches.flatMap((batch) => [api.url, second.url].map((url) => post(url, '/v1/measurements', own, batch).then((r) => r.status))));
      assert.deepEqual(new Set(answers), new Set([201]));
      assert.equal(await pg.psql(`SELECT count(*) FROM measurement WHERE device_id = ${id}`), '100');
      assert.equal(Number(await pg.psql('SELECT sum(measurements) FROM measurement_hourly')), rollupBefore + 100, 'the rollup counts each reading once');
      const counted = async (name: string) => {
        const texts = await Promise.all([api.url, second.url].map((url) => fetch(`${url}/metrics`).then((r) => r.text())));
        return texts.reduce((sum, text) => sum + Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]), 0);
      };
      assert.equal(await counted('loadlab_api_measurements_ingested_total'), 100, 'stored once, counted once over both replicas');
      assert.equal(await counted('loadlab_api_measurements_duplicate_total'), 100, 'the other copy of each acknowledged as a retry');

      const contested = new Date(base - 3600_000);
      const duel = await Promise.all([
        post(api.url, '/v1/measurements', own, measurement({ waterTemp: 70 }, contested)),
        post(second.url, '/v1/measurements', own, measurement({ waterTemp: 80 }, contested)),
      ]);
      assert.deepEqual(duel.map((r) => r.status).sort(), [201, 409]);
      const winner = duel[0]!.status === 201 ? '70' : '80';
      assert.equal(await pg.psql(`SELECT water_temp FROM measurement WHERE device_id = ${id} AND device_time = '${contested.toISOString()}'`), winner);
    } finally {
      await Promise.all([api.close(), second.close()]);
    }
  });

  it('refuses to start on bad configuration, naming each variable', async () => {
    const api = await spawnApi({ DATABASE_URL: 'mysql://nope', TOKEN_SECRET: 'short', DB_POOL_SIZE: 'many' });
    assert.equal(await api.exited, 2);
    const message = api.stderr();
    assert.match(message, /DATABASE_URL: must be a postgres:\/\//);
    assert.match(message, /TOKEN_SECRET: must be at least 16 characters/);
    assert.match(message, /DB_POOL_SIZE:/);
  });
});

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await sleep(10)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
  }
}

/** One HTTP/1.1 connection written by hand, so a request can be sent in pieces. */
class RawHttpConnection {
  private received = '';
  private closed = false;
  private closedAt = NaN;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('error', () => undefined); // writing to a socket the server has closed; seen as 'close'
    socket.on('data', (chunk: string) => (this.received += chunk));
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = performance.now();
    });
  }

  static async open(url: string): Promise<RawHttpConnection> {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    return new RawHttpConnection(socket);
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** Writes `text` and reads one response (the API always sends content-length). */
  async request(text: string, timeoutMs = 5000): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    this.write(text);
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(10)) {
      const headEnd = this.received.indexOf('\r\n\r\n');
      if (headEnd < 0) continue;
      const [statusLine, ...lines] = this.received.slice(0, headEnd).split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      const bodyEnd = headEnd + 4 + Number(headers['content-length'] ?? 0);
      if (this.received.length < bodyEnd) continue;
      const body = this.received.slice(headEnd + 4, bodyEnd);
      this.received = this.received.slice(bodyEnd);
      return { status: Number(statusLine!.split(' ')[1]), headers, body };
    }
    throw new Error(`no complete response within ${timeoutMs} ms${this.closed ? ' (connection closed)' : ''}: ${JSON.stringify(this.received)}`);
  }

  /** Resolves when the server closes the connection: when, and everything it sent before. */
  async whenClosed(timeoutMs: number): Promise<{ at: number; received: string }> {
    for (const deadline = Date.now() + timeoutMs; !this.closed; await sleep(10)) {
      if (Date.now() > deadline) throw new Error(`connection still open after ${timeoutMs} ms`);
    }
    return { at: this.closedAt, received: this.received };
  }

  close(): void {
    this.socket.destroy();
  }
}
