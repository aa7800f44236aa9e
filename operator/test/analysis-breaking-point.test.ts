import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findBreakingPoint, sloGate, type Slo } from '../src/analysis/index.js';
import { runOf, stageOf, type StageSpec } from './fixtures/analysis/stage-builder.js';
import { DEFAULT_THRESHOLDS } from '../src/schema/thresholds.js';

const slo: Slo = { percentile: 95, latencyThresholdS: 0.25, maxErrorRate: 0.01 };

describe('the breaking point', () => {
  const cases: { name: string; specs: StageSpec[]; status: string; breaking?: number; lastGood?: number; reasons?: string[] }[] = [
    {
      name: 'latency over the SLO',
      specs: [{ devices: 1000, latencyS: 0.1 }, { devices: 2000, latencyS: 0.2 }, { devices: 3000, latencyS: 0.3 }, { devices: 4000, latencyS: 2 }],
      status: 'broke', breaking: 2, lastGood: 1, reasons: ['latency'],
    },
    {
      name: 'errors over the SLO',
      specs: [{ devices: 1000, latencyS: 0.1, errorRate: 0 }, { devices: 2000, latencyS: 0.1, errorRate: 0.02 }],
      status: 'broke', breaking: 1, lastGood: 0, reasons: ['errors'],
    },
    {
      name: 'a knee: served falls under 95% of offered while latency still holds',
      specs: [{ devices: 1000, offeredRps: 100, achievedRps: 100, latencyS: 0.05 }, { devices: 2000, offeredRps: 200, achievedRps: 180, latencyS: 0.1 }],
      status: 'broke', breaking: 1, lastGood: 0, reasons: ['knee'],
    },
    {
      name: 'flattening: of the load a step added, under half was served',
      specs: [{ devices: 10000, offeredRps: 10000, achievedRps: 10000, latencyS: 0.05 }, { devices: 11000, offeredRps: 11000, achievedRps: 10450, latencyS: 0.05 }],
      status: 'broke', breaking: 1, lastGood: 0, reasons: ['flattening'],
    },
    {
      name: 'a step adding under 5% of load is not judged for flattening (noise)',
      specs: [{ devices: 10000, offeredRps: 10000, achievedRps: 10000, latencyS: 0.05 }, { devices: 10300, offeredRps: 10300, achievedRps: 10000, latencyS: 0.05 }],
      status: 'held', lastGood: 1,
    },
    {
      name: 'several reasons at once are all reported',
      specs: [{ devices: 1000, offeredRps: 100, achievedRps: 50, latencyS: 1, errorRate: 0.5 }],
      status: 'broke', breaking: 0, reasons: ['latency', 'errors', 'knee'],
    },
    {
      name: 'held throughout',
      specs: [{ devices: 1000, latencyS: 0.05, errorRate: 0 }, { devices: 2000, latencyS: 0.08, errorRate: 0.001 }],
      status: 'held', lastGood: 1,
    },
    {
      name: 'nothing measured: undetermined',
      specs: [{ devices: 1000 }, { devices: 2000 }],
      status: 'undetermined',
    },
    {
      name: 'a stage without data is skipped, not counted as good',
      specs: [{ devices: 1000, latencyS: 0.05 }, { devices: 2000 }, { devices: 3000, latencyS: 0.5 }],
      status: 'broke', breaking: 2, lastGood: 0, reasons: ['latency'],
    },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const point = findBreakingPoint(runOf(testCase.specs), slo, DEFAULT_THRESHOLDS);
      assert.equal(point.status, testCase.status);
      assert.equal(point.breaking?.index, testCase.breaking);
      assert.equal(point.lastGood?.index, testCase.lastGood);
      assert.deepEqual(point.breaking?.reasons.map((reason) => reason.kind), testCase.reasons);
    });
  }

  it('judges holds only when the run has holds: a slow ramp is a transient', () => {
    const stages = [
      stageOf(0, { devices: 500, kind: 'ramp', latencyS: 3 }),
      stageOf(1, { devices: 1000, latencyS: 0.1 }),
      stageOf(2, { devices: 1500, kind: 'ramp', latencyS: 3 }),
      stageOf(3, { devices: 2000, latencyS: 0.3 }),
    ];
    const point = findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS);
    assert.equal(point.breaking?.index, 3);
    assert.equal(point.lastGood?.index, 1);
    assert.equal(point.judged, 2);
  });

  it('judges ramps when the run has nothing else', () => {
    const stages = [stageOf(0, { devices: 500, kind: 'ramp', latencyS: 0.1 }), stageOf(1, { devices: 1000, kind: 'ramp', latencyS: 0.4 })];
    assert.equal(findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS).breaking?.index, 1);
  });

  it('reports fleet size and rates of the breaking and last good steps, with a reason a person can read', () => {
    const point = findBreakingPoint(runOf([
      { devices: 1000, offeredRps: 66.7, achievedRps: 66.7, latencyS: 0.1 },
      { devices: 2000, offeredRps: 133.3, achievedRps: 133, latencyS: 0.4123 },
    ]), { ...slo, percentile: 99 }, DEFAULT_THRESHOLDS);
    assert.deepEqual([point.breaking?.devices, point.breaking?.offeredRps, point.breaking?.achievedRps], [2000, 133.3, 133]);
    assert.deepEqual([point.lastGood?.devices, point.lastGood?.achievedRps], [1000, 66.7]);
    assert.equal(point.breaking?.reasons[0]?.text, 'p99 412 ms > 250 ms (client)');
  });

  it('uses the configured knee thresholds', () => {
    const specs = [{ devices: 1000, offeredRps: 100, achievedRps: 100 }, { devices: 2000, offeredRps: 200, achievedRps: 185 }];
    assert.equal(findBreakingPoint(runOf(specs), slo, DEFAULT_THRESHOLDS).status, 'broke');
    assert.equal(findBreakingPoint(runOf(specs), slo, { ...DEFAULT_THRESHOLDS, kneeRatio: 0.9 }).status, 'held');
  });
});

