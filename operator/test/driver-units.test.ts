import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  LatencyHistogram,
  LruCache,
  METRIC_NAMES,
  TargetLines,
  VegetaCsvReader,
  loginsBetween,
  runDriver,
  type VegetaResult,
} from '../src/driver/index.js';
import { mintDeviceToken } from '../src/contract/device-token.js';
import { arrivalsBetween, buildTrafficPlan, deviceSerial, type TrafficPlan } from '../src/traffic/index.js';
import { experimentWith as sharedExperimentWith } from './support/fixtures.js';

const experimentWith = (spec: Record<string, unknown>) => sharedExperimentWith(spec, 'driver');

function count<T>(items: Iterable<T>): number {
  let n = 0;
  for (const _ of items) n++;
  return n;
}

describe('device tokens', () => {
  it('are the API\'s own format: the API\'s verifier accepts them and reads the claims back', async () => {
    // The API's compiled module, loaded at run time by path: a static cross-workspace import would
    // put api/ sources under operator's rootDir. Build the api workspace first (npx tsc -b api operator).
    const url = new URL('../../../api/dist/src/auth/device-token.js', import.meta.url);
    const { DeviceTokens } = (await import(url.href)) as {
      DeviceTokens: new (secret: string, ttl: number) => { verify(token: string, nowMs?: number): { deviceId: number; expiresAt: number } | undefined };
    };
    const secret = 'driver-test-secret-0123456789';
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const token = mintDeviceToken(secret, 4242, expiresAt);
    assert.deepEqual(new DeviceTokens(secret, 3600).verify(token), { deviceId: 4242, expiresAt });
    assert.equal(new DeviceTokens(`${secret}x`, 3600).verify(token), undefined, 'another secret must not verify');
  });

  it('are cached in a bounded LRU', () => {
    const cache = new LruCache<number, string>(2);
    cache.set(1, 'a');
    cache.set(2, 'b');
    assert.equal(cache.get(1), 'a'); // 1 is now the most recent
    cache.set(3, 'c');
    assert.equal(cache.get(2), undefined);
    assert.equal(cache.get(1), 'a');
    assert.equal(cache.size, 2);
  });
});

describe('logins', () => {
  const experiment = experimentWith({
    fleet: { devices: 1000, reportInterval: '10s', pollInterval: '5s' },
    load: {
      stages: [
        { devices: 300, duration: '30s' }, // ramp 0 -> 300
        { devices: 500, duration: '20s', shape: 'hold' }, // step to 500: 200 join, spread over 5 s
        { devices: 100, duration: '10s' }, // ramp down: nobody logs in
        { devices: 400, duration: '10s' }, // ramp up again: 100..399 join again
      ],
    },
  });
  const plan = buildTrafficPlan(experiment);
  const all = [...loginsBetween(plan, 0, plan.durationS)];

  it('logs each device in when it joins: the ramp, the step change, and again after the fleet shrank', () => {
    assert.equal(all.length, 300 + 200 + 300);
    assert.deepEqual(all.slice(0, 300).map((a) => a.device), Array.from({ length: 300 }, (_, i) => i));
    assert.deepEqual(all.slice(300, 500).map((a) => a.device), Array.from({ length: 200 }, (_, i) => 300 + i));
    assert.deepEqual(all.slice(500).map((a) => a.device), Array.from({ length: 300 }, (_, i) => 100 + i));
  });

  it('are in time order, a ramp\'s at its growth rate and a step\'s spread over the shorter interval', () => {
    for (let i = 1; i < all.length; i++) assert.ok(all[i]!.timeS >= all[i - 1]!.timeS, `login ${i} out of order`);
    // Ramp 0 -> 300 over 30 s: device i joins when the fleet reaches i + 0.5, i.e. at (i + 0.5) / 10 s.
    assert.ok(Math.abs(all[0]!.timeS - 0.05) < 1e-9);
    assert.ok(Math.abs(all[299]!.timeS - 29.95) < 1e-9);
    // The step at 30 s: 200 logins inside [30 s, 35 s).
    assert.ok(all[300]!.timeS >= 30 && all[499]!.timeS < 35);
    // Online at the login time (the traffic model counts round(fleet) devices online).
    for (const login of all.slice(500)) assert.ok(login.timeS >= 60 && login.timeS < 70);
  });

  it('come out the same whether asked for all at once or window by window', () => {
    const windows = [];
    for (let from = 0; from < plan.durationS; from += 0.37) windows.push(...loginsBetween(plan, from, Math.min(plan.durationS, from + 0.37)));
    assert.deepEqual(windows, all);
  });
});

