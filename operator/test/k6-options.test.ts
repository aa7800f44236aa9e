// k6 options built from the traffic plan, checked against the plan and against k6's documented
// option shape (k6 itself cannot run here: AGPL, not used in this workplace).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { durationMs, formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan, type TrafficPlan, phaseRangeOfStep, resolvePhaseRange, type PhaseRange } from '../src/traffic/index.js';
import { DEFAULT_MAX_VUS_FACTOR, K6_ENDPOINTS, VU_HEADROOM, k6Duration, k6DurationNs, k6Options, loginTimeUnitMs, sizeVus, validateK6Options, type K6Options, type RampingArrivalRateScenario } from '../src/k6/index.js';
import { experimentWith as sharedExperimentWith } from './support/fixtures.js';

const EXPERIMENTS = new URL('../../../experiments/', import.meta.url);
const SCRIPT_EXPORTS = ['measurements', 'command', 'login'];

const experimentWith = (spec: Record<string, unknown>, name = 'k6-options') => sharedExperimentWith(spec, name);

function example(file: string): LoadExperiment {
  const result = parseExperiment(readFileSync(new URL(file, EXPERIMENTS), 'utf8'), file);
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

const seconds = (duration: string) => k6DurationNs(duration)! / 1e9;

/** Iterations k6 starts: the integral of the rate (linear within a stage) over the stages. */
function integratedIterations(scenario: RampingArrivalRateScenario): number {
  const unit = seconds(scenario.timeUnit);
  let from = scenario.startRate;
  let total = 0;
  for (const stage of scenario.stages) {
    total += ((from + stage.target) / 2) * (seconds(stage.duration) / unit);
    from = stage.target;
  }
  return total;
}

/** How long the stages last, in seconds. */
function stageDurationS(scenario: RampingArrivalRateScenario): number {
  return scenario.stages.reduce((sum, stage) => sum + seconds(stage.duration), 0);
}

function near(actual: number, expected: number, message: string, tolerance = 1e-6) {
  assert.ok(Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `${message}: ${actual} != ${expected}`);
}

/** The invariants every options object must satisfy for its plan and range. */
function checkAgainstPlan(experiment: LoadExperiment, plan: TrafficPlan, options: K6Options, range: PhaseRange) {
  const phases = plan.phases.slice(range.from, range.to);
  const rangeS = phases.reduce((sum, phase) => sum + phase.durationS, 0);
  assert.deepEqual(validateK6Options(options, SCRIPT_EXPORTS), [], 'conforms to k6\'s documented option shape');

  for (const endpoint of ['measurements', 'command'] as const) {
    const scenario = options.scenarios[endpoint]!;
    assert.equal(scenario.executor, 'ramping-arrival-rate');
    near(stageDurationS(scenario), rangeS, `${endpoint}: stages last the planned duration`);
    const planned = phases.reduce((sum, phase) => sum + phase.expectedRequests[endpoint], 0);
    near(integratedIterations(scenario), planned, `${endpoint}: iterations = the plan's expected requests`);
    // Mid-phase, the rate is the mean fleet over the interval (ramps are linear in both).
    let t = 0;
    const rateAt = (time: number) => {
      let from = scenario.startRate;
      let start = 0;
      for (const stage of scenario.stages) {
        const duration = seconds(stage.duration);
        if (time < start + duration || (duration > 0 && time === start + duration)) {
          return (from + ((stage.target - from) * (time - start)) / duration) / seconds(scenario.timeUnit);
        }
        from = stage.target;
        start += duration;
      }
      return from / seconds(scenario.timeUnit);
    };
    for (const phase of phases) {
      near(rateAt(t + phase.durationS / 2), (phase.devicesAtStart + phase.devicesAtEnd) / 2 / plan.intervalS[endpoint], `${endpoint}: mid-phase ${phase.index} rate`);
      t += phase.durationS;
    }
  }

  const threshold = `p(${experiment.spec.slo.latencyPercentile})<${durationMs(experiment.spec.slo.latencyThreshold)}`;
  const errors = `rate<=${experiment.spec.slo.maxErrorRate}`;
  for (const endpoint of Object.keys(options.scenarios)) {
    assert.deepEqual(options.thresholds[`http_req_duration{endpoint:${endpoint}}`], [{ threshold, abortOnFail: false }]);
    assert.deepEqual(options.thresholds[`http_req_failed{endpoint:${endpoint}}`], [{ threshold: errors, abortOnFail: false }]);
  }
  assert.deepEqual(options.thresholds.http_req_failed, [{ threshold: errors, abortOnFail: false }]);
  assert.equal(options.tags.experiment, `${experiment.metadata.namespace ?? 'default'}/${experiment.metadata.name}`);
}

describe('k6 options for the experiments/ examples', () => {
  const files = readdirSync(EXPERIMENTS).filter((file) => file.endsWith('.yaml'));
  for (const file of files) {
    it(`${file}: stages, rates, totals and thresholds follow the plan and the SLO`, () => {
      const experiment = example(file);
      const plan = buildTrafficPlan(experiment);
      const options = k6Options(experiment, plan);
      checkAgainstPlan(experiment, plan, options, { from: 0, to: plan.phases.length });
      const login = options.scenarios.login!;
      near(stageDurationS(login), plan.durationS, 'login: stages last the plan');
      near(integratedIterations(login), plan.peakDevices, 'login: every device of the peak fleet logs in once', 0);
    });
  }

  it('breaking-point.yaml: one TestRun per search step runs that step\'s phases and logs in only its new devices', () => {
    const experiment = example('breaking-point.yaml');
    const plan = buildTrafficPlan(experiment);
    const steps = new Set(plan.phases.map((phase) => phase.step));
    let loggedIn = 0;
    for (const step of steps) {
      const range = phaseRangeOfStep(plan, step!);
      const options = k6Options(experiment, plan, range);
      checkAgainstPlan(experiment, plan, options, range);
      const first = plan.phases[range.from]!;
      assert.equal(options.scenarios.measurements!.startRate, first.devicesAtStart, 'starts at the previous step\'s fleet');
      const login = options.scenarios.login!;
      loggedIn += integratedIterations(login);
      near(integratedIterations(login), plan.phases[range.to - 1]!.devicesAtEnd - first.devicesAtStart, `step ${step}: logins = growth`, 0);
    }
    assert.equal(loggedIn, plan.peakDevices);
  });
});

describe('k6 options: scenario shape', () => {
  it('uses the interval as the timeUnit, so every target is a whole fleet size (fractional rates stay exact)', () => {
    const experiment = experimentWith({
      fleet: { devices: 1000, reportInterval: '7s', pollInterval: '1.5s' },
      load: { stages: [{ devices: 333, duration: '13s' }, { devices: 333, duration: '11s', shape: 'hold' }] },
    });
    const options = k6Options(experiment, buildTrafficPlan(experiment));
    assert.equal(options.scenarios.measurements!.timeUnit, '7s');
    assert.equal(options.scenarios.command!.timeUnit, '1s500ms');
    assert.deepEqual(options.scenarios.measurements!.stages, [
      { duration: '13s', target: 333 },
      { duration: '11s', target: 333 },
    ]);
  });

  it('jumps with a zero-length stage where a hold changes the fleet, and ramps linearly otherwise', () => {
    const experiment = experimentWith({
      fleet: { devices: 1000, reportInterval: '10s', pollInterval: '10s' },
      load: {
        stages: [
          { devices: 500, duration: '1m', shape: 'hold' },
          { devices: 100, duration: '30s', shape: 'hold' },
          { devices: 900, duration: '1m' },
        ],
      },
    });
    const scenario = k6Options(experiment, buildTrafficPlan(experiment)).scenarios.command!;
    assert.equal(scenario.startRate, 500);
    assert.deepEqual(scenario.stages, [
      { duration: '1m', target: 500 },
      { duration: '0s', target: 100 },
      { duration: '30s', target: 100 },
      { duration: '1m', target: 900 },
    ]);
  });

  it('tags each scenario and runs the script function of the same name', () => {
    const experiment = example('quickstart.yaml');
    const options = k6Options(experiment, buildTrafficPlan(experiment));
    assert.deepEqual(Object.keys(options.scenarios), K6_ENDPOINTS);
    for (const [name, scenario] of Object.entries(options.scenarios)) {
      assert.equal(scenario.exec, name);
      assert.deepEqual(scenario.tags, { endpoint: name });
      assert.equal(scenario.gracefulStop, '5s', 'in-flight requests may finish: the request timeout (10 x 500ms)');
    }
  });

  it('leaves the login scenario out of a range in which no device joins', () => {
    const experiment = example('quickstart.yaml');
    const plan = buildTrafficPlan(experiment);
    const options = k6Options(experiment, plan, { from: 1, to: 2 });
    assert.deepEqual(Object.keys(options.scenarios), ['measurements', 'command']);
    assert.equal(options.thresholds['http_req_duration{endpoint:login}'], undefined);
  });

  it('refuses a phase range outside the plan, saying what would fit', () => {
    const experiment = example('smoke.yaml');
    const plan = buildTrafficPlan(experiment);
    assert.throws(() => k6Options(experiment, plan, { from: 1, to: 1 }), /phase range \[1, 1\) is not inside the plan's 2 phases: give 0 <= from < to <= 2/);
    assert.throws(() => resolvePhaseRange(plan, { from: 0, to: 3 }), RangeError);
    assert.throws(() => phaseRangeOfStep(plan, 0), /no search step 0/);
  });
});

describe('k6 options: VU sizing by Little\'s law', () => {
  it('pre-allocates rate x SLO threshold x headroom, and allows DEFAULT_MAX_VUS_FACTOR times that', () => {
    const experiment = example('seed-20k.yaml'); // 20,000 devices / 30 s = 666.7 requests/s per endpoint, 250 ms
    const options = k6Options(experiment, buildTrafficPlan(experiment));
    const expected = Math.ceil((20_000 / 30) * 0.25 * VU_HEADROOM);
    assert.equal(options.scenarios.measurements!.preAllocatedVUs, expected);
    assert.equal(options.scenarios.measurements!.maxVUs, expected * DEFAULT_MAX_VUS_FACTOR);
    // Logins: 20,000 over the 3-minute ramp = 111 per second.
    assert.equal(options.scenarios.login!.preAllocatedVUs, Math.ceil((20_000 / 180) * 0.25 * VU_HEADROOM));
  });

  for (const row of [
    { name: 'tiny rates still get one VU per generator pod', rates: [0.1, 0.1], latency: 0.25, parallelism: 4, maxVUs: undefined, want: [[4, 20], [4, 20]] },
    { name: 'exact products are not rounded up', rates: [100, 50], latency: 0.5, parallelism: 1, maxVUs: undefined, want: [[100, 500], [50, 250]] },
    { name: 'a per-pod budget is shared in proportion to need', rates: [100, 50], latency: 0.5, parallelism: 2, maxVUs: 60, want: [[80, 80], [40, 40]] },
    { name: 'a small budget caps the pre-allocation too', rates: [1000, 1000], latency: 1, parallelism: 1, maxVUs: 100, want: [[50, 50], [50, 50]] },
  ]) {
    it(row.name, () => {
      const sizing = sizeVus(row.rates, row.latency, row.parallelism, row.maxVUs);
      assert.deepEqual(sizing.map((vus) => [vus.preAllocatedVUs, vus.maxVUs]), row.want);
    });
  }

  it('uses spec.generator.maxVUs as a per-pod bound on the whole script', () => {
    const experiment = experimentWith({
      fleet: { devices: 10_000, reportInterval: '10s', pollInterval: '10s' },
      load: { stages: [{ devices: 10_000, duration: '1m' }] },
      generator: { parallelism: 2, maxVUs: 300 },
    });
    const options = k6Options(experiment, buildTrafficPlan(experiment));
    const total = Object.values(options.scenarios).reduce((sum, scenario) => sum + scenario.maxVUs, 0);
    assert.ok(total <= 600, `${total} VUs for 2 pods of 300`);
    for (const scenario of Object.values(options.scenarios)) assert.ok(scenario.preAllocatedVUs <= scenario.maxVUs);
  });
});

describe('k6 options: logins in k6 time units', () => {
  it('finds the smallest exact timeUnit', () => {
    assert.deepEqual(loginTimeUnitMs([{ durationS: 20, logins: 200 }, { durationS: 40, logins: 800 }]), { timeUnitMs: 100, exact: true });
    assert.deepEqual(loginTimeUnitMs([{ durationS: 180, logins: 20_000 }]), { timeUnitMs: 9, exact: true });
    assert.deepEqual(loginTimeUnitMs([{ durationS: 7, logins: 3 }, { durationS: 0, logins: 0 }]), { timeUnitMs: 7000, exact: true });
  });

  it('falls back to per-hour rates when the exact unit would exceed a day or durations are not whole milliseconds', () => {
    assert.deepEqual(loginTimeUnitMs([{ durationS: 86_400.001, logins: 1 }, { durationS: 7.003, logins: 1 }]), { timeUnitMs: 3_600_000, exact: false });
    assert.deepEqual(loginTimeUnitMs([{ durationS: 0.0005, logins: 1 }]), { timeUnitMs: 3_600_000, exact: false });
  });
});

describe('k6 duration strings', () => {
  for (const [value, text] of [
    [0, '0s'],
    [0.25, '250ms'],
    [90, '1m30s'],
    [3600, '1h'],
    [1.5, '1s500ms'],
    [0.0005, '500us'],
  ] as const) {
    it(`${value} s is "${text}", which k6 parses back to ${value} s`, () => {
      assert.equal(k6Duration(value), text);
      assert.equal(k6DurationNs(text)! / 1e9, value);
    });
  }
});

describe('the k6 options validator refuses what k6 would refuse (k6 docs: Scenarios, Executors, Thresholds)', () => {
  const valid = (): Record<string, unknown> => {
    const experiment = example('smoke.yaml');
    return JSON.parse(JSON.stringify(k6Options(experiment, buildTrafficPlan(experiment)))) as Record<string, unknown>;
  };
  const scenario = (options: Record<string, unknown>) => (options.scenarios as Record<string, Record<string, unknown>>).measurements!;

  for (const row of [
    { name: 'an unknown scenario field', edit: (o: Record<string, unknown>) => void (scenario(o).rate = 5), want: /scenarios\.measurements\.rate: unknown field for executor ramping-arrival-rate/ },
    { name: 'a missing preAllocatedVUs', edit: (o: Record<string, unknown>) => void delete scenario(o).preAllocatedVUs, want: /preAllocatedVUs: is required/ },
    { name: 'an unknown executor', edit: (o: Record<string, unknown>) => void (scenario(o).executor = 'ramping-rate'), want: /executor: must be one of/ },
    { name: 'a timeUnit of 0', edit: (o: Record<string, unknown>) => void (scenario(o).timeUnit = '0s'), want: /timeUnit: must be longer than 0/ },
    { name: 'a duration without a unit', edit: (o: Record<string, unknown>) => void ((scenario(o).stages as { duration: string }[])[0]!.duration = '30'), want: /stages\[0\]\.duration: must be a duration/ },
    { name: 'a fractional target', edit: (o: Record<string, unknown>) => void ((scenario(o).stages as { target: number }[])[0]!.target = 2.5), want: /stages\[0\]\.target: must be a whole number/ },
    { name: 'maxVUs below preAllocatedVUs', edit: (o: Record<string, unknown>) => void (scenario(o).maxVUs = 1), want: /maxVUs: must be at least preAllocatedVUs/ },
    { name: 'a scenario name with a dot', edit: (o: Record<string, unknown>) => void ((o.scenarios as Record<string, unknown>)['a.b'] = scenario(o)), want: /scenarios\.a\.b: the scenario name/ },
    { name: 'an exec the script does not export', edit: (o: Record<string, unknown>) => void (scenario(o).exec = 'poll'), want: /exec: names poll, which the script does not export/ },
    { name: 'a malformed threshold', edit: (o: Record<string, unknown>) => void ((o.thresholds as Record<string, unknown>).http_req_failed = ['rate is low']), want: /thresholds\["http_req_failed"\]\[0\]: must be an expression/ },
    { name: 'a malformed tag filter', edit: (o: Record<string, unknown>) => void ((o.thresholds as Record<string, unknown>)['http_req_duration{endpoint}'] = ['p(95)<1']), want: /must be a metric name with an optional \{tag:value,...\} filter/ },
    { name: 'a non-string tag', edit: (o: Record<string, unknown>) => void (o.tags = { experiment: 1 }), want: /tags\.experiment: must be a string/ },
  ]) {
    it(`refuses ${row.name}`, () => {
      const options = valid();
      assert.deepEqual(validateK6Options(options, SCRIPT_EXPORTS), []);
      row.edit(options);
      const problems = validateK6Options(options, SCRIPT_EXPORTS);
      assert.ok(problems.some((problem) => row.want.test(problem)), problems.join('\n'));
    });
  }
});
