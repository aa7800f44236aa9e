import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  arrivalCounts,
  buildTrafficPlan,
  checkRunnerSlice,
  firstOwnedFrom,
  loginArrivals,
  ownedCount,
  periodicArrivals,
  phaseRangeOfStep,
  type Arrival,
  type PhaseRange,
  type RunnerSlice,
} from '../src/traffic/index.js';
import { experimentWith as sharedExperimentWith, FIVE_STAGES, SHRINK_THEN_GROW } from './support/fixtures.js';

/*
 * The split of one schedule between parallel runners (traffic/runner-slice.ts): runner k of n sends
 * every stream's arrivals numbered k mod n. Held here against the whole schedule arrival by
 * arrival: the n slices together are exactly the schedule, no arrival is in two slices, each keeps
 * its time and device, and arrival j is runner (j mod n)'s (j div n)-th, which is where k6's striped
 * execution segments put iteration j of a scenario.
 */

const experimentWith = (spec: Record<string, unknown>) => sharedExperimentWith(spec, 'slices');

const PLANS: Record<string, Record<string, unknown>> = {
  'five stages (ramps and holds)': FIVE_STAGES,
  'shrink then grow again': SHRINK_THEN_GROW,
  'a search': {
    fleet: { devices: 3000, reportInterval: '5s', pollInterval: '7s' },
    load: { search: { startDevices: 300, step: { factor: 2 }, maxDevices: 2400, hold: '20s', rampUp: '5s' } },
  },
};

type Streams = Record<'measurements' | 'command' | 'login', (range: PhaseRange, slice?: RunnerSlice) => Arrival[]>;

function streams(plan: ReturnType<typeof buildTrafficPlan>): Streams {
  return {
    measurements: (range, slice) => [...periodicArrivals(plan, 'measurements', range, undefined, slice)],
    command: (range, slice) => [...periodicArrivals(plan, 'command', range, undefined, slice)],
    login: (range, slice) => [...loginArrivals(plan, range, slice)],
  };
}

describe('runner slices: parallel runners share one schedule', () => {
  for (const [name, spec] of Object.entries(PLANS)) {
    const plan = buildTrafficPlan(experimentWith(spec));
    const ranges: PhaseRange[] = plan.source === 'search'
      ? [...new Set(plan.phases.map((phase) => phase.step!))].map((step) => phaseRangeOfStep(plan, step))
      : [{ from: 0, to: plan.phases.length }];
    const byStream = streams(plan);
    for (const count of [1, 2, 3, 7]) {
      it(`${name}, ${count} runner${count > 1 ? 's' : ''}: the slices are exactly the schedule, none twice, arrival j is runner j mod ${count}'s`, () => {
        for (const range of ranges) {
          for (const [stream, arrivalsOf] of Object.entries(byStream)) {
            const whole = arrivalsOf(range);
            assert.ok(whole.length > 0, `${stream}: the schedule has arrivals in phases ${range.from}-${range.to - 1}`);
            const slices = Array.from({ length: count }, (_, index) => arrivalsOf(range, { index, count }));
            // Position by position: the union is the schedule and no arrival is sent twice.
            whole.forEach((arrival, j) => {
              const sent = slices[j % count]![Math.floor(j / count)];
              assert.deepEqual(sent, arrival, `${stream} arrival ${j} of phases ${range.from}-${range.to - 1}: runner ${j % count} sends it, unchanged`);
            });
            assert.equal(slices.reduce((sum, slice) => sum + slice.length, 0), whole.length, `${stream}: no arrival outside the schedule`);
            // Each runner's share is within one arrival of 1/n of the schedule.
            for (const slice of slices) assert.ok(Math.abs(slice.length - whole.length / count) < 1, `${stream}: ${slice.length} of ${whole.length}`);
            // arrivalCounts agrees with the generators, per slice.
            slices.forEach((slice, index) => assert.equal(arrivalCounts(plan, range, { index, count })[stream as 'login'], slice.length));
          }
          // A device's requests of one endpoint may go to several runners, but each arrival goes to one.
          const keys = Object.keys(byStream).flatMap((stream) =>
            Array.from({ length: count }, (_, index) => byStream[stream as 'login'](range, { index, count }).map((a) => `${stream}:${a.device}@${a.timeS}`)).flat(),
          );
          assert.equal(new Set(keys).size, keys.length, 'no arrival in two slices');
        }
      });
    }
  }

  it('at any moment every runner\'s rate is within one arrival of 1/n of the schedule\'s (a steady hold, 4 runners)', () => {
    const plan = buildTrafficPlan(experimentWith({ fleet: { devices: 1000, reportInterval: '10s', pollInterval: '10s' }, load: { stages: [{ devices: 1000, duration: '60s', shape: 'hold' }] } }));
    const range = { from: 0, to: 1 };
    const whole = [...periodicArrivals(plan, 'measurements', range)];
    for (let index = 0; index < 4; index++) {
      const mine = [...periodicArrivals(plan, 'measurements', range, undefined, { index, count: 4 })];
      for (let second = 1; second <= 60; second += 7) {
        const upTo = (list: Arrival[]) => list.filter((arrival) => arrival.timeS <= second).length;
        assert.ok(Math.abs(upTo(mine) - upTo(whole) / 4) <= 1, `runner ${index} at ${second} s: ${upTo(mine)} of ${upTo(whole)}`);
      }
    }
  });

  it('refuses a runner index outside 0..count-1 and a count below 1, saying what to give', () => {
    assert.throws(() => checkRunnerSlice({ index: 2, count: 2 }), /runner index must be a whole number from 0 to 1/);
    assert.throws(() => checkRunnerSlice({ index: -1, count: 2 }), /from 0 to 1/);
    assert.throws(() => checkRunnerSlice({ index: 0, count: 0 }), /runner count must be a whole number of at least 1/);
    assert.throws(() => checkRunnerSlice({ index: 0.5, count: 2 }), /runner index/);
    assert.doesNotThrow(() => checkRunnerSlice({ index: 6, count: 7 }));
    const plan = buildTrafficPlan(experimentWith(FIVE_STAGES));
    assert.throws(() => [...periodicArrivals(plan, 'measurements', undefined, undefined, { index: 3, count: 2 })], /runner index must be a whole number from 0 to 1/);
    assert.throws(() => [...loginArrivals(plan, undefined, { index: 0, count: 0 })], /runner count must be/);
  });

  it('counts and first arrivals of a slice', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => firstOwnedFrom({ index: 1, count: 3 }, n)), [1, 1, 4, 4, 4, 7]);
    assert.deepEqual([0, 1, 2, 3, 4].map((total) => ownedCount({ index: 1, count: 3 }, total)), [0, 0, 1, 1, 1]);
    assert.equal(ownedCount({ index: 0, count: 1 }, 17), 17);
  });
});