describe('vegeta CSV results', () => {
  const records = [
    '1795804752588167796,201,1234567,180,20,,,,0,POST,http://127.0.0.1:3000/v1/measurements#0,SGVhZGVy\n',
    // An error with a comma, quotes and a newline: Go's encoding/csv quotes it and doubles the quotes.
    '1795804752589000000,0,5000000000,0,0,"Get ""http://127.0.0.1:3000/v1/command#1"": dial tcp: connection refused,\nretry",,,1,GET,http://127.0.0.1:3000/v1/command#1,\n',
    '1795804752590000000,0,998966082,0,0,no targets to attack,,,2,,,\n',
  ];
  const text = records.join('');

  it('reads every record, whatever the chunk boundaries', () => {
    for (let cut = 0; cut <= text.length; cut++) {
      const results: VegetaResult[] = [];
      const reader = new VegetaCsvReader((result) => results.push(result));
      reader.push(text.slice(0, cut));
      reader.push(text.slice(cut));
      assert.equal(results.length, 3, `cut at ${cut}`);
      assert.equal(reader.pending, '');
      assert.equal(results[0]!.code, 201);
      assert.equal(results[0]!.latencyMs, 1.234567);
      assert.equal(results[0]!.url, 'http://127.0.0.1:3000/v1/measurements#0');
      assert.equal(results[0]!.method, 'POST');
      assert.ok(Math.abs(results[0]!.timestampMs - 1795804752588.168) < 0.002);
      assert.equal(results[1]!.error, 'Get "http://127.0.0.1:3000/v1/command#1": dial tcp: connection refused,\nretry');
      assert.equal(results[1]!.url, 'http://127.0.0.1:3000/v1/command#1');
      assert.equal(results[2]!.url, '');
    }
  });

  it('refuses records of another shape', () => {
    const reader = new VegetaCsvReader(() => undefined);
    assert.throws(() => reader.push('1,200,3\n'), /expected 12 columns/);
  });
});

describe('latency histogram', () => {
  it('gives quantiles within 1%', () => {
    const histogram = new LatencyHistogram();
    for (let i = 1; i <= 10_000; i++) histogram.record(i / 10); // 0.1 .. 1000 ms, uniform
    for (const [q, expected] of [[0.5, 500], [0.95, 950], [0.99, 990]] as const) {
      const actual = histogram.quantile(q);
      assert.ok(Math.abs(actual - expected) / expected <= 0.011, `q${q}: ${actual} vs ${expected}`);
    }
    assert.equal(histogram.summary().maxMs, 1000);
  });
});

