import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BOTTLENECKS, decideVerdict, findBreakingPoint, type Bottleneck, type Slo, type Source } from '../src/analysis/index.js';
import { boundsText, withinBounds } from '../src/schema/bounds.js';
import { runOf, type StageSpec } from './fixtures/analysis/stage-builder.js';
import { DEFAULT_THRESHOLDS, resolveThresholds, THRESHOLD_DOCS, type Thresholds } from '../src/schema/thresholds.js';

const slo: Slo = { percentile: 95, latencyThresholdS: 0.25, maxErrorRate: 0.01 };

/** Every thresholded signal comfortably below its threshold. */
const healthy: Record<string, number> = {
  'generator_dropped_fraction': 0,
  'generator_schedule_lag.mean': 0.001,
  'generator_cpu.mean': 0.3,
  'api_cpu.mean': 0.3,
  'event_loop_utilisation.mean': 0.3,
  'event_loop_lag_p99.mean': 0.005,
  'pool_waiting.active': 0,
  'pool_acquire.p95': 0.0005,
  'db_hold_time.mean': 0.003,
  'db_connections_fraction.max': 0.2,
  'gc_time_fraction.mean': 0.02,
  'host_cpu_busy.mean': 0.4,
  'host_cpu_others_fraction': 0.3,
  'api_cpu_wait.mean': 0.01,
};

/**
 * The host's CPU at a stage: 2 CPUs, `shares` in cores by role (the rest "other"), and how long the
 * API's event loop waited for a CPU. Derived measures as stages.ts computes them.
 */
function host(shares: Record<'api' | 'database' | 'generator' | 'monitoring', number>, waitFraction: number, busyFraction = 1): Record<string, number> {
  const busyCores = 2 * busyFraction;
  const accounted = Object.values(shares).reduce((a, b) => a + b, 0);
  return {
    'host_cpu_busy.mean': busyFraction,
    'host_cpu_cores.mean': 2,
    ...Object.fromEntries(Object.entries(shares).map(([role, cores]) => [`host_cpu_share.${role}`, cores])),
    'host_cpu_share.other': Math.max(0, busyCores - accounted),
    host_cpu_others_fraction: (busyCores - shares.api) / busyCores,
    'api_cpu_wait.mean': waitFraction,
    'api_cpu.mean': shares.api,
    // All served in these stages: the load needs what the API used.
    api_cpu_demand: shares.api,
  };
}

const ok = (devices: number, measures: Record<string, number> = {}): StageSpec => ({ devices, latencyS: 0.05, errorRate: 0, measures: { ...healthy, ...measures } });
const broken = (devices: number, measures: Record<string, number> = {}): StageSpec => ({ devices, latencyS: 0.6, errorRate: 0, measures: { ...healthy, ...measures } });

