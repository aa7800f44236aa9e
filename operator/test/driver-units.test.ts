import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import {
  DeviceRequests,
  DriverCounters,
  DueQueue,
  HttpEngine,
  LatencyHistogram,
  TokenCache,
  METRIC_NAMES,
  Pacer,
  PhaseTracker,
  failureKind,
  runDriver,
  type FailureKind,
} from '../src/driver/index.js';
import { mintDeviceToken } from '../src/contract/device-token.js';
import { base64urlOf, HmacSha256 } from '../src/contract/hmac-sha256.js';
import { arrivalCounts, buildTrafficPlan, deviceSerial, loginArrivals, type Arrival } from '../src/traffic/index.js';
import { experimentWith as sharedExperimentWith } from './support/fixtures.js';

const experimentWith = (spec: Record<string, unknown>) => sharedExperimentWith(spec, 'driver');

describe('device tokens', () => {
  it('are the API\'s own format: the API\'s verifier accepts them and reads the claims back', async () => {
    // The API's compiled module, next to the API package's entry point (build the api workspace first).
    const url = new URL('./auth/device-token.js', import.meta.resolve('@loadlab/api'));
    const { DeviceTokens } = (await import(url.href)) as {
      DeviceTokens: new (secret: string, ttl: number) => { verify(token: string, nowMs?: number): { deviceId: number; expiresAt: number } | undefined };
    };
    const secret = 'driver-test-secret-0123456789';
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const token = mintDeviceToken(secret, 4242, expiresAt);
    assert.deepEqual(new DeviceTokens(secret, 3600).verify(token), { deviceId: 4242, expiresAt });
    assert.equal(new DeviceTokens(`${secret}x`, 3600).verify(token), undefined, 'another secret must not verify');
  });

  it('are cached in a bounded cache that mints each device once while the fleet fits', () => {
    const minted: number[] = [];
    const cache = new TokenCache(3, (device) => (minted.push(device), `t${device}`));
    for (const device of [0, 1, 2, 0, 1, 2]) assert.equal(cache.get(device), `t${device}`);
    assert.deepEqual(minted, [0, 1, 2], 'a fleet within the capacity mints each token once');
    assert.equal(cache.get(3), 't3'); // slot 0 is device 0's: 3 is minted, not kept
    assert.equal(cache.get(3), 't3');
    assert.equal(cache.get(0), 't0');
    assert.deepEqual(minted, [0, 1, 2, 3, 3], 'a device without a slot is minted each time, never given another\'s token');
  });
});

describe('logins (the traffic model\'s rule, as the driver runs it)', () => {
  const plan = buildTrafficPlan(
    experimentWith({
      fleet: { devices: 1000, reportInterval: '10s', pollInterval: '5s' },
      load: {
        stages: [
          { devices: 300, duration: '30s' }, // ramp 0 -> 300
          { devices: 500, duration: '20s', shape: 'hold' }, // step to 500: 200 join, spread over 5 s
          { devices: 100, duration: '10s' }, // ramp down: nobody logs in
          { devices: 400, duration: '10s' }, // ramp up again, below the peak: nobody logs in again
        ],
      },
    }),
  );
  const all = [...loginArrivals(plan)];

  it('log each device in once, when the fleet first grows past it; a device that comes back keeps its token', () => {
    assert.equal(all.length, 500);
    assert.deepEqual(all.map((a) => a.device), Array.from({ length: 500 }, (_, i) => i));
  });

  it('are in time order, a ramp\'s at its growth rate and a step\'s spread over the shorter interval', () => {
    for (let i = 1; i < all.length; i++) assert.ok(all[i]!.timeS > all[i - 1]!.timeS, `login ${i} out of order`);
    // Ramp 0 -> 300 over 30 s: the k-th login when k + 1 devices have joined, at (k + 1) / 10 s.
    assert.ok(Math.abs(all[0]!.timeS - 0.1) < 1e-9);
    assert.ok(Math.abs(all[299]!.timeS - 30) < 1e-9);
    // The step at 30 s: 200 logins over the shorter interval (5 s).
    assert.ok(Math.abs(all[300]!.timeS - 30.025) < 1e-9 && Math.abs(all[499]!.timeS - 35) < 1e-9);
  });
});