describe('target lines', () => {
  const experiment = experimentWith({ fleet: { devices: 10, seed: 7 }, load: { stages: [{ devices: 10, duration: '10s' }] } });
  const lines = new TargetLines({
    experiment,
    baseUrls: ['http://127.0.0.1:3001/', 'http://127.0.0.1:3002'],
    tokenSecret: 's'.repeat(20),
    deviceId: (index) => index + 1,
    tokenExpiresAtS: 2_000_000_000,
    tokenCacheSize: 4,
  });

  it('are vegeta JSON targets with the request id as the URL fragment, a device always on the same replica', () => {
    const m = JSON.parse(lines.line('measurements', 17, 3, Date.UTC(2026, 10, 27, 12))) as { method: string; url: string; header: Record<string, string[]>; body: string };
    assert.equal(m.method, 'POST');
    assert.equal(m.url, 'http://127.0.0.1:3002/v1/measurements#17');
    assert.deepEqual(m.header['Content-Type'], ['application/json']);
    assert.equal(m.header.Authorization![0], `Bearer ${mintDeviceToken('s'.repeat(20), 4, 2_000_000_000)}`);
    const body = JSON.parse(Buffer.from(m.body, 'base64').toString('utf8')) as { deviceTime: string };
    assert.equal(body.deviceTime, '2026-11-27T12:00:00.000Z');
    const c = JSON.parse(lines.line('command', 18, 4, 0)) as { method: string; url: string; body?: string };
    assert.equal(c.method, 'GET');
    assert.equal(c.url, 'http://127.0.0.1:3001/v1/command#18');
    assert.equal(c.body, undefined);
    const login = JSON.parse(lines.line('login', 19, 3, 0)) as { url: string; body: string };
    assert.equal(login.url, 'http://127.0.0.1:3002/v1/devices/login#19');
    assert.deepEqual(JSON.parse(Buffer.from(login.body, 'base64').toString('utf8')), { serial: deviceSerial(experiment, 3) });
  });

  it('refuse a base URL that is not a plain origin', () => {
    assert.throws(
      () => new TargetLines({ experiment, baseUrls: ['127.0.0.1:3000'], tokenSecret: 'x', deviceId: (i) => i, tokenExpiresAtS: 0, tokenCacheSize: 1 }),
      /baseUrls: "127.0.0.1:3000"/,
    );
  });
});

