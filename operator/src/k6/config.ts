import type { LoadExperiment } from '../schema/load-experiment.js';
import type { PerEndpoint, TrafficPlan } from '../traffic/plan.js';
import {
  k6Duration,
  k6Options,
  loginSpreadS,
  requestTimeoutS,
  resolvePhaseRange,
  ROUTES,
  schedulePhases,
  type K6Endpoint,
  type K6Options,
} from './options.js';
import { loginPieces, peakBefore, type PhaseRange, type SchedulePhase } from './schedule.js';

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

export interface ScriptConfigOptions {
  /** The API's base URL, e.g. http://quickstart-api.default.svc:3000 (default: defaultApiUrl()). */
  apiUrl?: string;
  phaseRange?: PhaseRange;
}

/** The port of the API container (its PORT default), which the experiment's Service exposes. */
export const API_PORT = 3000;

/** The in-cluster URL of the experiment's API Service, <name>-api in the experiment's namespace. */
export function defaultApiUrl(experiment: LoadExperiment): string {
  const namespace = experiment.metadata.namespace ?? 'default';
  return `http://${experiment.metadata.name}-api.${namespace}.svc:${API_PORT}`;
}

export function buildScriptConfig(experiment: LoadExperiment, plan: TrafficPlan, options: ScriptConfigOptions = {}): ScriptConfig {
  const range = resolvePhaseRange(plan, options.phaseRange);
  const phases = schedulePhases(plan);
  const first = plan.phases[range.from]!;
  const last = plan.phases[range.to - 1]!;
  const { fleet } = experiment.spec;
  const logins = loginPieces(phases, range, loginSpreadS(plan)).reduce((sum, piece) => sum + piece.logins, 0);
  return {
    experiment: `${experiment.metadata.namespace ?? 'default'}/${experiment.metadata.name}`,
    apiUrl: options.apiUrl ?? defaultApiUrl(experiment),
    routes: ROUTES,
    fleet: {
      seed: fleet.seed,
      serialPrefix: fleet.serialPrefix,
      realism: fleet.realism.enabled,
      jitter: fleet.jitter,
      intervalS: { ...plan.intervalS },
    },
    phases,
    range: { ...range, offsetS: first.startS, durationS: last.endS - first.startS },
    login: { firstDevice: peakBefore(phases, range.from), devices: logins },
    requestTimeout: k6Duration(requestTimeoutS(experiment)),
    options: k6Options(experiment, plan, range),
  };
}
