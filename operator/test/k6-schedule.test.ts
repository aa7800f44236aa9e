// The arithmetic the k6 script runs in every VU: which device an iteration stands for, when, and
// who logs in. k6 itself cannot run here (AGPL), so k6's arrival-rate schedule is re-derived below
// from its documented algorithm (iteration i starts when the integral of the rate reaches i).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan, effectiveJitter, loginArrivals, periodicArrivals, fleetAt, type Endpoint, type TrafficPlan, FleetIntegral, IterationDevices, deviceAtPosition, loginPieces, loginSpreadS, peakBefore, phaseRangeOfStep, schedulePhases, slotOrderFor, type PhaseRange } from '../src/traffic/index.js';
import { buildScriptConfig, k6DurationNs, k6Options, type RampingArrivalRateScenario } from '../src/k6/index.js';
import { FIVE_STAGES, SHRINK_THEN_GROW, experimentWith as sharedExperimentWith } from './support/fixtures.js';

const experimentWith = (spec: Record<string, unknown>) => sharedExperimentWith(spec, 'k6-schedule');

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
    it(`${devices} devices, jitter ${jitter}, seed ${seed}: a permutation in every slot, each device within its jitter share of it`, () => {
      for (const endpoint of ['measurements', 'command'] as const) {
        const order = slotOrderFor(seed, endpoint, jitter);
        const positions = (slot: number) => {
          const at = new Array<number>(devices).fill(-1);
          for (let position = 0; position < devices; position++) {
            const device = deviceAtPosition(order, slot, devices, position);
            assert.equal(at[device], -1, `${endpoint} slot ${slot}: device ${device} twice`);
            at[device] = position;
          }
          return at;
        };
        const first = positions(0);
        // A device keeps its 2^-L share of the order (jitter), so it moves less than that from slot to slot.
        const share = jitter >= 1 ? devices : Math.ceil(devices * effectiveJitter(jitter));
        for (const slot of [1, 5, 123_456]) {
          positions(slot).forEach((position, device) => assert.ok(Math.abs(position - first[device]!) < share + 1, `${endpoint} slot ${slot}: device ${device} moved from ${first[device]} to ${position}`));
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
    it(`while the fleet holds, send from each of ${devices} devices exactly once per interval (${interval}), each in its slot`, () => {
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
      for (const sent of slots.values()) assert.deepEqual([...sent].sort((a, b) => a - b), Array.from({ length: devices }, (_, i) => i));
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
  const spec = SHRINK_THEN_GROW;
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

/*
 * One traffic model, two generators: k6 (the options' scenarios, as k6's executor starts them, and
 * the script's iteration-to-device mapping) and the local driver (periodicArrivals, loginArrivals)
 * must send the same requests: the same devices at the same times, so the same per-second counts.
 */
describe('one schedule for both generators: k6 and the local driver agree', () => {
  const plans: Record<string, Record<string, unknown>> = {
    'ramp and hold': {
      fleet: { devices: 600, reportInterval: '7s', pollInterval: '3s', jitter: 0.25 },
      load: { stages: [{ devices: 600, duration: '40s' }, { devices: 600, duration: '30s', shape: 'hold' }] },
    },
    'shrink then grow again': SHRINK_THEN_GROW,
    'a hold that steps down': {
      fleet: { devices: 300, reportInterval: '2s', pollInterval: '4s', jitter: 0 },
      load: { stages: [{ devices: 300, duration: '10s', shape: 'hold' }, { devices: 50, duration: '10s', shape: 'hold' }, { devices: 250, duration: '12s' }] },
    },
    'a search': {
      fleet: { devices: 5000, reportInterval: '5s', pollInterval: '5s' },
      load: { search: { startDevices: 500, step: { factor: 2 }, maxDevices: 4000, hold: '20s', rampUp: '5s' } },
    },
  };
  const perSecond = (times: readonly number[]) => {
    const counts = new Map<number, number>();
    // Bucket by the second an arrival ends in: a time on a whole second belongs to the one before.
    for (const t of times) counts.set(Math.ceil(t - 1e-7) - 1, (counts.get(Math.ceil(t - 1e-7) - 1) ?? 0) + 1);
    return [...counts].sort((a, b) => a[0] - b[0]);
  };
  for (const [name, spec] of Object.entries(plans)) {
    const experiment = experimentWith(spec);
    const plan = buildTrafficPlan(experiment);
    const ranges: PhaseRange[] = plan.source === 'search'
      ? [...new Set(plan.phases.map((phase) => phase.step!))].map((step) => phaseRangeOfStep(plan, step))
      : [{ from: 0, to: plan.phases.length }];
    for (const range of ranges) {
      const label = `${name}${plan.source === 'search' ? `, step phases ${range.from}-${range.to - 1}` : ''}`;
      const options = k6Options(experiment, plan, range);
      const offsetS = plan.phases[range.from]!.startS;
      it(`${label}: reports and polls, request by request`, () => {
        for (const endpoint of ['measurements', 'command'] as const) {
          const mapper = iterationDevices(plan, endpoint, experiment, range);
          const k6 = [...k6IterationTimes(options.scenarios[endpoint]!)].map((t, n) => ({ timeS: offsetS + t, device: mapper.forIteration(n).device }));
          const driver = [...periodicArrivals(plan, endpoint, range)];
          assert.equal(driver.length, k6.length, `${endpoint}: as many requests`);
          driver.forEach((arrival, n) => {
            assert.equal(arrival.device, k6[n]!.device, `${endpoint} request ${n}: the same device`);
            assert.ok(Math.abs(arrival.timeS - k6[n]!.timeS) < 1e-6, `${endpoint} request ${n}: driver ${arrival.timeS} s, k6 ${k6[n]!.timeS} s`);
          });
          assert.deepEqual(perSecond(driver.map((a) => a.timeS)), perSecond(k6.map((a) => a.timeS)), `${endpoint}: per-second counts`);
        }
      });
      it(`${label}: logins, device by device`, () => {
        const config = buildScriptConfig(experiment, plan, { phaseRange: range });
        const scenario = options.scenarios.login;
        // What the script does: login iteration n logs device firstDevice + n in, while n < devices.
        const k6 = scenario ? [...k6IterationTimes(scenario)].slice(0, config.login.devices).map((t, n) => ({ timeS: offsetS + t, device: config.login.firstDevice + n })) : [];
        const driver = [...loginArrivals(plan, range)];
        assert.equal(driver.length, k6.length, 'as many logins');
        driver.forEach((arrival, n) => {
          assert.equal(arrival.device, k6[n]!.device);
          assert.ok(Math.abs(arrival.timeS - k6[n]!.timeS) < 1e-6, `login ${n}: driver ${arrival.timeS} s, k6 ${k6[n]!.timeS} s`);
        });
        assert.deepEqual(perSecond(driver.map((a) => a.timeS)), perSecond(k6.map((a) => a.timeS)), 'per-second counts');
      });
    }
  }

  it('a device that left and comes back does not log in again (the shrink-then-grow plan: the peak fleet, each once)', () => {
    const plan = buildTrafficPlan(experimentWith(plans['shrink then grow again']!));
    const devices = [...loginArrivals(plan)].map((arrival) => arrival.device);
    assert.equal(devices.length, plan.peakDevices);
    assert.equal(new Set(devices).size, devices.length);
  });
});
