import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCatalog, gridTimes, meanFleet, steadyWindow, summariseStages, timelineFromPlan, validateTimeline, type Series, type StageOptions, type TimelineStage } from '../src/analysis/index.js';
import { formatErrors, parseExperiment } from '../src/schema/index.js';
import { buildTrafficPlan } from '../src/traffic/index.js';
import { DEFAULT_THRESHOLDS } from '../src/schema/thresholds.js';

const hold = (overrides: Partial<TimelineStage> = {}): TimelineStage => ({
  name: 'step 1 hold', index: 0, startUnixS: 1000, endUnixS: 1150, kind: 'hold', devicesStart: 600, devicesEnd: 600, offeredRps: 40, ...overrides,
});

describe('step windows', () => {
  const windows = { settleS: 10, rampSkipFraction: 0.5, rateWindowS: 20, stepS: 15 };
  const cases: { name: string; stage: TimelineStage; expected: [number, number, boolean] }[] = [
    { name: 'a hold drops the settle time and one rate window', stage: hold(), expected: [1030, 1150, false] },
    { name: 'a ramp drops its first half', stage: hold({ kind: 'ramp', devicesStart: 0, endUnixS: 1120 }), expected: [1060, 1120, false] },
    { name: 'a short ramp drops at least one rate window', stage: hold({ kind: 'ramp', endUnixS: 1036 }), expected: [1020, 1036, false] },
    { name: 'a ramp too short for its skip keeps what lies one rate window past its start, marked short', stage: hold({ kind: 'ramp', endUnixS: 1030 }), expected: [1020, 1030, true] },
    { name: 'a hold too short for settle + window keeps its second half, marked short', stage: hold({ endUnixS: 1040 }), expected: [1020, 1040, true] },
    { name: 'a short hold keeps nothing less than one rate window from its start', stage: hold({ endUnixS: 1030 }), expected: [1020, 1030, true] },
    { name: 'a hold of exactly one rate window keeps its end: the one rate that covers it alone', stage: hold({ endUnixS: 1020 }), expected: [1020, 1020, true] },
    { name: 'a hold shorter than the rate window has no point of its own: nothing to judge', stage: hold({ endUnixS: 1010 }), expected: [1020, 1010, true] },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const window = steadyWindow(testCase.stage, windows);
      assert.deepEqual([window.fromUnixS, window.toUnixS, window.short], testCase.expected);
    });
  }

  it('picks the range queries\' evaluation times inside a window', () => {
    assert.deepEqual(gridTimes(1000, 15, 1030, 1100), [1030, 1045, 1060, 1075, 1090]);
    assert.deepEqual(gridTimes(1000, 15, 1031, 1044), []);
    assert.deepEqual(gridTimes(1000, 15, 900, 1010), [1000]);
  });

  it('averages a ramp\'s fleet at the middle of each point\'s rate window', () => {
    const ramp = hold({ kind: 'ramp', devicesStart: 0, devicesEnd: 1000, startUnixS: 0, endUnixS: 100 });
    // Points at 60 and 100 with a 20 s window describe (40, 60] and (80, 100]: fleets 500 and 900.
    assert.equal(meanFleet(ramp, [60, 100], 20), 700);
    assert.equal(meanFleet(hold(), [1030, 1045], 20), 600);
  });
});

describe('a timeline from a traffic plan', () => {
  const manifest = {
    apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: 'search' },
    spec: { fleet: { devices: 5000 }, load: { search: { startDevices: 1000, step: { devices: 1000 }, maxDevices: 3000, hold: '60s', rampUp: '10s' } } },
  };
  const parsed = parseExperiment(JSON.stringify(manifest));
  if (!parsed.ok) throw new Error(formatErrors(parsed.errors));
  const plan = buildTrafficPlan(parsed.experiment);

  it('maps each phase to a stage with unix times, fleet and offered rate', () => {
    const timeline = timelineFromPlan(plan, 1_700_000_000, { replicas: 2 });
    validateTimeline(timeline);
    assert.deepEqual(
      timeline.map((stage) => [stage.name, stage.kind, stage.startUnixS - 1_700_000_000, stage.endUnixS - 1_700_000_000, stage.devicesStart, stage.devicesEnd, stage.offeredRps, stage.replicas]),
      [
        ['step 1 ramp', 'ramp', 0, 10, 0, 1000, 1000 / 15, 2],
        ['step 1 hold', 'hold', 10, 70, 1000, 1000, 1000 / 15, 2],
        ['step 2 ramp', 'ramp', 70, 80, 1000, 2000, 2000 / 15, 2],
        ['step 2 hold', 'hold', 80, 140, 2000, 2000, 2000 / 15, 2],
        ['step 3 ramp', 'ramp', 140, 150, 2000, 3000, 3000 / 15, 2],
        ['step 3 hold', 'hold', 150, 210, 3000, 3000, 3000 / 15, 2],
      ],
    );
  });

  it('cuts a search that stopped early where it stopped', () => {
    const timeline = timelineFromPlan(plan, 0, { endUnixS: 75 });
    assert.deepEqual(timeline.map((stage) => [stage.name, stage.endUnixS, stage.devicesEnd]), [
      ['step 1 ramp', 10, 1000], ['step 1 hold', 70, 1000], ['step 2 ramp', 75, 1500],
    ]);
    assert.ok(Math.abs(timeline[2]!.offeredRps - 100) < 1e-9, 'the cut ramp offers what its fleet at the cut offers');
  });

  it('refuses a timeline that cannot be analysed, saying which entry', () => {
    assert.throws(() => validateTimeline([]), /timeline is empty/);
    assert.throws(() => validateTimeline([hold({ endUnixS: 1000 })]), /timeline\[0\] \(step 1 hold\): endUnixS \(1000\) must be after startUnixS/);
    assert.throws(() => validateTimeline([hold(), hold({ name: 'b', startUnixS: 1100, endUnixS: 1200 })]), /timeline\[1\] \(b\).*before the previous stage ends/);
  });
});

