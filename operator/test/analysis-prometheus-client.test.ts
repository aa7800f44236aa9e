import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isMissing, PrometheusClient, RetryableError, TerminalError, type Missing } from '../src/analysis/index.js';
import { matrix, startFakePrometheus, type FakeAnswer, type FakePrometheus } from './fixtures/analysis/fake-prometheus.js';

/*
 * The client against a fake Prometheus (node:http on loopback): error kinds need answers a real
 * Prometheus cannot be made to give on demand. The real-Prometheus tests run with the end-to-end
 * fixture.
 */

let answer: FakeAnswer = { body: {} };
let fake: FakePrometheus;

before(async () => {
  fake = await startFakePrometheus(() => answer);
});
after(async () => {
  await fake.close();
});

describe('fake Prometheus: successful queries', () => {
  it('sends a form-encoded POST to /api/v1/query_range and parses the matrix, NaN and ±Inf included', async () => {
    answer = matrix([
      { metric: { route: '/v1/command' }, values: [[100, '1.5'], [115, 'NaN'], [130, '+Inf']] },
      { metric: { route: '/v1/measurements' }, values: [[100, '-Inf']] },
    ]);
    const client = new PrometheusClient({ baseUrl: `${fake.url}/` });
    const result = await client.range('sum by (route) (rate(x[1m]))', 100, 130, 15);
    assert.ok(!isMissing(result));
    assert.deepEqual(result[0]!.labels, { route: '/v1/command' });
    assert.deepEqual(result[0]!.samples.slice(0, 1), [[100, 1.5]]);
    assert.ok(Number.isNaN(result[0]!.samples[1]![1]));
    assert.equal(result[0]!.samples[2]![1], Infinity);
    assert.equal(result[1]!.samples[0]![1], -Infinity);
    const request = fake.requests.at(-1)!;
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/api/v1/query_range');
    assert.match(request.contentType, /application\/x-www-form-urlencoded/);
    assert.deepEqual(request.params, { query: 'sum by (route) (rate(x[1m]))', start: '100', end: '130', step: '15' });
    assert.equal(client.queryCount, 1);
  });

  it('reports an empty result as Missing, never as 0', async () => {
    const client = new PrometheusClient({ baseUrl: fake.url });
    answer = matrix([]);
    const range = await client.range('absent_metric', 0, 60, 15);
    assert.deepEqual(range, { missing: true, query: 'absent_metric' } satisfies Missing);
    answer = { body: { status: 'success', data: { resultType: 'vector', result: [] } } };
    assert.ok(isMissing(await client.instant('absent_metric')));
    assert.ok(isMissing(await client.instantValue('absent_metric')));
    assert.equal(client.queryCount, 3);
  });

  it('reads instant vectors and scalars, at a given time', async () => {
    const client = new PrometheusClient({ baseUrl: fake.url });
    answer = { body: { status: 'success', data: { resultType: 'scalar', result: [1700000000, '0'] } } };
    assert.equal(await client.instantValue('scalar(vector(0))', 1700000000), 0, 'a real zero stays a zero');
    assert.deepEqual(fake.requests.at(-1)!.params, { query: 'scalar(vector(0))', time: '1700000000' });
    answer = { body: { status: 'success', data: { resultType: 'vector', result: [{ metric: { a: '1' }, value: [5, '2'] }, { metric: { a: '2' }, value: [5, '3'] }] } } };
    assert.deepEqual(await client.instant('x'), [{ labels: { a: '1' }, time: 5, value: 2 }, { labels: { a: '2' }, time: 5, value: 3 }]);
    await assert.rejects(client.instantValue('x'), (error: unknown) => error instanceof TerminalError && /expected one series/.test(error.message));
  });

  it('splits a range longer than the point limit into consecutive requests and joins the series', async () => {
    const seen: [number, number][] = [];
    const splitFake = await startFakePrometheus((request) => {
      const start = Number(request.params.start);
      const end = Number(request.params.end);
      const step = Number(request.params.step);
      seen.push([start, end]);
      const values: [number, string][] = [];
      for (let t = start; t <= end; t += step) values.push([t, String(t)]);
      return matrix([{ metric: { a: 'x' }, values }]);
    });
    try {
      const split = new PrometheusClient({ baseUrl: splitFake.url, maxPointsPerRequest: 5 });
      const result = await split.range('q', 0, 130, 10);
      assert.ok(!isMissing(result));
      assert.deepEqual(seen, [[0, 40], [50, 90], [100, 130]]);
      assert.deepEqual(result[0]!.samples.map(([t]) => t), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130]);
      assert.equal(split.queryCount, 3, 'each chunk is a query');
    } finally {
      await splitFake.close();
    }
  });
});

