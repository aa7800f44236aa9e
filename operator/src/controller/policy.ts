import type { LoadExperiment } from '../schema/load-experiment.js';
import type { TrafficPlan } from '../traffic/plan.js';
import { durationMs } from '../schema/duration.js';
import type { Toleration } from '../schema/pod-fields.js';
import { replicaCounts } from '../schema/spec.js';
import { apiImage, PLACEHOLDER_IMAGE } from './builders.js';

/*
 * What this installation allows an experiment, from the operator's configuration, checked before
 * anything is created: the CRD cannot know an installation's limits. A refusal fails the run as
 * InvalidSpec with the field, the figure and the knob that sets the limit. `loadlab render` and
 * `loadlab run` check the same with the defaults below, so they refuse what a default installation
 * refuses.
 */

/** The part of the operator's configuration (config.ts) that says what experiments may do. */
export interface Policy {
  /** The most database connections one experiment's role may hold (its CONNECTION LIMIT). */
  databaseConnectionsPerExperiment: number;
  maxRequestsPerSecondPerGenerator: number;
  maxPreloadRows: number;
  /** Exact references, or prefixes ending in *; unset: only the installation's API image. */
  allowedApiImages?: readonly string[];
  /** Replaces spec.target.image when that is the schema's placeholder default (see builders.ts). */
  apiImage?: string;
  /** The load generators' nodeSelector and tolerations: the default, and the most an experiment may ask for. */
  generatorPlacement?: Placement;
}

export interface Placement {
  nodeSelector?: Record<string, string> | undefined;
  tolerations?: Toleration[] | undefined;
}

/** The limits of an installation that changes none of them (config.ts takes its defaults from here). */
export const DEFAULT_POLICY = {
  databaseConnectionsPerExperiment: 150,
  /*
   * One generator pod sends at most this many requests per second: the loadlab driver measured
   * 13,000 a second on two cores here, a k6 runner fewer; more than this from one pod measures
   * the generator, not the API. Raise spec.generator.parallelism instead.
   */
  maxRequestsPerSecondPerGenerator: 20_000,
  /** Rows the preload may write into the shared database: 100,000,000 is ~10 GB of measurements. */
  maxPreloadRows: 100_000_000,
} as const;

/** What the CLI says with a refusal: it checks a default installation's limits. */
export const DEFAULT_POLICY_NOTE = 'an installation that changes none of its limits refuses this; yours may set others, see README: security model';

/** Connections the operator itself opens as the experiment's role (data preparation, migration checks). */
const OPERATOR_CONNECTIONS = 4;
/** Each API process's control connection: readiness pings and LISTEN (api/src/db/control-connection.ts). */
const CONTROL_CONNECTIONS = 1;

/**
 * Database connections an experiment's role may hold at most: its API replicas' pools and each
 * one's control connection (readiness pings and the command index's LISTEN, outside the request
 * pool), plus the pods a rolling update adds for a while (the Deployment's default maxSurge, 25% rounded up), plus the operator's
 * own. The role gets this as its CONNECTION LIMIT, so one experiment cannot take
 * the shared database's every connection whatever its pods do.
 */
export function experimentConnectionLimit(experiment: LoadExperiment): number {
  const { dbPoolSize } = experiment.spec.target;
  const replicas = Math.max(...replicaCounts(experiment.spec));
  return (replicas + Math.ceil(replicas / 4)) * (dbPoolSize + CONTROL_CONNECTIONS) + OPERATOR_CONNECTIONS;
}

/** Rows the preload writes: one measurement per device per report interval over preloadDays. */
export function preloadRows(experiment: LoadExperiment): number {
  const { devices, reportInterval } = experiment.spec.fleet;
  return devices * Math.ceil((experiment.spec.database.preloadDays * 86_400_000) / durationMs(reportInterval));
}

const count = (value: number) => Math.round(value).toLocaleString('en-US');

