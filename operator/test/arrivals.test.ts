import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  activeDevicesAt,
  arrivalsBetween,
  buildTrafficPlan,
  effectiveJitter,
  slotTimeOf,
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

function collect(plan: TrafficPlan, endpoint: Endpoint, fromS: number, toS: number): Arrival[] {
  return [...arrivalsBetween(plan, endpoint, fromS, toS)];
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
      for (const { timeS } of arrivalsBetween(plan, 'measurements', 0, 30)) buckets[Math.floor(timeS / 3)]!++;
      for (const count of buckets) assert.ok(count >= 95 && count <= 105, `bucket of ${count}, expected about 100: ${buckets.join(' ')}`);
    });
  });

  it('yields arrivals in time order, inside the window, and exactly when each device\'s slot says', () => {
    const plan = constantPlan(5000, { interval: '10s', durationS: 60 });
    const arrivals = collect(plan, 'command', 12.5, 31.25);
    assert.ok(arrivals.length > 9000);
    for (let i = 0; i < arrivals.length; i++) {
      const { timeS, device } = arrivals[i]!;
      assert.ok(timeS >= 12.5 && timeS < 31.25);
      if (i > 0) assert.ok(timeS > arrivals[i - 1]!.timeS, 'strictly increasing');
      assert.equal(slotTimeOf(plan, 'command', device, Math.floor(timeS / 10)), timeS);
    }
  });

  it('gives the same arrivals for adjoining windows as for their union', () => {
    const plan = constantPlan(777, { interval: '5s', durationS: 60 });
    const whole = collect(plan, 'measurements', 3, 47);
    // Awkward cut points: thirds, slot boundaries, a hair before one, cell boundaries of the 1024-cell grid.
    const cuts = [3, 20 / 3, 10, 11.1, 15 - 1e-9, 15 + 5 / 1024, 25, 47];
    const parts = cuts.slice(1).flatMap((to, i) => collect(plan, 'measurements', cuts[i]!, to));
    assert.deepEqual(parts, whole);
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

    it('only ever uses devices 0..n-1 of the fleet online at that moment', () => {
      for (const { timeS, device } of arrivals) assert.ok(device < activeDevicesAt(plan, timeS), `device ${device} at ${timeS}s`);
    });

    it('offers what the plan expects, phase by phase (within a fraction of a percent)', () => {
      for (const phase of plan.phases) {
        const count = arrivals.filter(({ timeS }) => timeS >= phase.startS && timeS < phase.endS).length;
        const expected = phase.expectedRequests.measurements;
        assert.ok(Math.abs(count - expected) <= 0.005 * expected + 10, `phase ${phase.index}: ${count} arrivals, expected ${expected}`);
      }
    });

    it('keeps a device periodic once it is online (no double sends while the fleet grows)', () => {
      for (const [device, times] of byDevice(arrivals)) {
        for (let i = 1; i < times.length; i++) {
          const gap = times[i]! - times[i - 1]!;
          assert.ok(gap >= 10 * (1 - 0.1) - 1e-9, `device ${device} sent twice within ${gap}s`);
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
      const iterator = arrivalsBetween(plan, 'measurements', 100, 101);
      let count = 0;
      let retained = 0;
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
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

    it('costs per arrival, not per device: as fast per request as a fleet of 1,000', (t) => {
      // Same number of arrivals (about 33,000) from a fleet a thousand times smaller.
      const small = constantPlan(1000, { durationS: 1200 });
      const perArrival = (subject: TrafficPlan, fromS: number, toS: number) => {
        let best = Infinity;
        for (let round = 0; round < 5; round++) {
          const started = performance.now();
          let count = 0;
          for (const _ of arrivalsBetween(subject, 'measurements', fromS, toS)) count++;
          best = Math.min(best, (performance.now() - started) / count);
        }
        return best;
      };
      const large = perArrival(plan, 100, 101);
      const baseline = perArrival(small, 0, 1000);
      const ratio = large / baseline;
      t.diagnostic(`${(large * 1e6).toFixed(0)} ns per arrival at 1,000,000 devices, ${(baseline * 1e6).toFixed(0)} ns at 1,000: ratio ${ratio.toFixed(2)}`);
      assert.ok(ratio < 4, `1,000,000 devices cost ${ratio.toFixed(2)}x per arrival of 1,000 devices`);
    });
  });
});