// The driver end to end against a trivial in-process server (the real API: driver-api.test.ts).
describe('the driver against a trivial server', { skip: !vegetaAvailable() && 'vegeta is not built: run npm run setup' }, () => {
  const secret = 'trivial-secret-0123456789';
  const experiment = experimentWith({
    fleet: { devices: 60, reportInterval: '1s', pollInterval: '2s', seed: 3 },
    load: { stages: [{ devices: 40, duration: '1s' }, { devices: 60, duration: '2s', shape: 'hold' }] },
  });
  const plan = buildTrafficPlan(experiment);

  it('sends exactly the schedule, with nothing of the fragment on the wire, and serves its metrics', async () => {
    const seen: { url: string; method: string; auth?: string; at: number }[] = [];
    const server = await trivialServer((request) => seen.push({ url: request.url ?? '', method: request.method ?? '', auth: request.headers.authorization, at: Date.now() }));
    let scraped: Promise<string> | undefined;
    try {
      const result = await runDriver({
        experiment,
        plan,
        baseUrls: [server.url],
        tokenSecret: secret,
        metricsPort: 0,
        onProgress: () => void 0,
        onReady: ({ metricsUrl }) => {
          scraped = new Promise((resolve, reject) => setTimeout(() => fetch(metricsUrl).then((r) => r.text()).then(resolve, reject), 1500));
        },
      });
      const expected = expectedCounts(plan);
      for (const endpoint of ['measurements', 'command', 'login'] as const) {
        assert.equal(result.endpoints[endpoint].offered, expected[endpoint], endpoint);
        assert.equal(result.endpoints[endpoint].sent, expected[endpoint], endpoint);
        assert.deepEqual(result.endpoints[endpoint].responses, { '204': expected[endpoint] }, endpoint);
      }
      assert.equal(seen.length, expected.measurements + expected.command + expected.login);
      assert.ok(seen.every((r) => !r.url.includes('#')), 'the fragment must never reach the server');
      assert.equal(seen.filter((r) => r.method === 'GET' && r.url === '/v1/command').length, expected.command);
      assert.equal(seen.filter((r) => r.url === '/v1/devices/login' && r.auth === undefined).length, expected.login);
      assert.ok(seen.filter((r) => r.url === '/v1/measurements').every((r) => r.auth?.startsWith('Bearer ')));
      assert.equal(result.aborted, false);
      assert.equal(result.timeline.length, 2);
      assert.ok(result.timeline.every((phase) => phase.startUnixS !== undefined && phase.endUnixS !== undefined));
      assert.ok(Math.abs(result.timeline[1]!.endUnixS! - result.timeline[0]!.startUnixS! - plan.durationS) < 0.25, 'the schedule takes the plan\'s time');
      const text = await scraped!;
      for (const name of METRIC_NAMES) assert.match(text, new RegExp(`^${name}`, 'm'), `${name} missing from /metrics`);
      assert.match(text, /^process_cpu_seconds_total/m);
    } finally {
      await server.close();
    }
  });

  it('runs a phase range alone: its arrivals, and logins only for the devices that join in it', async () => {
    const server = await trivialServer(() => undefined);
    try {
      const result = await runDriver({ experiment, plan, phaseRange: { from: 1, to: 2 }, baseUrls: [server.url], tokenSecret: secret, metricsPort: 0 });
      const [from, to] = [plan.phases[1]!.startS, plan.phases[1]!.endS];
      assert.equal(result.endpoints.measurements.sent, count(arrivalsBetween(plan, 'measurements', from, to)));
      assert.equal(result.endpoints.command.sent, count(arrivalsBetween(plan, 'command', from, to)));
      assert.equal(result.endpoints.login.sent, 20, 'the hold steps the fleet from 40 to 60');
      assert.deepEqual(result.timeline.map((phase) => phase.index), [1]);
      assert.equal(result.totals.errors, 0);
    } finally {
      await server.close();
    }
  });

  it('stops on abort, answers what is in flight, and leaves no vegeta process behind', async () => {
    const server = await trivialServer(() => undefined);
    const controller = new AbortController();
    let pids: readonly number[] = [];
    try {
      const started = Date.now();
      const result = await runDriver({
        experiment,
        plan,
        baseUrls: [server.url],
        tokenSecret: secret,
        metricsPort: 0,
        signal: controller.signal,
        onReady: (info) => {
          pids = info.enginePids;
          setTimeout(() => controller.abort(), 500);
        },
      });
      assert.equal(result.aborted, true);
      assert.ok(Date.now() - started < 2500, 'an abort ends the run promptly');
      // Aborted about 0.35 s into the schedule: inside the first phase (1 s), which ends at the abort; the second never starts.
      assert.ok(result.timeline[0]!.startUnixS !== undefined && result.timeline[0]!.endUnixS !== undefined);
      assert.deepEqual([result.timeline[1]!.startUnixS, result.timeline[1]!.endUnixS], [undefined, undefined]);
      assert.ok(result.totals.sent > 0 && result.totals.sent < result.endpoints.measurements.offered + expectedCounts(plan).command + expectedCounts(plan).login);
      assert.equal(Object.values(result.totals.responses).reduce((a, b) => a + b, 0), result.totals.sent, 'every request sent was answered');
      assert.equal(pids.length, 2);
      for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `vegeta process ${pid} is still there`);
    } finally {
      await server.close();
    }
  });
});

function vegetaAvailable(): boolean {
  try {
    // Resolved the same way the driver does.
    return existsSync(process.env.LOADLAB_VEGETA ?? `${process.env.LOADLAB_CACHE || `${process.env.HOME}/.cache/loadlab`}/bin/vegeta-v12.13.0`);
  } catch {
    return false;
  }
}

function expectedCounts(plan: TrafficPlan) {
  return {
    measurements: count(arrivalsBetween(plan, 'measurements', 0, plan.durationS)),
    command: count(arrivalsBetween(plan, 'command', 0, plan.durationS)),
    login: count(loginsBetween(plan, 0, plan.durationS)),
  };
}

async function trivialServer(onRequest: (request: IncomingMessage) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    onRequest(request);
    request.resume();
    request.on('end', () => response.writeHead(204).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