describe('the bottleneck verdict (USE method)', () => {
  describe('a generator that dropped arrivals, judged with the SLO', () => {
    const judge = (specs: StageSpec[]) => {
      const stages = runOf(specs);
      return decideVerdict(stages, findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS), { thresholds: DEFAULT_THRESHOLDS, source: 'local', slo });
    };
    it('is blamed when the API itself answered within the SLO', () => {
      const verdict = judge([ok(1000), { ...broken(2000, { generator_dropped_fraction: 0.2 }), serverLatencyS: 0.02 }]);
      assert.equal(verdict.bottleneck, 'load-generator', verdict.text);
    });
    it('is not blamed when the API was too slow: its concurrency cap filled up because of that (api-cpu here)', () => {
      const verdict = judge([ok(1000), { ...broken(2000, { generator_dropped_fraction: 0.5, 'api_cpu.mean': 0.99 }), serverLatencyS: 2 }]);
      assert.equal(verdict.bottleneck, 'api-cpu', verdict.text);
    });
    // The API's own latency cannot see an event loop's queue (the handler's timer starts after
    // it): measured so in a local scaling study, one CPU-bound replica at 80 of 300 rps.
    it('is not blamed for drops while the API process is at a core and answers come late, though its own timer says they were quick', () => {
      const verdict = judge([ok(1000), { ...broken(2000, { generator_dropped_fraction: 0.5, 'api_cpu.mean': 0.99, 'event_loop_utilisation.mean': 0.98 }), serverLatencyS: 0.02 }]);
      assert.equal(verdict.bottleneck, 'api-cpu', verdict.text);
    });
    it('is not blamed for drops while CPU-bound replicas share a machine they fill, each under a core (the CPU the load needs says api-cpu)', () => {
      const verdict = judge([ok(1000), { ...broken(2000, { generator_dropped_fraction: 0.3, 'api_cpu.mean': 0.6, api_cpu_demand: 1.2, 'api_cpu_wait.mean': 0.3 }), serverLatencyS: 0.02 }]);
      assert.equal(verdict.bottleneck, 'api-cpu', verdict.text);
    });
    // maxVUs 1 at 1,000 rps offered, every answer prompt, on a machine something else keeps busy
    // (the API waits for a CPU): the CPU the offered load "needs" is the shortfall's artefact.
    it('is blamed for drops with prompt answers, though the CPU the offered load needs looks high', () => {
      const verdict = judge([ok(1000), { ...ok(2000, { generator_dropped_fraction: 0.8, 'api_cpu.mean': 0.2, api_cpu_demand: 1.0, 'api_cpu_wait.mean': 0.3 }), offeredRps: 1000, achievedRps: 190 }]);
      assert.equal(verdict.bottleneck, 'load-generator', verdict.text);
    });
    it('is blamed whatever the API did when its own CPU saturated', () => {
      const verdict = judge([ok(1000), { ...broken(2000, { 'generator_cpu.mean': 0.99, 'api_cpu.mean': 0.99 }), serverLatencyS: 2 }]);
      assert.equal(verdict.bottleneck, 'load-generator', verdict.text);
    });
  });

  const cases: { name: string; specs: StageSpec[]; source?: Source; bottleneck: Bottleneck; evidence?: string; since?: number }[] = [
    {
      name: 'the generator fell behind: load-generator, even though API latency broke and the pool waited',
      specs: [ok(1000), broken(2000, { generator_dropped_fraction: 0.08, 'pool_waiting.active': 1, 'pool_acquire.p95': 0.05 })],
      bottleneck: 'load-generator', evidence: 'generator_dropped_fraction',
    },
    {
      name: 'a generator whose schedule lags by seconds: load-generator',
      specs: [ok(1000), broken(2000, { 'generator_schedule_lag.mean': 2.5, 'api_cpu.mean': 0.99 })],
      bottleneck: 'load-generator', evidence: 'generator_schedule_lag.mean',
    },
    {
      name: 'a driver at a full core: load-generator',
      specs: [ok(1000), broken(2000, { 'generator_cpu.mean': 0.97 })],
      bottleneck: 'load-generator', evidence: 'generator_cpu.mean',
    },
    {
      name: 'k6 dropping iterations in a cluster: load-generator',
      source: 'kubernetes',
      specs: [ok(1000), broken(2000, { generator_dropped_fraction: 0.02 })],
      bottleneck: 'load-generator', evidence: 'generator_dropped_fraction',
    },
    {
      name: 'callers waiting for the pool with slow acquires: db-pool',
      specs: [ok(1000), ok(2000), broken(3000, { 'pool_waiting.active': 1, 'pool_acquire.p95': 0.08 })],
      bottleneck: 'db-pool', evidence: 'pool_acquire.p95', since: 2,
    },
    {
      name: 'an API process at ~1 core: api-cpu (its busy event loop is the symptom)',
      specs: [ok(1000), broken(2000, { 'api_cpu.mean': 0.98, 'event_loop_utilisation.mean': 0.97, 'event_loop_lag_p99.mean': 0.2 })],
      bottleneck: 'api-cpu', evidence: 'api_cpu.mean',
    },
    {
      name: 'a slow database holding connections: database, though the pool waits too',
      specs: [ok(1000, { 'db_hold_time.mean': 0.08 }), broken(2000, { 'db_hold_time.mean': 0.08, 'pool_waiting.active': 1, 'pool_acquire.p95': 0.2 })],
      bottleneck: 'database', evidence: 'db_hold_time.mean', since: 0,
    },
    {
      name: 'connections near max_connections: database',
      specs: [ok(1000), broken(2000, { 'db_connections_fraction.max': 0.97 })],
      bottleneck: 'database', evidence: 'db_connections_fraction.max',
    },
    {
      name: 'nothing broke: none within the tested range',
      specs: [ok(1000), ok(2000), ok(3000)],
      bottleneck: 'none',
    },
    {
      name: 'broke with no resource over its threshold: unknown',
      specs: [ok(1000), broken(2000, { 'api_cpu.mean': 0.7 })],
      bottleneck: 'unknown', evidence: 'api_cpu.mean',
    },
    {
      name: 'the first to saturate wins: the pool waited a step before the CPU ran out',
      specs: [ok(1000), ok(2000, { 'pool_waiting.active': 1, 'pool_acquire.p95': 0.02 }), broken(3000, { 'pool_waiting.active': 1, 'pool_acquire.p95': 0.09, 'api_cpu.mean': 1.2 })],
      bottleneck: 'db-pool', since: 1,
    },
    {
      name: 'a tie at the same step goes to the resource furthest over its threshold',
      specs: [ok(1000), broken(2000, { 'api_cpu.mean': 0.95, 'gc_time_fraction.mean': 0.3 })],
      bottleneck: 'memory-gc', evidence: 'gc_time_fraction.mean',
    },
    {
      name: 'a resource that saturated and recovered before the break is not the bottleneck',
      specs: [ok(1000, { 'gc_time_fraction.mean': 0.5 }), ok(2000), broken(3000, { 'api_cpu.mean': 0.95 })],
      bottleneck: 'api-cpu', since: 2,
    },
    {
      name: 'a step without data neither starts nor ends a saturated run',
      specs: [ok(1000), ok(2000, { 'pool_waiting.active': 1, 'pool_acquire.p95': 0.02 }), { devices: 2500, latencyS: 0.1, errorRate: 0 }, broken(3000, { 'pool_waiting.active': 1, 'pool_acquire.p95': 0.09, 'api_cpu.mean': 1.2 })],
      bottleneck: 'db-pool', since: 1,
    },
    {
      name: 'the pool needs both signals: waiting alone, with fast acquires, is not saturation',
      specs: [ok(1000), broken(2000, { 'pool_waiting.active': 1, 'pool_acquire.p95': 0.002 })],
      bottleneck: 'unknown',
    },
    {
      name: 'CFS throttling in a cluster: api-cpu, though the pod uses half a core',
      source: 'kubernetes',
      specs: [ok(1000), broken(2000, { 'api_cpu.mean': 0.5, 'api_cpu_throttled.mean': 0.35 })],
      bottleneck: 'api-cpu', evidence: 'api_cpu_throttled.mean',
    },
    {
      name: 'a lagging event loop with CPU to spare: event-loop',
      specs: [ok(1000), broken(2000, { 'event_loop_lag_p99.mean': 0.3, 'api_cpu.mean': 0.4 })],
      bottleneck: 'event-loop', evidence: 'event_loop_lag_p99.mean',
    },
    {
      name: 'a working set at its memory limit in a cluster: memory-gc',
      source: 'kubernetes',
      specs: [ok(1000), broken(2000, { 'memory_limit_fraction.max': 0.96 })],
      bottleneck: 'memory-gc', evidence: 'memory_limit_fraction.max',
    },
    {
      name: 'an API starved on a shared machine (0.64 cores, its loop waiting 35% of the time): host-cpu, not event-loop',
      specs: [
        ok(1000, host({ api: 0.4, database: 0.2, generator: 0.3, monitoring: 0.02 }, 0.02, 0.5)),
        broken(2000, { ...host({ api: 0.64, database: 0.5, generator: 0.7, monitoring: 0.03 }, 0.35), 'event_loop_utilisation.mean': 0.99 }),
      ],
      bottleneck: 'host-cpu', evidence: 'api_cpu_wait.mean',
    },
    {
      name: 'a machine the API fills by itself (others 30% of the busy CPU): api-cpu, though its loop waited',
      specs: [ok(1000), broken(2000, { ...host({ api: 1.4, database: 0.2, generator: 0.35, monitoring: 0.02 }, 0.2), 'event_loop_utilisation.mean': 0.99 })],
      bottleneck: 'api-cpu',
    },
    {
      name: 'a busy machine while the API has a core to itself (no wait): api-cpu, never the host',
      specs: [ok(1000), broken(2000, { ...host({ api: 0.98, database: 0.5, generator: 0.5, monitoring: 0.02 }, 0.005), 'event_loop_utilisation.mean': 0.99 })],
      bottleneck: 'api-cpu', evidence: 'api_cpu.mean',
    },
    {
      name: 'an API that got 0.8 of a core and served 60% of the load (it needs 1.33 cores): api-cpu, though the host was shared',
      specs: [ok(1000), broken(2000, { ...host({ api: 0.8, database: 0.4, generator: 0.7, monitoring: 0.02 }, 0.2), api_cpu_demand: 0.8 / 0.6, 'event_loop_utilisation.mean': 0.99 })],
      bottleneck: 'api-cpu', evidence: 'api_cpu_demand',
    },
    {
      name: 'a half-idle machine on which the API waited anyway: not host-cpu (the host was not busy), the event loop',
      specs: [ok(1000), broken(2000, { ...host({ api: 0.6, database: 0.1, generator: 0.1, monitoring: 0.02 }, 0.35, 0.5), 'event_loop_utilisation.mean': 0.99 })],
      bottleneck: 'event-loop',
    },
    {
      name: 'no data at all: unknown',
      specs: [{ devices: 1000 }, { devices: 2000 }],
      bottleneck: 'unknown',
    },
  ];

  for (const testCase of cases) {
    it(testCase.name, () => {
      const stages = runOf(testCase.specs);
      const point = findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS);
      const verdict = decideVerdict(stages, point, { thresholds: DEFAULT_THRESHOLDS, source: testCase.source ?? 'local' });
      assert.equal(verdict.bottleneck, testCase.bottleneck, verdict.text);
      assert.ok(BOTTLENECKS.includes(verdict.bottleneck));
      if (testCase.evidence) assert.equal(verdict.evidence[0]?.measure, testCase.evidence, verdict.text);
      for (const entry of verdict.evidence) {
        assert.ok(Number.isFinite(entry.value), 'evidence carries its value');
        assert.ok(entry.query.length > 0, 'and the query it came from');
      }
      if (testCase.since !== undefined) {
        const row = verdict.use.find((entry) => entry.resource === testCase.bottleneck);
        assert.equal(row?.saturatedSince?.index, testCase.since);
      }
      assert.ok(verdict.text.length > 0 && verdict.text.length <= 1024);
    });
  }

  it('names the evidence with values and thresholds in its text', () => {
    const stages = runOf([ok(1000), broken(2000, { 'pool_waiting.active': 1, 'pool_acquire.p95': 0.08 })]);
    const verdict = decideVerdict(stages, findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS), { thresholds: DEFAULT_THRESHOLDS, source: 'local' });
    assert.match(verdict.text, /^Broke at step 2 \(2,000 devices, 133 rps offered, 133 served\): p95 600 ms > 250 ms \(client\)\. Bottleneck: db-pool, saturated since step 2/);
    assert.match(verdict.text, /pool acquire p95 80 ms \(threshold 10 ms\)/);
    assert.match(verdict.text, /time with callers waiting 100% \(threshold 50%\)/);
  });

  it('names who took the CPU on a shared machine, and what to change', () => {
    const stages = runOf([
      ok(1000),
      broken(2000, { ...host({ api: 0.64, database: 0.48, generator: 0.71, monitoring: 0.04 }, 0.35), 'event_loop_utilisation.mean': 0.99 }),
    ]);
    const verdict = decideVerdict(stages, findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS), { thresholds: DEFAULT_THRESHOLDS, source: 'local' });
    assert.equal(verdict.bottleneck, 'host-cpu', verdict.text);
    assert.match(verdict.text, /API event loop waiting for a CPU \(hottest replica\) 35% \(threshold 10%\)/);
    assert.match(verdict.text, /the machine's 2 CPUs were shared \(the API 0\.64 cores, the database 0\.48 cores, the load generator 0\.71 cores, Prometheus and the exporters 0\.04 cores, everything else 0\.13 cores\), and the load generator and the database took the most/);
    assert.match(verdict.text, /loadlab run --api-cpus/);
    assert.match(verdict.text, /Saturated as a consequence: event-loop/);
    const row = verdict.use.find((entry) => entry.resource === 'host-cpu')!;
    assert.equal(row.saturated, true);
    assert.ok(row.entries.some((entry) => entry.measure === 'host_cpu_share.generator' && entry.value === 0.71));
  });

  it('does not assess the host without the API\'s own wait (an API that does not count it)', () => {
    const measures = host({ api: 0.64, database: 0.5, generator: 0.7, monitoring: 0.03 }, 0.35);
    delete measures['api_cpu_wait.mean'];
    const stages = runOf([ok(1000), broken(2000, { ...measures, 'event_loop_utilisation.mean': 0.99 })]);
    delete stages[1]!.measures['api_cpu_wait.mean'];
    const verdict = decideVerdict(stages, findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS), { thresholds: DEFAULT_THRESHOLDS, source: 'local' });
    assert.equal(verdict.bottleneck, 'event-loop', verdict.text);
    assert.equal(verdict.use.find((entry) => entry.resource === 'host-cpu')!.assessed, false);
  });

  it('names the replica that saturated when there are several', () => {
    const hot = { ...broken(2000, { 'api_cpu.mean': 0.97 }), hottest: { api_cpu: '127.0.0.1:3002' } };
    const stages = runOf([ok(1000), hot]);
    const verdict = decideVerdict(stages, findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS), { thresholds: DEFAULT_THRESHOLDS, source: 'local' });
    assert.equal(verdict.bottleneck, 'api-cpu');
    assert.equal(verdict.evidence[0]?.replica, '127.0.0.1:3002');
    assert.match(verdict.text, /API CPU \(hottest replica\) on 127\.0\.0\.1:3002 0\.97 cores/);
  });

  it('fills the USE table for every resource at the breaking stage, saying which were not assessed', () => {
    const stages = runOf([ok(1000), broken(2000, { 'api_cpu.mean': 1 })]);
    for (const key of ['db_hold_time.mean', 'db_connections_fraction.max']) delete stages[1]!.measures[key];
    const verdict = decideVerdict(stages, findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS), { thresholds: DEFAULT_THRESHOLDS, source: 'local' });
    assert.deepEqual(verdict.use.map((row) => row.resource), ['load-generator', 'host-cpu', 'api-cpu', 'event-loop', 'db-pool', 'database', 'memory-gc']);
    const database = verdict.use.find((row) => row.resource === 'database')!;
    assert.equal(database.assessed, false);
    assert.ok(verdict.notes.some((note) => /Not assessed.*database/.test(note)));
    const cpu = verdict.use.find((row) => row.resource === 'api-cpu')!;
    assert.deepEqual(cpu.entries.find((entry) => entry.measure === 'api_cpu.mean'), {
      category: 'utilisation', measure: 'api_cpu.mean', label: 'API CPU (hottest replica)', unit: 'cores', value: 1, threshold: 0.9, crossed: true,
    });
  });

  it('uses configured thresholds', () => {
    const stages = runOf([ok(1000), broken(2000, { 'api_cpu.mean': 0.7 })]);
    const thresholds = { ...DEFAULT_THRESHOLDS, apiCpuCores: 0.6 };
    assert.equal(decideVerdict(stages, findBreakingPoint(stages, slo, thresholds), { thresholds, source: 'local' }).bottleneck, 'api-cpu');
  });
});