describe('fake Prometheus: errors by kind', () => {
  const cases: { name: string; answer: FakeAnswer; type: typeof RetryableError | typeof TerminalError; kind: string; message: RegExp }[] = [
    {
      name: 'a bad query (400 bad_data) is terminal and carries Prometheus\' message',
      answer: { status: 400, body: { status: 'error', errorType: 'bad_data', error: '1:5: parse error: unexpected "}"' } },
      type: TerminalError, kind: 'bad-query', message: /parse error: unexpected "}"/,
    },
    {
      name: 'an evaluation error (422 execution) is terminal',
      answer: { status: 422, body: { status: 'error', errorType: 'execution', error: 'query processing would load too many samples' } },
      type: TerminalError, kind: 'bad-query', message: /too many samples/,
    },
    {
      name: 'a 4xx without a Prometheus body is terminal',
      answer: { status: 404, raw: 'not found' },
      type: TerminalError, kind: 'bad-query', message: /not found/,
    },
    {
      name: 'a 503 is retryable',
      answer: { status: 503, raw: 'Service Unavailable' },
      type: RetryableError, kind: 'server', message: /HTTP 503/,
    },
    {
      name: 'a 502 from a proxy (HTML) is retryable',
      answer: { status: 502, raw: '<html>bad gateway</html>' },
      type: RetryableError, kind: 'server', message: /HTTP 502/,
    },
    {
      name: '429 (slow down) is retryable',
      answer: { status: 429, raw: 'too many requests' },
      type: RetryableError, kind: 'server', message: /HTTP 429/,
    },
    {
      name: 'Prometheus\' own query timeout (503, errorType timeout) is retryable',
      answer: { status: 503, body: { status: 'error', errorType: 'timeout', error: 'query timed out in expression evaluation' } },
      type: RetryableError, kind: 'timeout', message: /timed out/,
    },
    {
      name: 'status "error" on HTTP 200 is still an error (bad_data: terminal)',
      answer: { status: 200, body: { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query"' } },
      type: TerminalError, kind: 'bad-query', message: /invalid parameter/,
    },
    {
      name: 'status "error" on HTTP 200 with errorType unavailable is retryable',
      answer: { status: 200, body: { status: 'error', errorType: 'unavailable', error: 'TSDB not ready' } },
      type: RetryableError, kind: 'server', message: /TSDB not ready/,
    },
    {
      name: 'a 200 that is not Prometheus JSON (a proxy login page) is terminal',
      answer: { status: 200, raw: '<html>please log in</html>' },
      type: TerminalError, kind: 'malformed', message: /something other than its JSON API/,
    },
    {
      name: 'a success body of the wrong shape is terminal',
      answer: { status: 200, body: { status: 'success', data: { resultType: 'vector', result: [] } } },
      type: TerminalError, kind: 'malformed', message: /expected a matrix/,
    },
  ];
  for (const testCase of cases) {
    it(testCase.name, async () => {
      answer = testCase.answer;
      const client = new PrometheusClient({ baseUrl: fake.url });
      await assert.rejects(client.range('up', 0, 60, 15), (error: unknown) => {
        assert.ok(error instanceof testCase.type, `expected ${testCase.type.name}, got ${String(error)}`);
        assert.equal((error as RetryableError).kind, testCase.kind);
        assert.match((error as Error).message, testCase.message);
        assert.equal((error as RetryableError).query, 'up');
        return true;
      });
      assert.equal(client.queryCount, 1);
    });
  }

  it('a Prometheus that does not answer in time is retryable (timeout)', async () => {
    answer = { hang: true };
    const client = new PrometheusClient({ baseUrl: fake.url, timeoutMs: 150 });
    // The fake never answers: only the client's own timeout can end this request.
    await assert.rejects(client.range('up', 0, 60, 15), (error: unknown) => error instanceof RetryableError && error.kind === 'timeout' && /150 ms/.test(error.message));
  });

  it('an unreachable Prometheus (nothing listening) is retryable, and says where it looked', async () => {
    const port = await freePort();
    const client = new PrometheusClient({ baseUrl: `http://127.0.0.1:${port}` });
    await assert.rejects(client.range('up', 0, 60, 15), (error: unknown) =>
      error instanceof RetryableError && error.kind === 'unreachable' && error.message.includes(`127.0.0.1:${port}`) && /ECONNREFUSED/.test(error.message));
  });

  it('cancelling through the client\'s signal is neither retried nor reported as an outage', async () => {
    answer = { hang: true };
    const controller = new AbortController();
    const client = new PrometheusClient({ baseUrl: fake.url, signal: controller.signal });
    const pending = client.range('up', 0, 60, 15);
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pending, (error: unknown) => error instanceof TerminalError && error.kind === 'cancelled');
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
