import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  arrivalCounts,
  buildTrafficPlan,
  effectiveJitter,
  fleetAt,
  periodicArrivals,
  type Arrival,
  type Endpoint,
  type TrafficPlan,
} from '../src/traffic/index.js';
import { experimentWith as sharedExperimentWith } from './support/fixtures.js';

const experimentWith = (spec: Record<string, unknown>) => sharedExperimentWith(spec, 'arrivals');

/** A fleet of `devices` that is online from t=0 for `durationS`. */
function constantPlan(devices: number, options: { interval?: string; jitter?: number; seed?: number; durationS?: number } = {}): TrafficPlan {
  const interval = options.interval ?? '30s';
  return buildTrafficPlan(
    experimentWith({
      fleet: { devices, reportInterval: interval, pollInterval: interval, jitter: options.jitter ?? 0.1, seed: options.seed ?? 1 },
      load: { stages: [{ devices, duration: `${options.durationS ?? 300}s`, shape: 'hold' }] },
      timeout: '10h',
    }),
  );
}

/**
 * The plan's arrivals with fromS < timeS <= toS: a slot of one interval, (kI, (k+1)I], holds its
 * arrivals' ends, as k6 counts them (its last arrival lands on the boundary).
 */
function collect(plan: TrafficPlan, endpoint: Endpoint, fromS: number, toS: number): Arrival[] {
  const out: Arrival[] = [];
  for (const arrival of periodicArrivals(plan, endpoint, undefined, fromS)) {
    if (arrival.timeS > toS) break;
    if (arrival.timeS > fromS) out.push(arrival);
  }
  return out;
}

function byDevice(arrivals: readonly Arrival[]): Map<number, number[]> {
  const times = new Map<number, number[]>();
  for (const { device, timeS } of arrivals) {
    const list = times.get(device) ?? [];
    list.push(timeS);
    times.set(device, list);
  }
  return times;
}

