import { createHash } from 'node:crypto';
import type { V1Affinity, V1ConfigMap, V1Job } from '@kubernetes/client-node';
import { defaultApiUrl } from '../contract/api-environment.js';
import { ANNOTATIONS, DRIVER_CONTAINER, driverJobName, labelsFor, phasesAnnotation, LABELS } from '../contract/names.js';
import { namespaceOf, resourceRequirements, restrictedContainerSecurityContext, restrictedPodSecurityContext, runChildMetadata, secretEnvVar, type Built, type RunIdentity, type SecretValue } from '../contract/objects.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { resolvePhaseRange } from '../traffic/phases.js';
import type { TrafficPlan } from '../traffic/plan.js';
import type { PhaseRange } from '../traffic/schedule.js';

/*
 * The loadlab engine's objects of one unit of a run: a ConfigMap with the experiment, and a Job of
 * `spec.generator.parallelism` pods on the operator's image, each running `loadlab drive` (the
 * load driver of local mode, cli/drive-command.ts) on its own slice of the unit's schedule
 * (traffic/runner-slice.ts). Pure builders: same input, same objects.
 *
 * - An Indexed Job: Kubernetes gives each pod its index (JOB_COMPLETION_INDEX), which is the
 *   runner's index; completions = parallelism, so every slice runs exactly once.
 * - backoffLimit 0: a runner that fails is not restarted, because a new pod would count its slice
 *   from zero and could not know what the first one sent; the Job fails, and the run with it,
 *   saying why.
 * - All runners start their schedule at one time chosen by the operator (--start-at, also the
 *   loadlab.dev/start-at annotation the operator reads back as the unit's start): long enough
 *   after the Job's creation for the pods to start. A runner that starts later joins the schedule
 *   where it is, and what it missed is counted as dropped, so the analysis sees it.
 * - activeDeadlineSeconds bounds the Job: the start delay, the unit, the last answers and the
 *   metrics' linger, and a minute to spare.
 * - Placement as k6-operator places TestRun runners: the generator's nodeSelector and tolerations
 *   (the operator fills in GENERATOR_PLACEMENT), and with several runners one per node (k6's
 *   `separate: true`), so generators never share a node's CPU.
 * - Pod Security "restricted", a read-only root filesystem with /tmp an emptyDir, no service
 *   account token (the driver talks to the API only), the experiment mounted read-only.
 * - The pods carry the run's labels, as the TestRun's runners do; Prometheus scrapes their
 *   metrics port through the load-generator PodMonitor (cdk8s/src/charts/monitoring.ts), which
 *   labels the series experiment, run and job="driver", as local mode's Prometheus does.
 */

/** The image `loadlab drive` runs from: the operator's own (operator/Dockerfile), as scripts/cluster.sh names it. */
export const DEFAULT_DRIVER_IMAGE = 'loadlab/operator:dev';
/** The image's user (operator/Dockerfile: USER 1000:1000, the node image's `node`), numeric so runAsNonRoot can be verified. */
export const OPERATOR_IMAGE_UID = 1000;
/** Where `loadlab drive` serves /metrics in a driver pod, and the port's name the PodMonitor selects. */
export const DRIVER_METRICS_PORT = 8080;
export const DRIVER_METRICS_PORT_NAME = 'metrics';
/** The ConfigMap's mount and the file holding the experiment. */
export const DRIVER_CONFIG_DIR = '/etc/loadlab';
export const EXPERIMENT_FILE = 'experiment.json';
/** The runner's environment (besides JOB_COMPLETION_INDEX, which Kubernetes sets in an Indexed Job). */
export const DRIVER_ENV = { apiUrl: 'LOADLAB_API_URL', tokenSecret: 'LOADLAB_TOKEN_SECRET', runnerIndex: 'JOB_COMPLETION_INDEX' } as const;
/** After the schedule, the driver waits for in-flight answers: its request timeout (10 s) and 5 s of grace. */
const DRIVER_END_GRACE_S = 15;
const DEADLINE_SPARE_S = 60;

export interface DriverJobOptions extends RunIdentity {
  /** The operator's image (`loadlab` is its entry point). */
  image: string;
  plan: TrafficPlan;
  phaseRange: PhaseRange;
  /** The API's TOKEN_SECRET: the runners mint device tokens with it (the operator: a reference to the API's Secret). */
  tokenSecret: SecretValue;
  /**
   * When every runner starts its slice of the schedule (RFC 3339), and how long after the Job's
   * creation that is (part of the Job's deadline). The operator always sets it; without it (a Job
   * rendered to apply by hand) each runner starts when its pod does, a few seconds apart.
   */
  start?: { at: string; delayS: number };
  /** How long each runner keeps serving /metrics after its schedule, for Prometheus' last scrape. */
  metricsLingerS: number;
  /** Default: defaultApiUrl(experiment) in the run's namespace. */
  apiUrl?: string;
}

