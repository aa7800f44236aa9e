import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { activeDevicesAt, buildTrafficPlan, fleetAt, phaseAt, rateAt } from '../src/traffic/index.js';
import { FIVE_STAGES, experimentWith as sharedExperimentWith } from './support/fixtures.js';

const experimentWith = (spec: Record<string, unknown>) => sharedExperimentWith(spec, 'plan');

/** Floating totals are sums of exact halves and thirds; compare to a part in a billion. */
function near(actual: number, expected: number, message?: string) {
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${message ?? ''} ${actual} != ${expected}`);
}

describe('a plan from stages', () => {
  const experiment = experimentWith(FIVE_STAGES);
  const plan = buildTrafficPlan(experiment);

  it('lists one phase per stage, back to back, with the fleet at each end', () => {
    assert.deepEqual(
      plan.phases.map((p) => [p.index, p.stage, p.kind, p.startS, p.durationS, p.devicesAtStart, p.devicesAtEnd]),
      [
        [0, 0, 'ramp', 0, 20, 0, 200],
        [1, 1, 'hold', 20, 20, 200, 200],
        [2, 2, 'ramp', 40, 40, 200, 1000],
        // A hold to a different size is a step change at the start of the stage.
        [3, 3, 'hold', 80, 60, 500, 500],
        [4, 4, 'ramp', 140, 10, 500, 0],
      ],
    );
    assert.equal(plan.durationS, 150);
    assert.equal(plan.peakDevices, 1000);
    assert.equal(plan.source, 'stages');
  });

  // rate = devices / interval; expected = mean fleet * duration / interval.
  for (const [index, rates, expected] of [
    [0, { start: [0, 0], end: [20, 200 / 30] }, [200, 200 / 3]],
    [1, { start: [20, 200 / 30], end: [20, 200 / 30] }, [400, 400 / 3]],
    [2, { start: [20, 200 / 30], end: [100, 1000 / 30] }, [2400, 800]],
    [3, { start: [50, 500 / 30], end: [50, 500 / 30] }, [3000, 1000]],
    [4, { start: [50, 500 / 30], end: [0, 0] }, [250, 250 / 3]],
  ] as const) {
    it(`phase ${index}: per-endpoint rates and the exact integral of requests`, () => {
      const phase = plan.phases[index]!;
      near(phase.ratesAtStart.measurements, rates.start[0]);
      near(phase.ratesAtStart.command, rates.start[1]);
      near(phase.ratesAtEnd.measurements, rates.end[0]);
      near(phase.ratesAtEnd.command, rates.end[1]);
      near(phase.expectedRequests.measurements, expected[0]);
      near(phase.expectedRequests.command, expected[1]);
    });
  }

  it('totals every phase', () => {
    near(plan.totals.measurements, 200 + 400 + 2400 + 3000 + 250);
    near(plan.totals.command, (200 + 400 + 2400 + 3000 + 250) / 3);
  });

  it('interpolates the fleet and the rate linearly inside a ramp, and is 0 outside the plan', () => {
    near(fleetAt(plan, 10), 100);
    near(fleetAt(plan, 60), 600);
    near(rateAt(plan, 'measurements', 60), 60);
    near(rateAt(plan, 'command', 60), 20);
    assert.equal(fleetAt(plan, 80), 500, 'a hold starts at its size');
    assert.equal(fleetAt(plan, -1), 0);
    assert.equal(fleetAt(plan, 150), 0);
    assert.equal(phaseAt(plan, 39.999)?.index, 1);
    assert.equal(phaseAt(plan, 40)?.index, 2);
    assert.equal(activeDevicesAt(plan, 10.0026), 100, 'rounded to whole devices');
  });
});

describe('a plan from a search', () => {
  const experiment = experimentWith({
    fleet: { devices: 1_000_000 },
    load: { search: { startDevices: 20_000, step: { factor: 1.5 }, maxDevices: 1_000_000, hold: '60s', rampUp: '10s' } },
  });
  const plan = buildTrafficPlan(experiment);
  const steps = [20_000, 30_000, 45_000, 67_500, 101_250, 151_875, 227_813, 341_720, 512_580, 768_870, 1_000_000];

  it('lists every step up to maxDevices (the last clamped to it), each a ramp then a hold, with its index', () => {
    assert.equal(plan.source, 'search');
    assert.equal(plan.phases.length, steps.length * 2);
    steps.forEach((devices, step) => {
      const [ramp, hold] = [plan.phases[2 * step]!, plan.phases[2 * step + 1]!];
      assert.deepEqual([ramp.step, ramp.kind, ramp.startS, ramp.durationS], [step, 'ramp', step * 70, 10]);
      assert.deepEqual([ramp.devicesAtStart, ramp.devicesAtEnd], [step === 0 ? 0 : steps[step - 1], devices]);
      assert.deepEqual([hold.step, hold.kind, hold.startS, hold.durationS, hold.devicesAtEnd], [step, 'hold', step * 70 + 10, 60, devices]);
    });
    assert.equal(plan.durationS, steps.length * 70);
    assert.equal(plan.peakDevices, 1_000_000);
  });

  it('offers devices/30 requests per second per endpoint in a hold, and totals the integral', () => {
    const lastHold = plan.phases.at(-1)!;
    near(lastHold.ratesAtStart.measurements, 1_000_000 / 30);
    near(lastHold.expectedRequests.command, 1_000_000 * 2);
    let expected = 0;
    steps.forEach((devices, step) => {
      expected += (((step === 0 ? 0 : steps[step - 1]!) + devices) / 2) * (10 / 30) + devices * 2;
    });
    near(plan.totals.measurements, expected);
    near(plan.totals.command, expected);
  });

  it('skips the ramp when rampUp is 0s, and steps by a fixed number of devices', () => {
    const jumpy = buildTrafficPlan(
      experimentWith({
        fleet: { devices: 500 },
        load: { search: { startDevices: 100, step: { devices: 150 }, maxDevices: 500, rampUp: '0s', hold: '30s' } },
      }),
    );
    assert.deepEqual(
      jumpy.phases.map((p) => [p.step, p.kind, p.startS, p.devicesAtEnd]),
      [
        [0, 'hold', 0, 100],
        [1, 'hold', 30, 250],
        [2, 'hold', 60, 400],
        [3, 'hold', 90, 500],
      ],
    );
  });
});