describe('the pacer', () => {
  const stream = (times: number[], device = 0): Iterator<Arrival, void, undefined> => times.map((timeS, i) => ({ timeS, device: device + i }))[Symbol.iterator]();

  it('keeps due arrivals in a FIFO that grows past its first size', () => {
    const queue = new DueQueue();
    for (let i = 0; i < 5000; i++) queue.push(i, i * 2, i % 3);
    for (let i = 0; i < 5000; i++) {
      assert.deepEqual([queue.time, queue.device, queue.stream], [i, i * 2, i % 3]);
      queue.shift();
    }
    assert.equal(queue.length, 0);
  });

  it('offers the streams\' arrivals in time order as they fall due, and drops what waited longer than maxLag', () => {
    const events: string[] = [];
    const pacer = new Pacer([stream([0.1, 0.4, 2.0]), stream([0.2, 0.3], 100)], 1, { offered: (s) => events.push(`offered ${s}`), dropped: (s) => events.push(`dropped ${s}`) });
    pacer.advance(0.35);
    assert.deepEqual(events, ['offered 0', 'offered 1', 'offered 1']);
    assert.equal(pacer.due.length, 3);
    assert.ok(Math.abs(pacer.lagS(0.35) - 0.25) < 1e-12, 'the oldest waiting arrival is 0.25 s late');
    assert.deepEqual([pacer.due.time, pacer.due.device, pacer.due.stream], [0.1, 0, 0]);
    pacer.due.shift(); // sent
    pacer.advance(1.35); // 0.2 and 0.3 are now more than 1 s behind
    assert.deepEqual(events.slice(3), ['offered 0', 'dropped 1', 'dropped 1']);
    assert.equal(pacer.due.length, 1);
    pacer.due.shift();
    assert.equal(pacer.exhausted, false, 'one arrival is still to come');
    pacer.advance(2.0);
    pacer.due.shift();
    assert.equal(pacer.exhausted, true);
    assert.equal(pacer.lagS(5), 0);
  });
});

describe('the phase tracker', () => {
  const plan = buildTrafficPlan(experimentWith({ fleet: { devices: 50 }, load: { stages: [{ devices: 40, duration: '10s' }, { devices: 50, duration: '5s', shape: 'hold' }] } }));

  it('records when the schedule entered and left each phase, and cuts the running one on an abort', () => {
    const tracker = new PhaseTracker(plan, { from: 0, to: 2 });
    const unixAt = (planS: number) => 1000 + planS;
    tracker.follow(0, unixAt);
    assert.equal(tracker.phase, 0);
    tracker.follow(10.5, unixAt); // woke up late: the boundary is still recorded at its own time
    assert.equal(tracker.phase, 1);
    assert.deepEqual([tracker.timeline[0]!.startUnixS, tracker.timeline[0]!.endUnixS, tracker.timeline[1]!.startUnixS], [1000, 1010, 1010]);
    assert.equal(tracker.fleetAt(12), 50);
    tracker.cut(1012);
    assert.equal(tracker.timeline[1]!.endUnixS, 1012);
    assert.equal(tracker.fleetAt(15), 0, 'no fleet after the range');
  });
});

