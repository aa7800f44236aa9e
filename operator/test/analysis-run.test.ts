import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { analyzeRun, buildCatalog, PrometheusClient, renderMarkdown, RetryableError, TerminalError, uslCapacity, type Bottleneck, type Source } from '../src/analysis/index.js';
import { formatErrors, parseExperiment, type LoadEngine } from '../src/schema/index.js';
import { startFakePrometheus, type FakeHandler, type FakePrometheus } from './fixtures/analysis/fake-prometheus.js';
import { searchTimeline, syntheticHandler, type Scenario } from './fixtures/analysis/synthetic-run.js';
import { DEFAULT_THRESHOLDS } from '../src/schema/thresholds.js';

/*
 * analyzeRun end to end against a fake Prometheus serving a synthetic run (the real-Prometheus
 * runs with injected bottlenecks come with the local-mode end-to-end fixture): a one-hour
 * breaking-point search of 20 steps (30 s ramp + 150 s hold each) at 15 s resolution.
 */

const START = 1_700_000_000;
const SELECTOR = 'experiment="synthetic",run="1"';
const STEP_S = 15;
const timeline = searchTimeline(START);
const slo = { latencyPercentile: 95, latencyThreshold: '250ms', maxErrorRate: 0.01 };

let handler: FakeHandler = () => ({ status: 500, raw: 'no handler' });
let fake: FakePrometheus;
before(async () => {
  fake = await startFakePrometheus((request) => handler(request));
});
after(async () => {
  await fake.close();
});

function run(scenario: Scenario, client = new PrometheusClient({ baseUrl: fake.url }), stages = timeline) {
  const rateWindowS = scenario.source === 'local' ? 20 : 60;
  handler = syntheticHandler(scenario, stages, rateWindowS, SELECTOR);
  return analyzeRun({ prometheus: client, selector: SELECTOR, timeline: stages, slo, source: scenario.source, ...(scenario.engine ? { engine: scenario.engine } : {}), step: STEP_S, scrapeIntervalS: rateWindowS / 4 });
}