describe('stage summaries from whole-run series', () => {
  // One hold from 1000 to 1150, points every 15 s from 1000; steady window 1030..1150 (9 points).
  const stepS = 15;
  const times = Array.from({ length: 11 }, (_, i) => 1000 + stepS * i);
  const constant = (labels: Record<string, string>, value: number, from = 1000): Series => ({ labels, samples: times.filter((t) => t >= from).map((t) => [t, value]) });
  const options = (source: 'local' | 'kubernetes' = 'local'): StageOptions => ({
    catalog: buildCatalog({ selector: 'experiment="x"', source, rateWindowS: 20 }),
    source,
    slo: { percentile: 95, latencyThresholdS: 0.25, maxErrorRate: 0.01 },
    thresholds: { ...DEFAULT_THRESHOLDS },
    stepS,
    rateWindowS: 20,
    queryStartUnixS: 1000,
  });
  const histogram = (labels: Record<string, string>, share: number[], rate: number) =>
    ['0.01', '0.1', '1', '+Inf'].map((le, i) => constant({ ...labels, le }, rate * share[i]!));

  it('computes throughput, errors, quantiles and generic measures; a counter that appears mid-window counts as 0 before', () => {
    const results = new Map<string, Series[]>([
      ['generator_responses', [
        constant({ endpoint: 'measurements', code: '201' }, 20),
        constant({ endpoint: 'command', code: '200' }, 18),
        // 503s only from 1090: 5 of the 9 window points, so 2 rps × 5/9 on average.
        constant({ endpoint: 'command', code: '503' }, 2, 1090),
        constant({ endpoint: 'command', code: 'error' }, 0.5),
        // Logins are served but are not part of the offered device load.
        constant({ endpoint: 'login', code: '200' }, 3),
      ]],
      ['generator_offered', [constant({ endpoint: 'measurements' }, 20), constant({ endpoint: 'command' }, 20)]],
      ['generator_dropped', [constant({ endpoint: 'command' }, 0.4, 1090)]],
      ['generator_latency', [
        ...histogram({ endpoint: 'measurements' }, [0.5, 0.9, 1, 1], 20),
        ...histogram({ endpoint: 'command' }, [0.5, 0.9, 1, 1], 20),
      ]],
      ['api_latency', histogram({ route: '/v1/measurements' }, [0.9, 1, 1, 1], 20)],
      ['api_cpu', [constant({ instance: 'a' }, 0.4), constant({ instance: 'b' }, 0.8)]],
      ['pool_waiting', [{ labels: {}, samples: times.map((t) => [t, t >= 1090 ? 3 : 0]) }]],
    ]);
    const [stage] = summariseStages([hold()], results, options());
    assert.ok(stage);
    assert.deepEqual(stage.window, { fromUnixS: 1030, toUnixS: 1150, short: false, points: 9 });
    assert.equal(stage.devices, 600);
    assert.equal(stage.offeredRps, 40);
    assert.ok(Math.abs(stage.achievedRps! - 38) < 1e-9, 'successes on the device endpoints only');
    const failed = 2 * (5 / 9) + 0.5;
    assert.ok(Math.abs(stage.errorRate! - failed / (38 + failed + 3)) < 1e-9, `error rate ${stage.errorRate}`);
    assert.ok(Math.abs(stage.measures.generator_dropped_fraction! - (0.4 * 5 / 9) / 40) < 1e-9);
    assert.ok(Math.abs(stage.measures.generator_transport_error_fraction! - 0.5 / (38 + failed + 3)) < 1e-9);
    assert.equal(stage.latencySource, 'client');
    assert.ok(stage.latency.p95! > 0.1 && stage.latency.p95! <= 1, 'client p95 sits in the (0.1, 1] bucket');
    assert.ok(stage.serverLatency.p95! <= 0.1, 'the server saw less');
    assert.ok(Math.abs(stage.measures['api_cpu.mean']! - 0.8) < 1e-12, 'per-replica signals take the hottest replica');
    assert.deepEqual(stage.hottest, { api_cpu: 'b' }, 'and say which replica that was');
    assert.equal(stage.measures['pool_waiting.active'], 5 / 9);
    assert.ok(Math.abs(stage.measures['pool_waiting.mean']! - 3 * 5 / 9) < 1e-9);
    assert.equal(stage.measures['event_loop_utilisation.mean'], undefined, 'absent, not 0');
    assert.ok(stage.endpoints.command && stage.endpoints.command.achievedRps === 18);
  });

  it('falls back to the API\'s own counts and latency when the generator reports nothing', () => {
    const results = new Map<string, Series[]>([
      ['api_requests', [
        constant({ route: '/v1/measurements', status: '201' }, 19),
        constant({ route: '/v1/measurements', status: '503' }, 1),
        constant({ route: '/v1/command', status: '200' }, 20),
        constant({ route: '/metrics', status: '200' }, 5),
      ]],
      ['api_latency', [...histogram({ route: '/v1/measurements' }, [0.9, 1, 1, 1], 20), ...histogram({ route: '/metrics' }, [0, 0, 0, 1], 50)]],
    ]);
    const [stage] = summariseStages([hold()], results, options());
    assert.equal(stage!.achievedRps, 39);
    assert.equal(stage!.serverRps, 40, 'device routes only: /metrics is not device traffic');
    assert.equal(stage!.errorRate, 1 / 40);
    assert.equal(stage!.latencySource, 'server');
    assert.ok(stage!.latency.p95! <= 0.1, 'scrapes of /metrics do not dilute the latency');
  });

  it('takes an absent dropped/late counter as none while the generator reports its other counters', () => {
    const results = new Map<string, Series[]>([
      ['generator_offered', [constant({ endpoint: 'measurements' }, 20)]],
      ['generator_sent', [constant({ endpoint: 'measurements' }, 20)]],
    ]);
    const [stage] = summariseStages([hold()], results, options());
    assert.equal(stage!.measures.generator_dropped_fraction, 0);
    assert.equal(stage!.measures.generator_late_fraction, 0);
    const [silent] = summariseStages([hold()], new Map(), options());
    assert.equal(silent!.measures.generator_dropped_fraction, undefined, 'no generator metrics at all: unknown');
  });

  it('a generator whose series have no rate in the window (too few samples there) served nothing it can tell: absent, not 0', () => {
    // Scraped once before the window and not again in it: the series exist, their rate there does not.
    const results = new Map<string, Series[]>([
      ['generator_responses', [{ labels: { endpoint: 'measurements', code: '201' }, samples: [[1000, 20]] }]],
    ]);
    const [stage] = summariseStages([hold()], results, options());
    assert.equal(stage!.achievedRps, undefined);
    assert.equal(stage!.errorRate, undefined);
  });

  it('with nothing queried, leaves every number absent', () => {
    const [stage] = summariseStages([hold()], new Map(), options());
    assert.equal(stage!.achievedRps, undefined);
    assert.equal(stage!.errorRate, undefined);
    assert.equal(stage!.latencySource, 'none');
    assert.deepEqual(Object.keys(stage!.measures), ['offered_rps']);
  });

  it('reads k6\'s trend statistics as the client\'s latency when they carry the SLO percentile, and k6 drops', () => {
    const results = new Map<string, Series[]>([
      ['generator_latency_trend', [constant({ endpoint: 'measurements', stat: 'p95' }, 0.3), constant({ endpoint: 'command', stat: 'p95' }, 0.2), constant({ endpoint: 'command', stat: 'p99' }, 0.5)]],
      ['generator_iterations', [constant({}, 38)]],
      ['generator_dropped', [constant({}, 2)]],
      ['generator_responses', [constant({ endpoint: 'measurements', status: '201' }, 20), constant({ endpoint: 'command', status: '0' }, 1)]],
    ]);
    const [stage] = summariseStages([hold()], results, options('kubernetes'));
    assert.equal(stage!.latencySource, 'client');
    assert.equal(stage!.latency.slo, 0.3, 'the slowest endpoint');
    assert.equal(stage!.latency.p99, 0.5);
    assert.equal(stage!.generatorOfferedRps, 40);
    assert.equal(stage!.measures.generator_dropped_fraction, 2 / 40);
    assert.equal(stage!.errorRate, 1 / 21, 'status 0 is a transport error');
  });
});