describe('arrivals: which device sends when', () => {
  describe('periodicity at a constant fleet', () => {
    for (const [devices, jitter, intervals] of [
      [1, 0.1, 10],
      [7, 0, 10],
      [1000, 0.1, 6],
      [1000, 0.5, 6],
      [1000, 1, 6],
      [3000, 0.02, 4],
    ] as const) {
      it(`${devices} devices, jitter ${jitter}: each sends exactly ${intervals} times in ${intervals} intervals, gaps within interval +- jitter`, () => {
        const plan = constantPlan(devices, { jitter, durationS: 30 * (intervals + 2) });
        const arrivals = collect(plan, 'measurements', 30, 30 * (intervals + 1));
        const perDevice = byDevice(arrivals);
        assert.equal(perDevice.size, devices, 'every device of 0..n-1 sends');
        assert.deepEqual([...perDevice.keys()].sort((a, b) => a - b), Array.from({ length: devices }, (_, i) => i));
        const spread = effectiveJitter(jitter);
        assert.ok(spread <= jitter, 'the spread used never exceeds the jitter asked for');
        for (const [device, times] of perDevice) {
          assert.equal(times.length, intervals, `device ${device}`);
          for (let i = 1; i < times.length; i++) {
            const gap = times[i]! - times[i - 1]!;
            assert.ok(Math.abs(gap - 30) <= jitter * 30 + 1e-9, `device ${device}: gap ${gap}s`);
            if (jitter === 0) assert.ok(Math.abs(gap - 30) < 1e-9, 'no jitter: strictly periodic');
          }
        }
      });
    }

    it('spreads a fleet evenly over the interval (no bursts): every tenth of it carries a tenth of the requests', () => {
      const plan = constantPlan(1000, { durationS: 30 });
      const buckets = new Array<number>(10).fill(0);
      for (const { timeS } of collect(plan, 'measurements', 0, 30)) buckets[Math.ceil(timeS / 3) - 1]!++;
      for (const count of buckets) assert.ok(count >= 99 && count <= 101, `bucket of ${count}, expected 100: ${buckets.join(' ')}`);
    });
  });

  it('yields arrivals in time order, evenly spaced at a constant fleet (the offered rate is smooth)', () => {
    const plan = constantPlan(5000, { interval: '10s', durationS: 60 });
    const arrivals = collect(plan, 'command', 12.5, 31.25);
    assert.equal(arrivals.length, 9375); // (31.25 - 12.5) s x 5,000 devices / 10 s
    for (let i = 1; i < arrivals.length; i++) {
      const gap = arrivals[i]!.timeS - arrivals[i - 1]!.timeS;
      assert.ok(Math.abs(gap - 10 / 5000) < 1e-9, `gap ${gap} s between arrivals ${i - 1} and ${i}`);
    }
  });

  it('gives the same arrivals when started later (fromS) as the whole sequence from there on', () => {
    const plan = constantPlan(777, { interval: '5s', durationS: 60 });
    const whole = collect(plan, 'measurements', 0, 47);
    // Awkward starting points: thirds, slot boundaries, a hair before one.
    for (const fromS of [3, 20 / 3, 10, 11.1, 15 - 1e-9, 25]) {
      assert.deepEqual(collect(plan, 'measurements', fromS, 47), whole.filter((a) => a.timeS > fromS), `from ${fromS}`);
    }
  });

  describe('determinism', () => {
    const window = (plan: TrafficPlan, endpoint: Endpoint = 'measurements') => collect(plan, endpoint, 0, 60);

    it('replays the same arrivals for the same seed', () => {
      assert.deepEqual(window(constantPlan(500, { seed: 7 })), window(constantPlan(500, { seed: 7 })));
    });

    it('gives a different schedule for another seed, and for the other endpoint', () => {
      const a = window(constantPlan(500, { seed: 7 }));
      const b = window(constantPlan(500, { seed: 8 }));
      const polls = window(constantPlan(500, { seed: 7 }), 'command');
      const sameDeviceOrder = (x: Arrival[], y: Arrival[]) => x.filter((arrival, i) => arrival.device === y[i]?.device).length;
      assert.ok(sameDeviceOrder(a, b) < a.length / 10, 'another seed reorders the devices');
      assert.ok(sameDeviceOrder(a, polls) < a.length / 10, 'a device does not poll right when it reports');
    });
  });

  describe('a growing and shrinking fleet', () => {
    const plan = buildTrafficPlan(
      experimentWith({
        fleet: { devices: 2000, reportInterval: '10s', pollInterval: '10s' },
        load: {
          stages: [
            { devices: 2000, duration: '100s' },
            { devices: 2000, duration: '30s', shape: 'hold' },
            { devices: 500, duration: '50s' },
          ],
        },
      }),
    );
    const arrivals = collect(plan, 'measurements', 0, plan.durationS);

    it('only uses devices online within the request\'s slot (the slot holds its mean fleet, rounded up)', () => {
      for (const { timeS, device } of arrivals) {
        const slot = Math.ceil(timeS / 10) - 1;
        const largest = Math.max(fleetAt(plan, slot * 10), fleetAt(plan, Math.min(plan.durationS - 1e-9, slot * 10 + 10)), fleetAt(plan, timeS));
        assert.ok(device < Math.ceil(largest), `device ${device} at ${timeS}s`);
      }
    });

    it('offers exactly what the plan expects, phase by phase (the integral of the rate, to the request)', () => {
      for (const phase of plan.phases) {
        const count = arrivals.filter(({ timeS }) => timeS > phase.startS && timeS <= phase.endS).length;
        const expected = phase.expectedRequests.measurements;
        assert.ok(Math.abs(count - expected) <= 1, `phase ${phase.index}: ${count} arrivals, expected ${expected}`);
      }
      assert.equal(arrivals.length, arrivalCounts(plan).measurements);
    });

    it('keeps a device periodic: one interval apart, within the jitter and what a ramp compresses in a slot', () => {
      // Within a slot whose rate goes from a to b, the arrivals follow the rate: the one at fraction
      // f of the slot's arrivals lands up to (b - a) / (4 (a + b)) of an interval off f.
      const squeeze = (slot: number) => {
        const a = fleetAt(plan, slot * 10);
        const b = fleetAt(plan, Math.min(plan.durationS - 1e-9, slot * 10 + 10));
        return a + b > 0 ? Math.abs(b - a) / (4 * (a + b)) : 0;
      };
      for (const [device, times] of byDevice(arrivals)) {
        for (let i = 1; i < times.length; i++) {
          const gap = times[i]! - times[i - 1]!;
          const slot = Math.ceil(times[i]! / 10) - 1;
          const slack = 10 * (effectiveJitter(0.1) + squeeze(slot - 1) + squeeze(slot)) + 1e-9;
          assert.ok(Math.abs(gap - 10) <= slack, `device ${device}: ${gap.toFixed(3)} s between requests (allowed 10 +- ${slack.toFixed(3)} s)`);
        }
      }
    });
  });

  describe('a fleet of 1,000,000 devices', () => {
    const plan = constantPlan(1_000_000, { durationS: 600 });
    // Measure retained memory precisely: collect garbage before each reading.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;

    it('generates a 1-second window without per-device memory', (t) => {
      gc();
      const before = process.memoryUsage().heapUsed;
      const iterator = periodicArrivals(plan, 'measurements', undefined, 100);
      let count = 0;
      let retained = 0;
      for (let next = iterator.next(); !next.done && next.value.timeS < 101; next = iterator.next()) {
        count++;
        if (count === 15_000) {
          // Halfway through the window, with the generator alive: what does it hold on to?
          gc();
          retained = process.memoryUsage().heapUsed - before;
        }
      }
      const total = process.memoryUsage().heapUsed - before;
      t.diagnostic(`${count} arrivals; retained mid-window ${retained} bytes; allocated ${total} bytes`);
      assert.ok(Math.abs(count - 1_000_000 / 30) <= 33, `${count} arrivals in one second, expected about 33,333`);
      // A table of one number per device would be at least 4 MB (8 MB as doubles).
      assert.ok(retained < 1_000_000, `the generator retains ${retained} bytes`);
      assert.ok(total < 50_000_000, `the window allocated ${total} bytes in all`);
    });
  });
});