/** A short digest of the plan: `loadlab drive` refuses to run a plan its own code builds differently (another version's image). */
export function planDigest(plan: TrafficPlan): string {
  return createHash('sha256').update(JSON.stringify(plan)).digest('hex').slice(0, 16);
}

/** The experiment as the driver pods read it: what was applied, with the schema's defaults filled in. */
export function experimentDocument(experiment: LoadExperiment, namespace: string): string {
  const { apiVersion, kind, metadata, spec } = experiment;
  return `${JSON.stringify({ apiVersion, kind, metadata: { name: metadata.name, namespace }, spec }, null, 2)}\n`;
}

/** The ConfigMap the Job mounts at DRIVER_CONFIG_DIR: the experiment, under EXPERIMENT_FILE. */
export function buildDriverConfigMap(experiment: LoadExperiment, identity: RunIdentity): Built<V1ConfigMap> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: runChildMetadata(experiment, identity, driverJobName(experiment, identity.runId), 'load-generator-config'),
    data: { [EXPERIMENT_FILE]: experimentDocument(experiment, namespaceOf(experiment, identity)) },
  };
}

/** The arguments of `loadlab drive` for this unit (the runner's index comes from JOB_COMPLETION_INDEX). */
export function driveArguments(options: Pick<DriverJobOptions, 'plan' | 'phaseRange' | 'start' | 'metricsLingerS'> & { runners: number }): string[] {
  const range = resolvePhaseRange(options.plan, options.phaseRange);
  return [
    'drive',
    '--experiment', `${DRIVER_CONFIG_DIR}/${EXPERIMENT_FILE}`,
    '--phases', phasesAnnotation(range),
    '--runners', String(options.runners),
    ...(options.start ? ['--start-at', options.start.at] : []),
    '--metrics-port', String(DRIVER_METRICS_PORT),
    '--linger', String(options.metricsLingerS),
    '--plan-digest', planDigest(options.plan),
  ];
}

export function buildDriverJob(experiment: LoadExperiment, options: DriverJobOptions): Built<V1Job> & { spec: NonNullable<V1Job['spec']> } {
  const { generator } = experiment.spec;
  const namespace = namespaceOf(experiment, options);
  const name = driverJobName(experiment, options.runId);
  const range = resolvePhaseRange(options.plan, options.phaseRange);
  const runners = generator.parallelism;
  const durationS = options.plan.phases[range.to - 1]!.endS - options.plan.phases[range.from]!.startS;
  const apiUrl = options.apiUrl ?? defaultApiUrl({ ...experiment, metadata: { ...experiment.metadata, namespace } });
  const podLabels = labelsFor(experiment, options.runId, 'load-generator');
  if (options.start && Number.isNaN(Date.parse(options.start.at))) throw new RangeError(`start.at must be an RFC 3339 time, got "${options.start.at}"`);

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: runChildMetadata(experiment, options, name, 'load-generator', {
      [ANNOTATIONS.phases]: phasesAnnotation(range),
      ...(options.start ? { [ANNOTATIONS.startAt]: options.start.at } : {}),
    }),
    spec: {
      completionMode: 'Indexed',
      completions: runners,
      parallelism: runners,
      backoffLimit: 0,
      activeDeadlineSeconds: Math.ceil((options.start?.delayS ?? 0) + durationS + DRIVER_END_GRACE_S + options.metricsLingerS + DEADLINE_SPARE_S),
      template: {
        metadata: { labels: podLabels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: restrictedPodSecurityContext(OPERATOR_IMAGE_UID),
          ...(generator.nodeSelector ? { nodeSelector: generator.nodeSelector } : {}),
          ...(generator.tolerations ? { tolerations: generator.tolerations } : {}),
          ...(runners > 1 ? { affinity: onePerNode(podLabels) } : {}),
          containers: [
            {
              name: DRIVER_CONTAINER,
              image: options.image,
              imagePullPolicy: 'IfNotPresent',
              args: driveArguments({ ...options, runners }),
              env: [
                { name: DRIVER_ENV.apiUrl, value: apiUrl },
                secretEnvVar(DRIVER_ENV.tokenSecret, options.tokenSecret),
              ],
              ports: [{ name: DRIVER_METRICS_PORT_NAME, containerPort: DRIVER_METRICS_PORT, protocol: 'TCP' }],
              ...(generator.resources ? { resources: resourceRequirements(generator.resources) } : {}),
              securityContext: restrictedContainerSecurityContext(),
              volumeMounts: [
                { name: 'config', mountPath: DRIVER_CONFIG_DIR, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name } },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}

/** One runner per node, as k6-operator's `separate: true` does: this unit's runners repel each other by hostname. */
function onePerNode(podLabels: Record<string, string>): V1Affinity {
  const matchLabels = { [LABELS.run]: podLabels[LABELS.run]!, [LABELS.experiment]: podLabels[LABELS.experiment]!, 'app.kubernetes.io/component': 'load-generator' };
  return { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels }, topologyKey: 'kubernetes.io/hostname' }] } };
}