describe('fake Prometheus: analyzeRun on synthetic runs with a known bottleneck', () => {
  // Capacity 400 rps: ρ = 0.92 at step 11 (5,500 devices × 2/30 s); the generator in its own
  // scenario tops out at 300 rps, reached at step 10.
  const cases: { kind: Scenario['kind']; source: Source; engine?: LoadEngine; bottleneck: Bottleneck; breaksAt?: number; lastGood?: number }[] = [
    { kind: 'none', source: 'local', bottleneck: 'none' },
    { kind: 'api-cpu', source: 'local', bottleneck: 'api-cpu', breaksAt: 5500, lastGood: 5000 },
    { kind: 'host-cpu', source: 'local', bottleneck: 'host-cpu', breaksAt: 5500, lastGood: 5000 },
    { kind: 'db-pool', source: 'local', bottleneck: 'db-pool', breaksAt: 5500, lastGood: 5000 },
    { kind: 'database', source: 'local', bottleneck: 'database', breaksAt: 5500, lastGood: 5000 },
    { kind: 'load-generator', source: 'local', bottleneck: 'load-generator', breaksAt: 5000, lastGood: 4500 },
    { kind: 'memory-gc', source: 'local', bottleneck: 'memory-gc', breaksAt: 5500, lastGood: 5000 },
    { kind: 'api-cpu', source: 'kubernetes', bottleneck: 'api-cpu', breaksAt: 5500, lastGood: 5000 },
    { kind: 'db-pool', source: 'kubernetes', bottleneck: 'db-pool', breaksAt: 5500, lastGood: 5000 },
    // A cluster on the loadlab engine: the driver's own metrics, the cluster's resources.
    { kind: 'db-pool', source: 'kubernetes', engine: 'loadlab', bottleneck: 'db-pool', breaksAt: 5500, lastGood: 5000 },
    { kind: 'load-generator', source: 'kubernetes', engine: 'loadlab', bottleneck: 'load-generator', breaksAt: 5000, lastGood: 4500 },
  ];
  for (const testCase of cases) {
    it(`${testCase.source}${testCase.engine ? `, engine ${testCase.engine}` : ''}: a run bound by ${testCase.kind} → ${testCase.bottleneck}`, async () => {
      const result = await run({ kind: testCase.kind, source: testCase.source, ...(testCase.engine ? { engine: testCase.engine } : {}), capacityRps: testCase.kind === 'load-generator' ? 300 : testCase.kind === 'none' ? 1e9 : 400 });
      assert.equal(result.verdict.bottleneck, testCase.bottleneck, result.verdict.text);
      assert.equal(result.summary.bottleneck, testCase.bottleneck);
      assert.equal(result.breakingPoint.breaking?.devices, testCase.breaksAt, result.verdict.text);
      assert.equal(result.breakingPoint.lastGood?.devices, testCase.lastGood ?? 10000);
      assert.equal(result.stages.length, 40);
      assert.deepEqual(result.failed, []);
      // The driver's labelled counters of rare events have no series until the first one (a generator that kept up).
      const neverCounted = testCase.engine !== 'loadlab' ? [] : testCase.kind === 'load-generator' ? ['api_shed'] : ['generator_dropped', 'generator_late'];
      if (testCase.source === 'kubernetes') assert.deepEqual(result.missing, [...neverCounted, 'db_cpu_limit_fraction'], 'an absent exporter is reported, not zero');
      if (testCase.kind === 'load-generator') assert.match(result.verdict.text, /not blamed on the API/);
      if (testCase.engine === 'loadlab' && testCase.source === 'kubernetes') {
        assert.equal(result.settings.engine, 'loadlab');
        assert.ok(result.catalog.some((query) => query.name === 'generator_offered'), 'the driver\'s own counters are read');
        if (testCase.kind === 'load-generator') assert.match(result.verdict.text, /driver pods more CPU \(spec\.generator\.resources\)/);
      }
    });
  }

  it('summarises the stages with numbers that match the model', async () => {
    const result = await run({ kind: 'db-pool', source: 'local', capacityRps: 400 });
    const hold = (devices: number) => result.stages.find((stage) => stage.kind === 'hold' && stage.devices === devices)!;
    const healthy = hold(3000);
    assert.ok(Math.abs(healthy.offeredRps - 200) < 1e-9);
    assert.ok(Math.abs(healthy.achievedRps! - 200) < 1e-6, `achieved ${healthy.achievedRps}`);
    assert.equal(healthy.errorRate, 0);
    assert.equal(healthy.latencySource, 'client');
    // Exponential latency with mean 0.011/(1 − 0.5) s: its p95 is 3 × 22 ms ≈ 66 ms, within its (50, 100] ms bucket.
    assert.ok(healthy.latency.p95! > 0.05 && healthy.latency.p95! <= 0.1, `p95 ${healthy.latency.p95}`);
    const overloaded = hold(8000);
    assert.ok(Math.abs(overloaded.achievedRps! - 400) < 1e-6, 'served levels at capacity');
    assert.ok(Math.abs(overloaded.errorRate! - (533.33 - 400) / 533.33) < 1e-3);
    assert.equal(overloaded.measures['pool_waiting.active'], 1);
    assert.equal(result.series.filter((series) => series.name === 'api_cpu').length, 1);
  });

  it('counts every point of a window when the run starts between two milliseconds (Prometheus rounds the start)', async () => {
    // A window's first point then falls a fraction of a millisecond before or after the window's
    // edge; counted in the denominator but not the sum, it read 3 of 4 points as 75% served.
    for (const offsetS of [0.0004, 0.0006]) {
      const result = await run({ kind: 'db-pool', source: 'local', capacityRps: 400 }, undefined, searchTimeline(START + offsetS));
      const healthy = result.stages.find((stage) => stage.kind === 'hold' && stage.devices === 3000)!;
      assert.ok(Math.abs(healthy.achievedRps! - 200) < 1e-6, `start +${offsetS} s: achieved ${healthy.achievedRps}`);
    }
  });
});

