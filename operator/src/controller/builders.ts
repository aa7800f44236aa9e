import { createHash } from 'node:crypto';
import type { V1Container, V1Deployment, V1EnvVar, V1Secret, V1Service } from '@kubernetes/client-node';
import { ownerReference, resourceRequirements, secretEnvVar, type Built } from '../contract/objects.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { targetSchema } from '../schema/spec.js';
import { apiName, labelsFor } from '../contract/names.js';
import { API_PORT, apiEnvironment } from '../contract/api-environment.js';

/*
 * Pure builders of the experiment's system under test: the API Deployment and its Service. Same
 * input, same object, so the reconciler can compare what it wants (the spec-hash annotation) with
 * what it finds and apply only on a difference.
 */

export const SPEC_HASH_ANNOTATION = 'loadlab.dev/spec-hash';
/** The API container's name: the analysis' cAdvisor queries select it (DEFAULT_CONTAINERS.api). */
export const API_CONTAINER = 'api';
/** The node image's `node` user: numeric, so the kubelet can verify runAsNonRoot. */
export const API_UID = 1000;
/** The placeholder the schema defaults spec.target.image to; the operator's API_IMAGE replaces it. */
export const PLACEHOLDER_IMAGE = targetSchema.parse({}).image;

export interface ApiBuildOptions {
  /** The experiment object's uid: owns the objects (garbage-collected with it). */
  ownerUid: string;
  runId: string;
  /** The experiment's own connection: its role, its schema first on the search_path. */
  databaseUrl: string;
  tokenSecret: string;
  /** The operator's API_IMAGE, used when spec.target.image is the placeholder default. */
  defaultImage?: string;
}

/** Selects the experiment's API pods; never includes the run (a Deployment's selector is immutable). */
export function apiSelector(experiment: LoadExperiment): Record<string, string> {
  const labels = labelsFor(experiment, 'x', 'api');
  return {
    'app.kubernetes.io/instance': labels['app.kubernetes.io/instance']!,
    'app.kubernetes.io/component': 'api',
    'loadlab.dev/experiment': experiment.metadata.name,
  };
}

export function apiImage(experiment: LoadExperiment, defaultImage?: string): string {
  const image = experiment.spec.target.image;
  return image === PLACEHOLDER_IMAGE && defaultImage ? defaultImage : image;
}

/** The keys of the API's Secret: the two variables that carry secrets. */
export const API_SECRET_KEYS = ['DATABASE_URL', 'TOKEN_SECRET'] as const;

/**
 * The Secret the API's pods (and the run's generators) read DATABASE_URL and TOKEN_SECRET from:
 * <experiment>-api-<hash of its content>. Named after its content and immutable, so the operator
 * only ever creates it (RBAC: create on secrets, never read or update) and a changed password or
 * a new run's token secret is a new Secret, which the Deployment's template then names (a rollout).
 * Owned by the experiment: they go with it.
 */
export function apiSecretName(experiment: LoadExperiment, options: Pick<ApiBuildOptions, 'databaseUrl' | 'tokenSecret'>): string {
  const hash = createHash('sha256').update(`${options.databaseUrl}\n${options.tokenSecret}`).digest('hex').slice(0, 10);
  return `${apiName(experiment.metadata.name)}-${hash}`;
}

export function buildApiSecret(experiment: LoadExperiment, options: Pick<ApiBuildOptions, 'ownerUid' | 'runId' | 'databaseUrl' | 'tokenSecret'>): Built<V1Secret> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: apiSecretName(experiment, options),
      namespace: experiment.metadata.namespace ?? 'default',
      labels: labelsFor(experiment, options.runId, 'api'),
      ownerReferences: [ownerReference(experiment, options.ownerUid)],
    },
    type: 'Opaque',
    immutable: true,
    stringData: { DATABASE_URL: options.databaseUrl, TOKEN_SECRET: options.tokenSecret },
  };
}

/**
 * The API's environment in a pod: the spec's knobs (local/api-processes.ts), listening on all
 * interfaces; the secrets by reference to the API's Secret, never as values.
 */