describe('requests', () => {
  const experiment = experimentWith({ fleet: { devices: 10, seed: 7 }, load: { stages: [{ devices: 10, duration: '10s' }] } });
  const requests = new DeviceRequests({
    experiment,
    baseUrls: ['http://127.0.0.1:3001/', 'http://127.0.0.1:3002/api'],
    tokenSecret: 's'.repeat(20),
    deviceId: (index) => index + 1,
    tokenExpiresAtS: 2_000_000_000,
    tokenCacheSize: 4,
  });

  it('are the API\'s requests, with the device\'s own token, a device always on the same replica', () => {
    assert.deepEqual(requests.origins, ['http://127.0.0.1:3001', 'http://127.0.0.1:3002']);
    const m = requests.build('measurements', 3, Date.UTC(2026, 10, 27, 12));
    assert.deepEqual([m.origin, m.method, m.path], [1, 'POST', '/api/v1/measurements']);
    assert.deepEqual(m.headers, ['authorization', `Bearer ${mintDeviceToken('s'.repeat(20), 4, 2_000_000_000)}`, 'content-type', 'application/json']);
    assert.equal((JSON.parse(m.body!) as { deviceTime: string }).deviceTime, '2026-11-27T12:00:00.000Z');
    const c = requests.build('command', 4, 0);
    assert.deepEqual([c.origin, c.method, c.path, c.body], [0, 'GET', '/v1/command', null]);
    const login = requests.build('login', 3, 0);
    assert.equal(login.path, '/api/v1/devices/login');
    const serial = deviceSerial(experiment, 3);
    assert.deepEqual(JSON.parse(login.body!), { serial, key: createHmac('sha256', 's'.repeat(20)).update(`loadlab-device-key:${serial}`).digest('base64url') }, 'the serial and its key');
  });

  it('refuse a base URL that is not a plain origin', () => {
    assert.throws(
      () => new DeviceRequests({ experiment, baseUrls: ['127.0.0.1:3000'], tokenSecret: 'x', deviceId: (i) => i, tokenExpiresAtS: 0, tokenCacheSize: 1 }),
      /baseUrls: "127.0.0.1:3000"/,
    );
  });
});

describe('counters and the latency histogram', () => {
  it('count responses by status, failures by kind, errors, late sends', () => {
    const counters = new DriverCounters();
    counters.offered('command');
    counters.sent('command', 0.01);
    counters.sent('command', 0.2);
    counters.completed('command', 200, undefined, 3);
    counters.completed('command', 0, 'timeout', 10_000);
    counters.completed('command', 503, undefined, 1);
    const totals = counters.totals();
    assert.deepEqual(totals.responses, { '200': 1, error: 1, '503': 1 });
    assert.equal(totals.failures.timeout, 1);
    assert.equal(totals.errors, 2);
    assert.equal(totals.late, 1);
    assert.equal(counters.endpointTotals().command.latency.count, 2, 'a failure has no latency');
  });

  it('give quantiles within 1%', () => {
    const histogram = new LatencyHistogram();
    for (let i = 1; i <= 10_000; i++) histogram.record(i / 10); // 0.1 .. 1000 ms, uniform
    for (const [q, expected] of [[0.5, 500], [0.95, 950], [0.99, 990]] as const) {
      const actual = histogram.quantile(q);
      assert.ok(Math.abs(actual - expected) / expected <= 0.011, `q${q}: ${actual} vs ${expected}`);
    }
    assert.equal(histogram.summary().maxMs, 1000);
  });
});

