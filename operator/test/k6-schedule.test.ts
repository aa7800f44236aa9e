// The arithmetic the k6 script runs in every VU: which device an iteration stands for, when, and
// who logs in. k6 itself cannot run here (AGPL), so k6's arrival-rate schedule is re-derived below
// from its documented algorithm (iteration i starts when the integral of the rate reaches i).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type LoadExperiment } from '../src/schema/index.js';
import { arrivalsBetween, buildTrafficPlan, fleetAt, type Endpoint, type TrafficPlan, FleetIntegral, IterationDevices, deviceAtPosition, loginPieces, loginSpreadS, peakBefore, phaseRangeOfStep, schedulePhases, slotOrderFor, type PhaseRange } from '../src/traffic/index.js';
import { k6DurationNs, k6Options, type RampingArrivalRateScenario } from '../src/k6/index.js';
import { FIVE_STAGES, experimentWith as sharedExperimentWith } from './support/fixtures.js';

const experimentWith = (spec: Record<string, unknown>) => sharedExperimentWith(spec, 'k6-schedule');

function holdPlan(devices: number, options: { interval?: string; jitter?: number; seed?: number; hours?: number } = {}): TrafficPlan {
  const interval = options.interval ?? '30s';
  return buildTrafficPlan(
    experimentWith({
      fleet: { devices, reportInterval: interval, pollInterval: interval, jitter: options.jitter ?? 0.1, seed: options.seed ?? 1 },
      load: { stages: [{ devices, duration: `${options.hours ?? 2000}h`, shape: 'hold' }] },
      timeout: `${options.hours ?? 2000}h`,
    }),
  );
}

/** Start times (s) of a ramping-arrival-rate scenario's iterations, as k6 computes them (lib/executor, documented). */
function* k6IterationTimes(scenario: RampingArrivalRateScenario): Generator<number> {
  const unitS = k6DurationNs(scenario.timeUnit)! / 1e9;
  let from = scenario.startRate / unitS;
  let doneSoFar = 0;
  let endCount = 0;
  let stageStart = 0;
  let i = 1;
  for (const stage of scenario.stages) {
    const to = stage.target / unitS;
    const duration = k6DurationNs(stage.duration)! / 1e9;
    if (from !== to) {
      endCount += duration * ((to - from) / 2 + from);
      for (; i <= endCount; i++) {
        yield stageStart + (from * duration - Math.sqrt(duration * (from * from * duration + 2 * (i - doneSoFar) * (to - from)))) / (from - to);
      }
    } else {
      endCount += duration * to;
      for (; i <= endCount; i++) yield stageStart + (i - doneSoFar) / to;
    }
    doneSoFar = endCount;
    from = to;
    stageStart += duration;
  }
}

/** The largest fleet in [from, to): the fleet is linear within phases, so ends and phase boundaries suffice. */
function maxFleet(plan: TrafficPlan, from: number, to: number): number {
  const times = [from, Math.min(to, plan.durationS) - 1e-9, ...plan.phases.map((phase) => phase.startS).filter((t) => t > from && t < to)];
  return Math.max(...times.map((t) => fleetAt(plan, t)));
}

function iterationDevices(plan: TrafficPlan, endpoint: Endpoint, experiment: LoadExperiment, range?: PhaseRange) {
  const offsetS = plan.phases[range?.from ?? 0]!.startS;
  return new IterationDevices(schedulePhases(plan), offsetS, {
    intervalS: plan.intervalS[endpoint],
    order: slotOrderFor(experiment.spec.fleet.seed, endpoint, experiment.spec.fleet.jitter),
  });
}

describe('the fleet integral (expected requests since the start of the plan)', () => {
  const experiment = experimentWith(FIVE_STAGES);
  const plan = buildTrafficPlan(experiment);
  const integral = new FleetIntegral(schedulePhases(plan));

  it("matches the plan's expected requests at every phase end", () => {
    let expected = 0;
    for (const phase of plan.phases) {
      expected += phase.expectedRequests.measurements;
      assert.ok(Math.abs(integral.at(phase.endS) / plan.intervalS.measurements - expected) < 1e-9, `phase ${phase.index}`);
    }
    assert.ok(Math.abs(integral.total / plan.intervalS.command - plan.totals.command) < 1e-9);
  });

  it('is the integral of fleetAt (checked numerically) and timeOf inverts it', () => {
    let numeric = 0;
    const step = 0.01;
    for (let t = 0; t < plan.durationS; t += step) {
      numeric += fleetAt(plan, t + step / 2) * step;
      if (Math.abs((t + step) % 7) < step / 2) assert.ok(Math.abs(integral.at(t + step) - numeric) < 1, `at ${t + step}`);
    }
    for (let t = 0.25; t < plan.durationS; t += 3.3) {
      if (fleetAt(plan, t) === 0) continue;
      assert.ok(Math.abs(integral.timeOf(integral.at(t)) - t) < 1e-6, `timeOf(at(${t}))`);
    }
    assert.equal(integral.timeOf(0), 0);
    assert.equal(integral.timeOf(integral.total * 2), plan.durationS);
  });
});