/** What bounds the load and the data an experiment puts on shared things, wherever it runs. */
export function loadProblems(experiment: LoadExperiment, plan: TrafficPlan, policy: Policy): string[] {
  const problems: string[] = [];
  const connections = experimentConnectionLimit(experiment);
  if (connections > policy.databaseConnectionsPerExperiment) {
    const { dbPoolSize } = experiment.spec.target;
    const replicas = Math.max(...replicaCounts(experiment.spec));
    const where = experiment.spec.scaling ? `spec.scaling: its largest count, ${replicas} replicas,` : `spec.target: ${replicas} replicas`;
    problems.push(
      `${where} x dbPoolSize ${dbPoolSize} need up to ${connections} database connections (with each pod's control connection, a rolling update's extra pods and the operator's ${OPERATOR_CONNECTIONS}); ` +
        `this installation allows ${policy.databaseConnectionsPerExperiment} per experiment (the operator's DATABASE_CONNECTIONS_PER_EXPERIMENT): lower replicas or dbPoolSize`,
    );
  }
  const offered = plan.totals.measurements + plan.totals.command;
  if (offered < 1) {
    problems.push(
      `spec.load: the plan offers ${offered.toPrecision(2)} requests in all (${plan.peakDevices} devices at most, reporting every ${experiment.spec.fleet.reportInterval} and polling every ${experiment.spec.fleet.pollInterval}, for ${Math.round(plan.durationS)} s): no load; ` +
        'bring more devices online, shorten the intervals or lengthen the stages',
    );
  }
  const peakRps = plan.peakDevices * (1 / plan.intervalS.measurements + 1 / plan.intervalS.command);
  const { parallelism } = experiment.spec.generator;
  const perGenerator = peakRps / parallelism;
  if (perGenerator > policy.maxRequestsPerSecondPerGenerator) {
    const needed = Math.ceil(peakRps / policy.maxRequestsPerSecondPerGenerator);
    problems.push(
      `spec.generator.parallelism: at its peak the plan offers ${count(peakRps)} requests/s, ${count(perGenerator)} per generator pod with parallelism ${parallelism}; ` +
        `this installation allows ${count(policy.maxRequestsPerSecondPerGenerator)} per pod (the operator's MAX_REQUESTS_PER_SECOND_PER_GENERATOR): set parallelism to at least ${needed}` +
        (needed > 64 ? ' (at most 64: lower the fleet or lengthen the intervals)' : ''),
    );
  }
  const rows = preloadRows(experiment);
  if (rows > policy.maxPreloadRows) {
    problems.push(
      `spec.database.preloadDays: ${experiment.spec.database.preloadDays} day${experiment.spec.database.preloadDays === 1 ? '' : 's'} for ${count(experiment.spec.fleet.devices)} devices reporting every ${experiment.spec.fleet.reportInterval} preload ${count(rows)} rows; ` +
        `this installation allows ${count(policy.maxPreloadRows)} (the operator's MAX_PRELOAD_ROWS): preload fewer days`,
    );
  }
  return problems;
}

/** Whether an image is one the installation allows: an exact reference, or a prefix written with a trailing *. */
function imageAllowed(image: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) => (entry.endsWith('*') ? image.startsWith(entry.slice(0, -1)) : image === entry));
}

/** The images allowed when ALLOWED_API_IMAGES is not set: the installation's own API image. */
export function allowedApiImages(policy: Pick<Policy, 'allowedApiImages' | 'apiImage'>): readonly string[] {
  return policy.allowedApiImages ?? [policy.apiImage ?? PLACEHOLDER_IMAGE];
}

const sameToleration = (a: Toleration, b: Toleration) => JSON.stringify(normalToleration(a)) === JSON.stringify(normalToleration(b));

/** A toleration with its defaults written out, so {key: k} and {key: k, operator: Equal} compare equal. */
function normalToleration(toleration: Toleration): Record<string, unknown> {
  const { key = '', operator = 'Equal', value = '', effect = '', tolerationSeconds } = toleration;
  return { key, operator, value, effect, tolerationSeconds };
}

/** What only a cluster runs: the API's image and where the generator pods may go. */
export function clusterProblems(experiment: LoadExperiment, policy: Policy): string[] {
  const problems: string[] = [];
  const image = apiImage(experiment, policy.apiImage);
  const allowed = allowedApiImages(policy);
  if (!imageAllowed(image, allowed)) {
    problems.push(
      `spec.target.image: ${image} is not an image this installation runs (the operator's ALLOWED_API_IMAGES: ${allowed.join(', ')}); ` +
        'leave spec.target.image out to run the installation\'s API, or ask its administrator to allow this image',
    );
  }
  const { nodeSelector, tolerations } = experiment.spec.generator;
  const installation = policy.generatorPlacement;
  for (const [key, value] of Object.entries(installation?.nodeSelector ?? {})) {
    if (nodeSelector?.[key] !== undefined && nodeSelector[key] !== value) {
      problems.push(
        `spec.generator.nodeSelector: ${key}: ${nodeSelector[key]} would take the load generators off this installation's nodes (its GENERATOR_PLACEMENT selects ${key}: ${value}); ` +
          'leave the key out (it is added) or give the same value',
      );
    }
  }
  const allowedTolerations = installation?.tolerations ?? [];
  (tolerations ?? []).forEach((toleration, index) => {
    if (!allowedTolerations.some((allowedOne) => sameToleration(toleration, allowedOne))) {
      problems.push(
        `spec.generator.tolerations[${index}]: ${JSON.stringify(toleration)} is not one this installation allows its load generators ` +
          `(its GENERATOR_PLACEMENT tolerates ${allowedTolerations.length === 0 ? 'nothing' : allowedTolerations.map((t) => JSON.stringify(t)).join(', ')}): leave tolerations out to get the installation's`,
      );
    }
  });
  return problems;
}

/** Why this installation refuses the experiment (empty: allowed). */
export function policyProblems(experiment: LoadExperiment, plan: TrafficPlan, policy: Policy): string[] {
  return [...loadProblems(experiment, plan, policy), ...clusterProblems(experiment, policy)];
}