describe('fake Prometheus: analyzeRun with an experiment\'s spec.analysis.thresholds', () => {
  /** The thresholds as local mode and the operator pass them: from a parsed LoadExperiment. */
  function specThresholds(thresholds?: Record<string, number>) {
    const parsed = parseExperiment(JSON.stringify({
      apiVersion: 'loadlab.dev/v1alpha1',
      kind: 'LoadExperiment',
      metadata: { name: 'synthetic' },
      spec: { fleet: { devices: 10_000 }, load: { stages: [{ devices: 10_000, duration: '1h' }] }, ...(thresholds ? { analysis: { thresholds } } : {}) },
    }));
    assert.ok(parsed.ok, parsed.ok ? '' : formatErrors(parsed.errors));
    return parsed.experiment.spec.analysis?.thresholds;
  }
  function runWith(kind: Scenario['kind'], thresholds: ReturnType<typeof specThresholds>) {
    handler = syntheticHandler({ kind, source: 'local', capacityRps: 400 }, timeline, 20, SELECTOR);
    return analyzeRun({ prometheus: fake.url, selector: SELECTOR, timeline, slo, source: 'local', step: STEP_S, scrapeIntervalS: 5, thresholds });
  }

  it('judges by the spec\'s threshold: a 60 ms connection hold is a slow database by default, and not at dbHoldMeanS 0.1', async () => {
    const byDefault = await runWith('database', specThresholds());
    assert.equal(byDefault.verdict.bottleneck, 'database', byDefault.verdict.text);
    assert.deepEqual(byDefault.settings.thresholds, DEFAULT_THRESHOLDS);

    const relaxed = await runWith('database', specThresholds({ dbHoldMeanS: 0.1 }));
    assert.equal(relaxed.verdict.bottleneck, 'db-pool', relaxed.verdict.text);
    assert.deepEqual(relaxed.settings.thresholds, { ...DEFAULT_THRESHOLDS, dbHoldMeanS: 0.1 }, 'the others keep their defaults');
    assert.equal(relaxed.breakingPoint.breaking?.devices, byDefault.breakingPoint.breaking?.devices, 'where it broke is the SLO\'s, not the threshold\'s');
  });
});