// Each kind of failure made for real, on loopback: what the engine reports.
describe('the HTTP engine', () => {
  const run = async (origin: string, options: { timeoutS?: number; requests?: number } = {}) => {
    const completions: { status: number; failure: FailureKind | undefined }[] = [];
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    const count = options.requests ?? 1;
    const engine = new HttpEngine({
      origins: [origin],
      maxInFlight: 4,
      requestTimeoutS: options.timeoutS ?? 5,
      onComplete: (_tag, status, failure) => {
        completions.push({ status, failure });
        if (completions.length === count) done();
      },
    });
    for (let i = 0; i < count; i++) engine.send(0, 'GET', '/v1/command', ['authorization', 'Bearer x'], null, 1);
    assert.equal(engine.inFlight, count);
    await all;
    assert.equal(engine.inFlight, 0);
    await engine.close();
    return completions;
  };

  it('reports HTTP statuses as they are, 5xx included', async () => {
    let status = 201;
    const server = await httpServer((_request, response) => response.writeHead(status++).end('{}'));
    try {
      assert.deepEqual(await run(server.url, { requests: 1 }), [{ status: 201, failure: undefined }]);
      status = 503;
      assert.deepEqual(await run(server.url), [{ status: 503, failure: undefined }]);
    } finally {
      await server.close();
    }
  });

  it('classifies a refused connection, a timeout, a reset and a response that is not HTTP', async () => {
    const closedPort = await tcpServer(() => undefined);
    await closedPort.close(); // nothing listens there any more
    assert.deepEqual(await run(closedPort.url), [{ status: 0, failure: 'refused' }]);
    const silent = await tcpServer(() => undefined); // accepts, never answers
    const reset = await tcpServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const garbage = await tcpServer((socket) => socket.once('data', () => socket.end('SMTP ready\r\n\r\n')));
    try {
      assert.deepEqual(await run(silent.url, { timeoutS: 0.3 }), [{ status: 0, failure: 'timeout' }]);
      assert.deepEqual(await run(reset.url), [{ status: 0, failure: 'reset' }]);
      assert.deepEqual(await run(garbage.url), [{ status: 0, failure: 'protocol' }]);
    } finally {
      await Promise.all([silent.close(), reset.close(), garbage.close()]);
    }
    assert.equal(failureKind(new Error('no code')), 'other');
  });

  it('refuses to go past its concurrency cap (the pacer must wait for room)', async () => {
    const engine = new HttpEngine({ origins: ['http://127.0.0.1:9'], maxInFlight: 1, requestTimeoutS: 1, onComplete: () => undefined });
    engine.send(0, 'GET', '/', [], null, 0);
    assert.equal(engine.free, 0);
    assert.throws(() => engine.send(0, 'GET', '/', [], null, 0), /concurrency is 1 \(cap 1\)/);
    await engine.close();
  });

  // The pacer's way of sending: everything there is room for, and noRoom() when it runs out.
  const fill = (engine: HttpEngine) => {
    while (engine.free > 0) engine.send(0, 'GET', '/v1/command', [], null, 0);
    engine.noRoom();
  };
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('opens more connections while a slow API holds them and this process has time to spare, up to the cap', async () => {
    const server = await httpServer((_request, response) => void setTimeout(() => response.writeHead(204).end(), 300));
    const engine = new HttpEngine({ origins: [server.url], maxInFlight: 300, requestTimeoutS: 5, onComplete: () => undefined });
    try {
      assert.equal(engine.concurrency, 64, 'starts at 64');
      for (let round = 0; round < 100 && engine.concurrency < 300; round++) {
        fill(engine);
        await pause(10);
      }
      assert.equal(engine.concurrency, 300, 'doubled while the loop idled (64, 128, 256), then the cap');
      fill(engine);
      assert.equal(engine.inFlight, 300);
      assert.equal(engine.connectionsOpened, 300, 'one connection per request in flight');
    } finally {
      await engine.close();
      await server.close();
    }
  });

  it('keeps its concurrency when this process is what is busy (more connections would only cost more)', async () => {
    const server = await httpServer((_request, response) => void setTimeout(() => response.writeHead(204).end(), 2000));
    const engine = new HttpEngine({ origins: [server.url], maxInFlight: 300, requestTimeoutS: 5, onComplete: () => undefined });
    try {
      for (let round = 0; round < 6; round++) {
        fill(engine);
        const until = performance.now() + 120;
        while (performance.now() < until); // this process busy: 120 ms of every 135
        await pause(15);
      }
      fill(engine);
      assert.equal(engine.concurrency, 64);
      assert.equal(engine.inFlight, 64);
    } finally {
      await engine.close();
      await server.close();
    }
  });
});

