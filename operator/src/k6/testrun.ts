import type { LoadExperiment } from '../schema/load-experiment.js';
import { SCRIPT_FILE, type RenderedScript } from './bundle.js';
import type { PhaseRange } from '../traffic/schedule.js';
import { defaultApiUrl } from '../contract/api-environment.js';
import { ANNOTATIONS, labelsFor, phasesAnnotation, testRunName } from '../contract/names.js';
import { namespaceOf, resourceRequirements, restrictedContainerSecurityContext, restrictedPodSecurityContext, runChildMetadata, secretEnvVar, type Built, type RunIdentity, type SecretValue } from '../contract/objects.js';
import type { KubernetesObject, V1ConfigMap, V1EnvVar, V1PodSecurityContext, V1ResourceRequirements, V1SecurityContext, V1Toleration, V1Volume, V1VolumeMount } from '@kubernetes/client-node';

/*
 * The k6-operator objects of one run: the script's ConfigMap and the TestRun (k6.io/v1alpha1, as
 * in grafana/k6-operator v1.6.0's CRD). Pure builders: same input, same object, so a reconciler
 * can apply them again and again.
 *
 * Names: <experiment>-<run>-k6 for both (different kinds, so no clash). k6-operator names its own
 * children after the TestRun: Jobs <name>-initializer / -starter / -<n> and Services
 * <name>-service-<n>, which must stay DNS labels of at most 63 characters; so the TestRun's name
 * is kept to 51 (63 - "-initializer"), shortening the experiment part and adding a hash if needed.
 */

export const TESTRUN_API_VERSION = 'k6.io/v1alpha1';
export const TESTRUN_KIND = 'TestRun';

/**
 * Where k6 remote-writes its metrics: kube-prometheus-stack's Prometheus (the `prometheus-operated`
 * Service in `monitoring`), which needs --web.enable-remote-write-receiver and, for k6's native
 * histograms, --enable-feature=native-histograms.
 */
export const DEFAULT_REMOTE_WRITE_URL = 'http://prometheus-operated.monitoring.svc:9090/api/v1/write';

/** k6's image runs as this user (grafana/k6: `adduser -u 12345 k6`); set numerically so runAsNonRoot can be verified. */
export const K6_IMAGE_UID = 12345;

export interface TestRunOptions extends RunIdentity {
  /** The API's TOKEN_SECRET: the runners mint device tokens with it (the operator: a reference to the API's Secret). */
  tokenSecret: SecretValue;
  /** Default: defaultApiUrl(experiment) in the run's namespace. */
  apiUrl?: string;
  /** Default: DEFAULT_REMOTE_WRITE_URL. */
  remoteWriteUrl?: string;
  /** Default: k6-operator's own default runner image. */
  runnerImage?: string;
  /** The phases the script runs, for the loadlab.dev/phases annotation (unset: no annotation). */
  phaseRange?: PhaseRange;
  /**
   * k6-operator's `cleanup: post` deletes the TestRun, its Jobs and pods as soon as the run
   * finishes. Default: `post` when spec.cleanup is `always` (the one policy it can express);
   * `none` leaves cleanup to the operator, which must then read the TestRun's outcome first.
   */
  k6Cleanup?: 'post' | 'none';
}


function metadataFor(experiment: LoadExperiment, identity: RunIdentity, component: string, annotations?: Record<string, string>) {
  return runChildMetadata(experiment, identity, testRunName(experiment, identity.runId), component, annotations);
}

/** The ConfigMap holding the run's script under SCRIPT_FILE. */
export function buildScriptConfigMap(experiment: LoadExperiment, script: RenderedScript, owner: RunIdentity): Built<V1ConfigMap> {
  const bytes = Buffer.byteLength(script.source, 'utf8');
  if (bytes > 1_000_000) {
    throw new RangeError(`the k6 script is ${bytes} bytes, more than a ConfigMap holds (1 MiB with its metadata)`);
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadataFor(experiment, owner, 'load-generator-script', {
      [ANNOTATIONS.scriptSha256]: script.sha256,
      [ANNOTATIONS.phases]: phasesAnnotation(script.config.range),
    }),
    data: { [SCRIPT_FILE]: script.source },
  };
}