describe('fake Prometheus: analyzeRun over several replica counts', () => {
  it('fits the Universal Scalability Law to the capacity at each replica count', async () => {
    const truth = { lambda: 200, sigma: 0.05, kappa: 0.01 };
    const blocks = [1, 2, 4, 8].flatMap((replicas, block) =>
      searchTimeline(START + block * 20 * 60, 20, 10, 50, 1000).map((stage) => ({ ...stage, replicas })));
    const multi = blocks.map((stage, index) => ({ ...stage, index, name: `${stage.replicas} replicas, ${stage.name}` }));
    const scenario: Scenario = { kind: 'api-cpu', source: 'local', capacityRps: 0, capacityAt: (n) => uslCapacity(truth, n) };
    handler = syntheticHandler(scenario, multi, 20, SELECTOR);
    const result = await analyzeRun({ prometheus: fake.url, selector: SELECTOR, timeline: multi, slo, source: 'local', step: 5, scrapeIntervalS: 5 });
    assert.ok(result.usl, 'fitted');
    assert.ok(Math.abs(result.usl.sigma - truth.sigma) < 0.005, `σ ${result.usl.sigma}`);
    assert.ok(Math.abs(result.usl.kappa - truth.kappa) < 0.002, `κ ${result.usl.kappa}`);
    assert.ok(Math.abs(result.usl.lambda - truth.lambda) / truth.lambda < 0.02, `λ ${result.usl.lambda}`);
    assert.match(renderMarkdown(result), /## Universal Scalability Law[\s\S]*Predicted capacity: 1 → 2\d\d rps/);
  });
});

describe('fake Prometheus: analyzeRun\'s performance target', () => {
  it('analyses a one-hour, 20-step run at 15 s resolution in fewer than 50 range queries (printed with the time taken)', async () => {
    const catalogSize = buildCatalog({ selector: SELECTOR, source: 'local', rateWindowS: 20 }).length;
    const client = new PrometheusClient({ baseUrl: fake.url });
    const started = performance.now();
    const result = await run({ kind: 'db-pool', source: 'local', capacityRps: 400 }, client);
    const elapsedMs = performance.now() - started;
    const points = result.series.reduce((sum, series) => sum + series.samples.length, 0);
    console.log(
      `one-hour run (${(result.settings.endUnixS - result.settings.startUnixS) / 60} min, ${timeline.length / 2} steps, ${STEP_S} s step): ` +
        `${result.queries.count} queries, ${result.series.length} series, ${points} points; ${elapsedMs.toFixed(0)} ms total ` +
        `(queries ${result.timing.queryWallMs.toFixed(0)} ms wall, analysis ${result.timing.analysisMs.toFixed(0)} ms; target < 2000 ms)`,
    );
    assert.ok(result.queries.count < 50, `${result.queries.count} queries`);
    assert.equal(result.queries.count, catalogSize, 'one range query per catalog entry, whatever the number of steps');
    assert.ok(fake.requests.slice(-result.queries.count).every((request) => request.path === '/api/v1/query_range' && request.params.step === '15'));
  });
});

describe('fake Prometheus: analyzeRun when Prometheus fails', () => {
  it('an outage aborts with a RetryableError (the reconciler retries later)', async () => {
    handler = () => ({ status: 503, raw: 'down' });
    await assert.rejects(
      analyzeRun({ prometheus: fake.url, selector: SELECTOR, timeline, slo, source: 'local' }),
      (error: unknown) => error instanceof RetryableError,
    );
  });

  it('a query Prometheus refuses is reported, and the others still give a verdict', async () => {
    const inner = syntheticHandler({ kind: 'api-cpu', source: 'local', capacityRps: 400 }, timeline, 20, SELECTOR);
    handler = (request) => (request.params.query?.includes('nodejs_gc_duration_seconds')
      ? { status: 422, body: { status: 'error', errorType: 'execution', error: 'too many samples' } }
      : inner(request));
    const result = await analyzeRun({ prometheus: fake.url, selector: SELECTOR, timeline, slo, source: 'local', step: STEP_S, scrapeIntervalS: 5 });
    assert.deepEqual(result.failed.map((entry) => entry.name), ['gc_time_fraction']);
    assert.match(result.failed[0]!.error, /too many samples/);
    assert.equal(result.verdict.bottleneck, 'api-cpu');
  });

  it('every query refused (a bad selector) is a terminal error naming the selector', async () => {
    handler = () => ({ status: 400, body: { status: 'error', errorType: 'bad_data', error: 'parse error' } });
    await assert.rejects(
      analyzeRun({ prometheus: fake.url, selector: 'experiment=oops', timeline, slo, source: 'local' }),
      (error: unknown) => error instanceof TerminalError && /selector "experiment=oops"/.test(error.message),
    );
  });

  it('an empty Prometheus (nothing scraped) gives "unknown" with every query listed as missing', async () => {
    handler = () => ({ body: { status: 'success', data: { resultType: 'matrix', result: [] } } });
    const result = await analyzeRun({ prometheus: fake.url, selector: SELECTOR, timeline, slo, source: 'local' });
    assert.equal(result.breakingPoint.status, 'undetermined');
    assert.equal(result.verdict.bottleneck, 'unknown');
    assert.equal(result.missing.length, result.catalog.length);
    assert.equal(result.stages[1]!.achievedRps, undefined, 'missing, not 0');
  });
});