export function apiPodEnvironment(experiment: LoadExperiment, options: Pick<ApiBuildOptions, 'databaseUrl' | 'tokenSecret'>): V1EnvVar[] {
  const env = { ...apiEnvironment(experiment, options.databaseUrl, options.tokenSecret), HOST: '0.0.0.0', PORT: String(API_PORT) };
  const secretName = apiSecretName(experiment, options);
  return Object.entries(env)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => ((API_SECRET_KEYS as readonly string[]).includes(name) ? secretEnvVar(name, { secretName, key: name }) : { name, value }));
}

export function buildApiDeployment(experiment: LoadExperiment, options: ApiBuildOptions): Built<V1Deployment> {
  const { target } = experiment.spec;
  const name = apiName(experiment.metadata.name);
  const namespace = experiment.metadata.namespace ?? 'default';
  const podLabels = labelsFor(experiment, options.runId, 'api');
  const container: V1Container = {
    name: API_CONTAINER,
    image: apiImage(experiment, options.defaultImage),
    ports: [{ name: 'http', containerPort: API_PORT, protocol: 'TCP' }],
    env: apiPodEnvironment(experiment, options),
    ...(target.resources ? { resources: resourceRequirements(target.resources) } : {}),
    // /readyz checks the database: a replica joins the Service only once it can serve.
    readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 6 },
    // Migrations run at start; give them time before liveness counts.
    startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, failureThreshold: 90 },
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true, runAsNonRoot: true },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
  };
  const spec = {
    replicas: target.replicas,
    revisionHistoryLimit: 2,
    selector: { matchLabels: apiSelector(experiment) },
    template: {
      metadata: { labels: podLabels },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: 30,
        securityContext: { runAsNonRoot: true, runAsUser: API_UID, runAsGroup: API_UID, fsGroup: API_UID, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [container],
        volumes: [{ name: 'tmp', emptyDir: {} }],
      },
    },
  };
  const hash = specHash(spec);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace,
      labels: podLabels,
      annotations: { [SPEC_HASH_ANNOTATION]: hash },
      ownerReferences: [ownerReference(experiment, options.ownerUid)],
    },
    spec,
  };
}

export function buildApiService(experiment: LoadExperiment, options: Pick<ApiBuildOptions, 'ownerUid' | 'runId'>): Built<V1Service> {
  const name = apiName(experiment.metadata.name);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: experiment.metadata.namespace ?? 'default',
      labels: labelsFor(experiment, options.runId, 'api'),
      ownerReferences: [ownerReference(experiment, options.ownerUid)],
    },
    spec: {
      type: 'ClusterIP',
      selector: apiSelector(experiment),
      ports: [{ name: 'http', port: API_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** A short digest of a spec, stable across key order. */
export function specHash(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${stableJson((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Whether a Deployment has rolled out: the same test as `kubectl rollout status` (the controller
 * saw this generation, every replica is updated and available, no old replica is left).
 */
export function deploymentAvailable(deployment: { metadata?: { generation?: number }; spec?: { replicas?: number }; status?: DeploymentStatus } | undefined): { available: boolean; message: string } {
  if (!deployment) return { available: false, message: 'the API Deployment does not exist yet' };
  const status = deployment.status ?? {};
  const wanted = deployment.spec?.replicas ?? 1;
  if ((status.observedGeneration ?? 0) < (deployment.metadata?.generation ?? 1)) {
    return { available: false, message: 'waiting for the Deployment controller to observe the new spec' };
  }
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  if (updated < wanted) return { available: false, message: `${updated} of ${wanted} API replicas updated` };
  if (total > updated) return { available: false, message: `${total - updated} old API replicas are still terminating` };
  if (available < updated) return { available: false, message: `${available} of ${updated} API replicas available` };
  const condition = status.conditions?.find((entry) => entry.type === 'Available');
  if (condition && condition.status !== 'True') return { available: false, message: condition.message ?? 'the Deployment is not Available' };
  return { available: true, message: `${available} API replicas available` };
}

export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  availableReplicas?: number;
  readyReplicas?: number;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}
