import { defaultApiUrl } from '../contract/api-environment.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { loginSpreadS, resolvePhaseRange, schedulePhases } from '../traffic/phases.js';
import type { TrafficPlan } from '../traffic/plan.js';
import { loginPieces, peakBefore, type PhaseRange } from '../traffic/schedule.js';
import { k6Duration, k6Options, requestTimeoutS, ROUTES } from './options.js';
import type { ScriptConfig } from './script-config.js';

export type { ScriptConfig } from './script-config.js';

export interface ScriptConfigOptions {
  /** The API's base URL, e.g. http://quickstart-api.default.svc:3000 (default: defaultApiUrl()). */
  apiUrl?: string;
  phaseRange?: PhaseRange;
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