// The driver end to end against a trivial in-process server (the real API: driver-api.test.ts).
describe('the driver against a trivial server', () => {
  const secret = 'trivial-secret-0123456789';
  const experiment = experimentWith({
    fleet: { devices: 60, reportInterval: '1s', pollInterval: '2s', seed: 3 },
    load: { stages: [{ devices: 40, duration: '1s' }, { devices: 60, duration: '2s', shape: 'hold' }] },
  });
  const plan = buildTrafficPlan(experiment);

  it('sends exactly the schedule and serves its metrics', async () => {
    const seen: { url: string; method: string; auth?: string }[] = [];
    const server = await httpServer((request, response) => {
      seen.push({ url: request.url ?? '', method: request.method ?? '', auth: request.headers.authorization });
      request.resume();
      request.on('end', () => response.writeHead(204).end());
    });
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
      const expected = arrivalCounts(plan);
      for (const endpoint of ['measurements', 'command', 'login'] as const) {
        assert.equal(result.endpoints[endpoint].offered, expected[endpoint], endpoint);
        assert.equal(result.endpoints[endpoint].sent, expected[endpoint], endpoint);
        assert.deepEqual(result.endpoints[endpoint].responses, { '204': expected[endpoint] }, endpoint);
      }
      assert.equal(seen.length, expected.measurements + expected.command + expected.login);
      assert.equal(seen.filter((r) => r.method === 'GET' && r.url === '/v1/command').length, expected.command);
      assert.equal(seen.filter((r) => r.url === '/v1/devices/login' && r.auth === undefined).length, expected.login);
      assert.ok(seen.filter((r) => r.url === '/v1/measurements').every((r) => r.auth?.startsWith('Bearer ')));
      assert.equal(result.aborted, false);
      assert.equal(result.timeline.length, 2);
      assert.ok(result.timeline.every((phase) => phase.startUnixS !== undefined && phase.endUnixS !== undefined));
      assert.ok(result.cpuSeconds > 0);
      const text = await scraped!;
      for (const name of METRIC_NAMES) assert.match(text, new RegExp(`^${name}`, 'm'), `${name} missing from /metrics`);
      assert.match(text, /^process_cpu_seconds_total/m);
    } finally {
      await server.close();
    }
  });

  it('runs a phase range alone: its arrivals, and logins only for the devices that join in it', async () => {
    const server = await httpServer((_request, response) => response.writeHead(204).end());
    try {
      const result = await runDriver({ experiment, plan, phaseRange: { from: 1, to: 2 }, baseUrls: [server.url], tokenSecret: secret, metricsPort: 0 });
      const expected = arrivalCounts(plan, { from: 1, to: 2 });
      assert.equal(result.endpoints.measurements.sent, expected.measurements);
      assert.equal(result.endpoints.command.sent, expected.command);
      assert.equal(result.endpoints.login.sent, 20, 'the hold steps the fleet from 40 to 60');
      assert.deepEqual(result.timeline.map((phase) => phase.index), [1]);
      assert.equal(result.totals.errors, 0);
    } finally {
      await server.close();
    }
  });

  it('two runners with one start time send the schedule between them, each arrival once (runner slices)', async () => {
    const measurements: string[] = [];
    const byPath = new Map<string, number>();
    const server = await httpServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        byPath.set(request.url ?? '', (byPath.get(request.url ?? '') ?? 0) + 1);
        // A device's token and its reading's time tell one arrival from another.
        if (request.url === '/v1/measurements') measurements.push(`${request.headers.authorization} ${(JSON.parse(body) as { deviceTime: string }).deviceTime}`);
        response.writeHead(204).end();
      });
    });
    try {
      const startAtUnixMs = Date.now() + 300;
      const runners = await Promise.all(
        [0, 1].map((index) =>
          runDriver({ experiment, plan, baseUrls: [server.url], tokenSecret: secret, metricsPort: 0, slice: { index, count: 2 }, startAtUnixMs, ...(index === 1 ? { metricsHost: '0.0.0.0' } : {}) }),
        ),
      );
      const whole = arrivalCounts(plan);
      for (const endpoint of ['measurements', 'command', 'login'] as const) {
        runners.forEach((result, index) => assert.equal(result.endpoints[endpoint].sent, arrivalCounts(plan, undefined, { index, count: 2 })[endpoint], `runner ${index} ${endpoint}`));
        assert.equal(runners[0]!.endpoints[endpoint].sent + runners[1]!.endpoints[endpoint].sent, whole[endpoint], `${endpoint}: the two slices are the schedule`);
      }
      assert.equal(byPath.get('/v1/measurements'), whole.measurements);
      assert.equal(byPath.get('/v1/command'), whole.command);
      assert.equal(byPath.get('/v1/devices/login'), whole.login);
      assert.equal(new Set(measurements).size, measurements.length, 'no measurement sent twice');
      for (const result of runners) {
        assert.equal(result.startUnixS, startAtUnixMs / 1000, 'both schedules start at the common start time');
        assert.equal(result.totals.dropped, 0);
      }
      assert.match(runners[1]!.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'a server on every interface is reached through loopback');
    } finally {
      await server.close();
    }
  });

  it('joins a schedule that started before it where it is now: what fell due more than maxLag ago is offered and dropped', async () => {
    const server = await httpServer((_request, response) => response.writeHead(204).end());
    try {
      const startAtUnixMs = Date.now() - 1800;
      const result = await runDriver({ experiment, plan, baseUrls: [server.url], tokenSecret: secret, metricsPort: 0, startAtUnixMs, maxLagS: 0.5 });
      const whole = arrivalCounts(plan);
      for (const endpoint of ['measurements', 'command', 'login'] as const) {
        const counts = result.endpoints[endpoint];
        assert.equal(counts.offered, whole[endpoint], `${endpoint}: the whole schedule is offered`);
        assert.equal(counts.sent + counts.dropped, counts.offered, `${endpoint}: what was not sent is dropped`);
      }
      assert.ok(result.totals.dropped > 0 && result.totals.sent > 0, `dropped ${result.totals.dropped}, sent ${result.totals.sent}`);
      assert.equal(result.timeline[0]!.startUnixS, startAtUnixMs / 1000, 'the timeline keeps the schedule\'s own times');
    } finally {
      await server.close();
    }
  });

  it('stops on abort: the running phase ends there, what was sent is accounted for', async () => {
    const server = await httpServer((_request, response) => response.writeHead(204).end());
    const controller = new AbortController();
    try {
      const result = await runDriver({
        experiment,
        plan,
        baseUrls: [server.url],
        tokenSecret: secret,
        metricsPort: 0,
        signal: controller.signal,
        onReady: () => void setTimeout(() => controller.abort(), 400),
      });
      assert.equal(result.aborted, true);
      // Aborted about 0.35 s into the schedule: inside the first phase (1 s), which ends at the abort; the second never starts.
      assert.ok(result.timeline[0]!.startUnixS !== undefined && result.timeline[0]!.endUnixS !== undefined);
      assert.deepEqual([result.timeline[1]!.startUnixS, result.timeline[1]!.endUnixS], [undefined, undefined]);
      const expected = arrivalCounts(plan);
      assert.ok(result.totals.sent > 0 && result.totals.sent < expected.measurements + expected.command + expected.login);
      assert.equal(Object.values(result.totals.responses).reduce((a, b) => a + b, 0), result.totals.sent, 'every request sent has its outcome');
    } finally {
      await server.close();
    }
  });
});