export function buildTestRun(experiment: LoadExperiment, options: TestRunOptions): TestRunManifest {
  const { generator, cleanup } = experiment.spec;
  const namespace = namespaceOf(experiment, options);
  const name = testRunName(experiment, options.runId);
  const experimentId = `${namespace}/${experiment.metadata.name}`;
  const parallelism = generator.parallelism;
  const k6Cleanup = options.k6Cleanup ?? (cleanup === 'always' ? 'post' : 'none');
  const apiUrl = options.apiUrl ?? defaultApiUrl({ ...experiment, metadata: { ...experiment.metadata, namespace } });

  const env = [
    { name: 'LOADLAB_RUN_ID', value: options.runId },
    { name: 'LOADLAB_API_URL', value: apiUrl },
    secretEnvVar('LOADLAB_TOKEN_SECRET', options.tokenSecret),
    { name: 'K6_PROMETHEUS_RW_SERVER_URL', value: options.remoteWriteUrl ?? DEFAULT_REMOTE_WRITE_URL },
    // Native histograms: percentiles stay exact when several runners' series are summed.
    { name: 'K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM', value: 'true' },
    { name: 'K6_PROMETHEUS_RW_PUSH_INTERVAL', value: '5s' },
    { name: 'K6_PROMETHEUS_RW_STALE_MARKERS', value: 'true' },
    { name: 'K6_NO_USAGE_REPORT', value: 'true' },
  ];
  const runnerLabels = labelsFor(experiment, options.runId, 'load-generator');
  // A fresh object per pod: shared references would print as YAML anchors.
  const scratch = () => ({ volumes: [{ name: 'tmp', emptyDir: {} }], volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] });

  const spec: TestRunSpec = {
    parallelism,
    // One runner per node: the seed learned that load generators sharing a node skew the results.
    ...(parallelism > 1 ? { separate: true } : {}),
    script: { configMap: { name, file: SCRIPT_FILE } },
    arguments: `--out experimental-prometheus-rw --tag experiment=${experimentId} --tag run=${options.runId}`,
    ...(k6Cleanup === 'post' ? { cleanup: 'post' } : {}),
    runner: {
      ...(options.runnerImage ? { image: options.runnerImage } : {}),
      metadata: { labels: runnerLabels },
      env,
      ...(generator.resources ? { resources: resourceRequirements(generator.resources) } : {}),
      ...(generator.nodeSelector ? { nodeSelector: generator.nodeSelector } : {}),
      ...(generator.tolerations ? { tolerations: generator.tolerations } : {}),
      ...restricted(K6_IMAGE_UID),
      ...scratch(),
    },
    // The initializer runs `k6 archive`/`k6 inspect` on the script (it writes to /tmp), the
    // starter resumes the paused runners with curl; both get Pod Security "restricted" too.
    initializer: {
      ...(options.runnerImage ? { image: options.runnerImage } : {}),
      metadata: { labels: labelsFor(experiment, options.runId, 'load-generator-initializer') },
      ...(generator.nodeSelector ? { nodeSelector: generator.nodeSelector } : {}),
      ...(generator.tolerations ? { tolerations: generator.tolerations } : {}),
      ...restricted(K6_IMAGE_UID),
      ...scratch(),
    },
    starter: {
      metadata: { labels: labelsFor(experiment, options.runId, 'load-generator-starter') },
      ...restricted(65534),
    },
  };

  return {
    apiVersion: TESTRUN_API_VERSION,
    kind: TESTRUN_KIND,
    metadata: metadataFor(experiment, options, 'load-generator', options.phaseRange ? { [ANNOTATIONS.phases]: phasesAnnotation(options.phaseRange) } : undefined),
    spec,
  };
}

/** The fields of k6-operator v1.6's TestRun spec this project sets (its CRD is the reference). */
export interface TestRunSpec {
  parallelism: number;
  separate?: boolean;
  script: { configMap: { name: string; file: string } };
  arguments: string;
  cleanup?: 'post';
  runner: TestRunPod & { env: V1EnvVar[]; resources?: V1ResourceRequirements; image?: string };
  initializer: TestRunPod & { image?: string };
  starter: Pick<TestRunPod, 'metadata' | 'securityContext' | 'containerSecurityContext'>;
}

interface TestRunPod {
  metadata: { labels: Record<string, string> };
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  securityContext: V1PodSecurityContext;
  containerSecurityContext: V1SecurityContext;
  volumes: V1Volume[];
  volumeMounts: V1VolumeMount[];
}

export type TestRunManifest = Built<KubernetesObject> & { spec: TestRunSpec };

/** Pod Security "restricted" in k6-operator's fields for a pod of the TestRun. */
function restricted(uid: number) {
  return { securityContext: restrictedPodSecurityContext(uid), containerSecurityContext: restrictedContainerSecurityContext() };
}