describe('the SLO gate (loadlab run\'s exit status, the SloMet condition)', () => {
  const judged = (specs: StageSpec[]) => findBreakingPoint(runOf(specs), slo, DEFAULT_THRESHOLDS);
  const broke = judged([{ devices: 1000, latencyS: 0.1 }, { devices: 2000, latencyS: 0.1 }, { devices: 3000, latencyS: 2 }]);
  const held = judged([{ devices: 1000, latencyS: 0.1 }, { devices: 2000, latencyS: 0.1 }]);

  it('stages: met when every judged stage held, broken (naming the stage and why) when one broke', () => {
    assert.deepEqual({ ...sloGate(held, 'stages'), message: undefined }, { outcome: 'met', reason: 'SloHeld', message: undefined });
    const gate = sloGate(broke, 'stages', 100_000);
    assert.equal(gate.outcome, 'broken', 'a floor does not save a stages run that broke');
    assert.equal(gate.reason, 'SloBroken');
    assert.match(gate.message, /3,000 devices\) broke it: .*p95/);
  });

  it('a search: a breaking point passes unless the fleet it held is below minDevices', () => {
    assert.equal(sloGate(broke, 'search').outcome, 'met');
    assert.equal(sloGate(broke, 'search', 2000).outcome, 'met', 'held 2,000: at the floor');
    const below = sloGate(broke, 'search', 2001);
    assert.deepEqual([below.outcome, below.reason], ['broken', 'BelowMinDevices']);
    assert.match(below.message, /held up to 2,000 devices, below the floor of 2,001 devices; .*3,000 devices\) broke it/);
    assert.equal(sloGate(held, 'search', 5000).outcome, 'broken', 'never broke, but never reached the floor either');
    const first = sloGate(judged([{ devices: 1000, latencyS: 2 }]), 'search', 1);
    assert.deepEqual([first.outcome, first.reason], ['broken', 'BelowMinDevices']);
    assert.match(first.message, /held at no step/);
  });

  it('unknown when nothing could be judged', () => {
    assert.deepEqual(sloGate({ status: 'undetermined', judged: 0 }, 'stages').outcome, 'unknown');
  });
});