describe('resolveThresholds: overrides over the defaults, within the ranges the LoadExperiment schema allows', () => {
  it('keeps the defaults for what is not overridden (undefined included, as a parsed spec leaves it)', () => {
    assert.deepEqual(resolveThresholds(), DEFAULT_THRESHOLDS);
    assert.deepEqual(resolveThresholds({ dbHoldMeanS: 0.05, apiCpuCores: undefined }), { ...DEFAULT_THRESHOLDS, dbHoldMeanS: 0.05 });
  });
  it('has every default inside its own range', () => {
    for (const [key, doc] of Object.entries(THRESHOLD_DOCS)) {
      assert.ok(withinBounds(doc, DEFAULT_THRESHOLDS[key as keyof Thresholds]), `${key} = ${DEFAULT_THRESHOLDS[key as keyof Thresholds]}, ${boundsText(doc)}`);
    }
  });
  it('accepts a 0 that turns a knee rule off, refuses one that would call every resource saturated', () => {
    assert.equal(resolveThresholds({ kneeRatio: 0 }).kneeRatio, 0);
    assert.throws(() => resolveThresholds({ apiCpuCores: 0 }), /^TypeError: analysis threshold apiCpuCores must be a number greater than 0 and at most 256 \(cores\), got 0$/);
    assert.throws(() => resolveThresholds({ rampSkipFraction: 1 }), /rampSkipFraction must be a number at least 0 and less than 1/);
    assert.throws(() => resolveThresholds({ gcTimeFraction: Number.NaN }), /gcTimeFraction/);
    assert.throws(() => resolveThresholds({ apiCpu: 1 } as Partial<Thresholds>), /unknown analysis threshold "apiCpu"/);
  });
});
