import { formatErrors, parseExperiment, type LoadExperiment } from '../../src/schema/index.js';

/** A validated LoadExperiment (defaults applied) from a spec written in a test; throws on invalid input. */
export function experimentWith(spec: Record<string, unknown>, name: string): LoadExperiment {
  const manifest = { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name }, spec };
  const result = parseExperiment(JSON.stringify(manifest), `${name}.json`);
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

/** A small deterministic PRNG (mulberry32, the comparison's own): sampled data stays the same from run to run. */
export { mulberry32 as random } from '../../src/analysis/compare/bootstrap.js';

/** Five stages (ramp, hold, ramp, hold at a smaller fleet, ramp to zero): the plan and k6 schedule tests share it. */
export const FIVE_STAGES = {
  fleet: { devices: 1000, reportInterval: '10s', pollInterval: '30s' },
  load: {
    stages: [
      { devices: 200, duration: '20s' },
      { devices: 200, duration: '20s', shape: 'hold' },
      { devices: 1000, duration: '40s' },
      { devices: 500, duration: '1m', shape: 'hold' },
      { devices: 0, duration: '10s' },
    ],
  },
};

/** A plan that shrinks and grows again: who logs in, and when (shared by the login, agreement and runner-slice tests). */
export const SHRINK_THEN_GROW = {
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