describe("the model's slot order, inverted: the device at each position of a slot", () => {
  for (const [devices, jitter, seed] of [
    [1, 0.1, 1],
    [2, 0.1, 1],
    [3, 0, 5],
    [7, 0.1, 1],
    [64, 0.5, 2],
    [100, 1, 3],
    [1000, 0.1, 1],
    [1000, 0, 42],
    [4097, 0.02, 9],
  ] as const) {
    it(`equals arrivalsBetween's order: ${devices} devices, jitter ${jitter}, seed ${seed}`, () => {
      const plan = holdPlan(devices, { jitter, seed });
      for (const endpoint of ['measurements', 'command'] as const) {
        const order = slotOrderFor(seed, endpoint, jitter);
        for (const slot of [0, 1, 5, 123_456]) {
          const model = [...arrivalsBetween(plan, endpoint, slot * 30, (slot + 1) * 30)].map((arrival) => arrival.device);
          const ours = Array.from({ length: devices }, (_, position) => deviceAtPosition(order, slot, devices, position));
          assert.deepEqual(ours, model, `${endpoint}, slot ${slot}`);
        }
      }
    });
  }

  it('is a permutation of a 1,000,000-device fleet, with no per-device memory', () => {
    const devices = 1_000_000;
    const order = slotOrderFor(1, 'measurements', 0.1);
    const seen = new Uint8Array(devices);
    for (let position = 0; position < devices; position++) seen[deviceAtPosition(order, 77, devices, position)]! += 1;
    assert.ok(seen.every((count) => count === 1), 'every device exactly once');
  });

  it('clamps positions outside the fleet to its ends instead of inventing devices', () => {
    const order = slotOrderFor(1, 'command', 0.1);
    assert.equal(deviceAtPosition(order, 3, 10, -5), deviceAtPosition(order, 3, 10, 0));
    assert.equal(deviceAtPosition(order, 3, 10, 99), deviceAtPosition(order, 3, 10, 9));
    assert.equal(deviceAtPosition(order, 3, 1, 0), 0);
  });
});

describe('k6 iterations to devices', () => {
  it("follow k6's own start times: the scheduled plan time of iteration n is where k6 starts it", () => {
    const experiment = experimentWith({
      fleet: { devices: 300, reportInterval: '7s', pollInterval: '3s', jitter: 0.25 },
      load: {
        stages: [
          { devices: 120, duration: '11s' },
          { devices: 300, duration: '13s', shape: 'hold' },
          { devices: 40, duration: '9s' },
        ],
      },
    });
    const plan = buildTrafficPlan(experiment);
    const options = k6Options(experiment, plan);
    for (const endpoint of ['measurements', 'command'] as const) {
      const devices = iterationDevices(plan, endpoint, experiment);
      let n = 0;
      for (const t of k6IterationTimes(options.scenarios[endpoint]!)) {
        const target = devices.forIteration(n);
        assert.ok(Math.abs(target.planTimeS - t) < 1e-6, `${endpoint} iteration ${n}: planned ${target.planTimeS}, k6 ${t}`);
        const interval = plan.intervalS[endpoint];
        const online = Math.ceil(maxFleet(plan, target.slot * interval, (target.slot + 1) * interval));
        assert.ok(target.device < online, `${endpoint} iteration ${n}: device ${target.device} of ${online} online`);
        n++;
      }
      assert.ok(Math.abs(n - plan.totals[endpoint]) <= 1, `${endpoint}: k6 starts the planned ${plan.totals[endpoint]} iterations, not ${n}`);
    }
  });

  for (const [devices, interval, jitter] of [
    [20, '2s', 0.1],
    [1000, '10s', 0.1],
    [997, '30s', 0],
  ] as const) {
    it(`while the fleet holds, send from each of ${devices} devices exactly once per interval (${interval}), in the model's order`, () => {
      const experiment = experimentWith({
        fleet: { devices, reportInterval: interval, pollInterval: interval, jitter },
        load: { stages: [{ devices, duration: '2m', shape: 'hold' }] },
      });
      const plan = buildTrafficPlan(experiment);
      const options = k6Options(experiment, plan);
      const mapper = iterationDevices(plan, 'measurements', experiment);
      const slots = new Map<number, number[]>();
      let n = 0;
      for (const _time of k6IterationTimes(options.scenarios.measurements!)) {
        const { device, slot } = mapper.forIteration(n++);
        slots.set(slot, [...(slots.get(slot) ?? []), device]);
      }
      const intervalS = plan.intervalS.measurements;
      assert.equal(slots.size, 120 / intervalS);
      for (const [slot, sent] of slots) {
        const model = [...arrivalsBetween(plan, 'measurements', slot * intervalS, (slot + 1) * intervalS)].map((arrival) => arrival.device);
        assert.deepEqual(sent, model, `slot ${slot}`);
      }
    });
  }

  it('during a ramp use only devices that are online within the slot', () => {
    const experiment = experimentWith({
      fleet: { devices: 5000, reportInterval: '10s', pollInterval: '10s' },
      load: { stages: [{ devices: 5000, duration: '100s' }] },
    });
    const plan = buildTrafficPlan(experiment);
    const mapper = iterationDevices(plan, 'command', experiment);
    let n = 0;
    for (const t of k6IterationTimes(k6Options(experiment, plan).scenarios.command!)) {
      const { device, slot } = mapper.forIteration(n++);
      assert.ok(device < Math.ceil(fleetAt(plan, Math.min((slot + 1) * 10, 99.999))), `iteration at ${t}s: device ${device}`);
    }
  });

  it('in a run of one search step, pick devices of that step from its first iteration on (1,000,000-device plan)', () => {
    const experiment = experimentWith({
      fleet: { devices: 1_000_000, reportInterval: '30s', pollInterval: '30s' },
      load: { search: { startDevices: 20_000, step: { factor: 1.5 }, maxDevices: 1_000_000, hold: '60s', rampUp: '10s' } },
    });
    const plan = buildTrafficPlan(experiment);
    const range = phaseRangeOfStep(plan, 3);
    const options = k6Options(experiment, plan, range);
    const mapper = iterationDevices(plan, 'measurements', experiment, range);
    const step = plan.phases[range.from]!;
    let n = 0;
    for (const t of k6IterationTimes(options.scenarios.measurements!)) {
      const target = mapper.forIteration(n);
      assert.ok(Math.abs(target.planTimeS - (step.startS + t)) < 1e-6);
      assert.ok(target.device < plan.phases[range.to - 1]!.devicesAtEnd);
      if (++n === 20_000) break;
    }
  });
});

