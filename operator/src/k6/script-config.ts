import type { PerEndpoint } from '../traffic/plan.js';
import type { PhaseRange, SchedulePhase } from '../traffic/schedule.js';
import type { K6Endpoint, K6Options } from './options.js';

// Its own module, holding types only, so the k6 script (type-checked without Node) can import it.

/**
 * Everything the k6 script knows about its experiment, embedded in it as one JSON constant at
 * render time (bundle.ts). Only what differs per run stays outside, in the runner's environment:
 * LOADLAB_RUN_ID, LOADLAB_TOKEN_SECRET and (optionally) LOADLAB_API_URL.
 */
export interface ScriptConfig {
  /** "<namespace>/<name>" of the LoadExperiment. */
  experiment: string;
  /** The API's base URL when LOADLAB_API_URL is not set. */
  apiUrl: string;
  routes: Readonly<Record<K6Endpoint, string>>;
  fleet: {
    seed: number;
    serialPrefix: string;
    realism: boolean;
    jitter: number;
    intervalS: PerEndpoint;
  };
  /** Every phase of the plan: slots near the start of a partial run reach into earlier phases. */
  phases: SchedulePhase[];
  /** The phases this script runs, and where they start in the plan. */
  range: PhaseRange & { offsetS: number; durationS: number };
  /** Login iteration n logs device firstDevice + n in, while n < devices. */
  login: { firstDevice: number; devices: number };
  /** k6's request timeout (a duration string). */
  requestTimeout: string;
  options: K6Options;
}