async function httpServer(handler: (request: IncomingMessage, response: import('node:http').ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(handler);
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

/** A raw TCP listener on loopback, for the failures an HTTP server would not produce. */
async function tcpServer(onConnection: (socket: Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('HMAC-SHA256 for device tokens (plain JavaScript, preallocated)', () => {
  it('equals node:crypto on keys of every length around the block and messages up to 55 characters', () => {
    const ascii = (length: number, seed: number) => Array.from({ length }, (_, i) => String.fromCharCode(33 + ((seed * 31 + i * 17) % 94))).join('');
    let checked = 0;
    for (const keyLength of [0, 1, 16, 31, 32, 55, 63, 64, 65, 100]) {
      const key = Buffer.from(ascii(keyLength, keyLength + 1), 'utf8');
      const hmac = new HmacSha256(key);
      for (let length = 0; length <= HmacSha256.MAX_MESSAGE; length++) {
        const message = ascii(length, length * 7 + keyLength);
        assert.equal(hmac.base64url(message), createHmac('sha256', key).update(message).digest('base64url'), `key ${keyLength} bytes, message ${JSON.stringify(message)}`);
        checked++;
      }
    }
    assert.equal(checked, 560);
    assert.throws(() => new HmacSha256(Buffer.from('k')).base64url('x'.repeat(56)), /longer than 55/);
    assert.throws(() => new HmacSha256(Buffer.from('k')).base64url('é'), /ASCII/);
  });

  it('encodes base64url without padding like Buffer does, for every length mod 3', () => {
    for (let length = 0; length < 40; length++) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 97 + length * 13) & 0xff);
      assert.equal(base64urlOf(bytes), Buffer.from(bytes).toString('base64url'));
    }
  });
});