describe('logins: each device once, when it joins', () => {
  const spec = {
    fleet: { devices: 1000, reportInterval: '10s', pollInterval: '5s' },
    load: {
      stages: [
        { devices: 100, duration: '30s', shape: 'hold' },
        { devices: 400, duration: '30s' },
        { devices: 200, duration: '20s' },
        { devices: 600, duration: '40s' },
        { devices: 900, duration: '15s', shape: 'hold' },
      ],
    },
  };
  const experiment = experimentWith(spec);
  const plan = buildTrafficPlan(experiment);
  const phases = schedulePhases(plan);

  it('cover the range, log in the peak fleet once, and start when the fleet first passes each device', () => {
    const pieces = loginPieces(phases, { from: 0, to: phases.length }, loginSpreadS(plan));
    assert.deepEqual(pieces, [
      { durationS: 5, logins: 100 }, // the fleet at t=0, over the shorter interval
      { durationS: 25, logins: 0 },
      { durationS: 30, logins: 300 }, // 100 -> 400
      { durationS: 40, logins: 0 }, // down to 200 and back up to 400: nobody new
      { durationS: 20, logins: 200 }, // 400 -> 600, the second half of the ramp
      { durationS: 5, logins: 300 }, // the hold jumps to 900
      { durationS: 10, logins: 0 },
    ]);
    assert.equal(pieces.reduce((sum, piece) => sum + piece.durationS, 0), plan.durationS);
    assert.equal(pieces.reduce((sum, piece) => sum + piece.logins, 0), plan.peakDevices);
  });

  it('for a partial run, start after the devices earlier phases logged in', () => {
    assert.equal(peakBefore(phases, 3), 400);
    const pieces = loginPieces(phases, { from: 3, to: 5 }, loginSpreadS(plan));
    assert.deepEqual(pieces, [
      { durationS: 20, logins: 0 },
      { durationS: 20, logins: 200 },
      { durationS: 5, logins: 300 },
      { durationS: 10, logins: 0 },
    ]);
  });

  it('happen exactly as planned in k6: the login scenario starts peak-fleet iterations, in the pieces\' windows', () => {
    const options = k6Options(experiment, plan);
    const times = [...k6IterationTimes(options.scenarios.login!)];
    assert.equal(times.length, plan.peakDevices);
    // Device i logs in no earlier than the fleet first reaches i + 1 devices (within one spread window).
    times.forEach((t, device) => {
      const firstOnline = plan.phases.find((phase) => Math.max(phase.devicesAtStart, phase.devicesAtEnd) > device)!;
      assert.ok(t >= firstOnline.startS - 1e-9, `device ${device} logs in at ${t}s, before its phase ${firstOnline.index}`);
    });
  });
});
