import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { fetch as kubeFetch } from 'undici';
import { z } from 'zod';
import type { AnalysisResult } from '../analysis/analyze.js';
import { PrometheusClient } from '../analysis/prometheus-client.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { analyseRecordedRun } from './analysis-settings.js';
import { operatorEnvSchema } from './config.js';
import type { ExperimentObject } from './context.js';
import { isNotFound, KubeClient, KubeError, RESOURCES } from './kube.js';
import { parseSpec } from './parse-spec.js';
import { atStudyCount } from './scaling-step.js';
import type { Status } from './context.js';
import type { Checkpoint } from './run-units.js';

/*
 * A cluster run analysed again from outside the cluster, exactly as the operator analysed it: the
 * LoadExperiment's spec and status timeline from the apiserver, the analysis settings (step, scrape
 * interval, database selectors, Prometheus) from the operator's own Deployment, and Prometheus
 * reached through the Kubernetes API's service proxy with the kubeconfig's credentials, so no
 * port-forward is needed. `loadlab report` writes its report; `loadlab compare` compares it.
 */

export const OPERATOR_DEPLOYMENT = 'loadlab-system/loadlab-operator';

/** Something the user can fix (no such experiment, a run still going): exit 2 rather than 1. */
export class ClusterRunInputError extends Error {
  override name = 'ClusterRunInputError';
}

export interface ClusterRunOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  /** Prometheus' URL as reachable from here; default: the operator's PROMETHEUS_URL, through the service proxy. */
  prometheusUrl?: string;
  /** The operator's Deployment, namespace/name (default loadlab-system/loadlab-operator). */
  operator?: string;
  say?: (line: string) => void;
}

export interface ClusterRun {
  experiment: LoadExperiment;
  runId: string;
  analysis: AnalysisResult;
  /** Where Prometheus was read, for people. */
  prometheus: string;
}

/** The variables of the operator's configuration the analysis reads, validated as the operator does. */
const { shape } = operatorEnvSchema;
const analysisEnvSchema = z.object({
  PROMETHEUS_URL: shape.PROMETHEUS_URL.optional(),
  ANALYSIS_STEP_SECONDS: shape.ANALYSIS_STEP_SECONDS,
  SCRAPE_INTERVAL_SECONDS: shape.SCRAPE_INTERVAL_SECONDS,
  DATABASE_METRICS_SELECTOR: shape.DATABASE_METRICS_SELECTOR,
  DATABASE_RESOURCE_SELECTOR: shape.DATABASE_RESOURCE_SELECTOR,
});

export async function analyseClusterRun(options: ClusterRunOptions): Promise<ClusterRun> {
  const say = options.say ?? (() => {});
  const client = new KubeClient(options.kubeConfig);
  const context = options.kubeConfig.getCurrentContext();
  let object: ExperimentObject;
  try {
    object = await client.get<ExperimentObject>(RESOURCES.loadExperiments, options.namespace, options.name);
  } catch (error) {
    if (isNotFound(error)) throw new ClusterRunInputError(`no LoadExperiment ${options.namespace}/${options.name} in the kubeconfig context ${context}`);
    if (error instanceof KubeError) throw error;
    const cause = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    throw new Error(`cannot reach the Kubernetes API at ${options.kubeConfig.getCurrentCluster()?.server ?? '?'} (kubeconfig context ${context}): ${cause}`);
  }
  const parsed = parseSpec(object);
  if (!parsed.ok) throw new ClusterRunInputError(`LoadExperiment ${options.namespace}/${options.name} has an invalid spec: ${parsed.message}`);
  const status = (object.status ?? {}) as { phase?: string; runId?: string; timeline?: Checkpoint[] };
  const timeline = status.timeline ?? [];
  if (!status.runId || timeline.length === 0 || timeline.some((checkpoint) => !checkpoint.startTime)) {
    throw new ClusterRunInputError(`LoadExperiment ${options.namespace}/${options.name} has no run to report yet (phase ${status.phase ?? 'Pending'}): its status has no timeline`);
  }
  if (timeline.some((checkpoint) => !checkpoint.endTime)) {
    throw new ClusterRunInputError(`LoadExperiment ${options.namespace}/${options.name} is still running (phase ${status.phase ?? '?'}): report it once its load has ended`);
  }

  const settings = await operatorSettings(client, options.operator ?? OPERATOR_DEPLOYMENT, say);
  const prometheus = prometheusClient(options, settings.PROMETHEUS_URL);
  say(`prometheus: ${prometheus.description}`);
  // A scaling study's status holds the run at its current count: analysed with that many replicas.
  const experiment = atStudyCount(parsed.experiment, (object.status ?? {}) as Status);
  const analysis = await analyseRecordedRun({ namespace: options.namespace, name: options.name, experiment, runId: status.runId, checkpoints: timeline }, prometheus.client, {
    analysis: { stepS: settings.ANALYSIS_STEP_SECONDS, scrapeIntervalS: settings.SCRAPE_INTERVAL_SECONDS, delayS: 0 },
    databaseMetricsSelector: settings.DATABASE_METRICS_SELECTOR,
    databaseResourceSelector: settings.DATABASE_RESOURCE_SELECTOR,
  });
  return { experiment, runId: status.runId, analysis, prometheus: prometheus.description };
}

/** The operator's analysis settings from its Deployment's environment; its defaults when it cannot be read. */
async function operatorSettings(client: KubeClient, deployment: string, say: (line: string) => void) {
  const [namespace, name] = deployment.split('/');
  if (!namespace || !name) throw new ClusterRunInputError(`--operator ${JSON.stringify(deployment)}: expected NAMESPACE/NAME of the operator's Deployment`);
  let env: Record<string, string> = {};
  try {
    const object = await client.get<{ spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } } } & ExperimentObject>(RESOURCES.deployments, namespace, name);
    const container = object.spec?.template?.spec?.containers?.[0];
    // Only literal values: a variable from a Secret or the downward API is not one of these.
    env = Object.fromEntries((container?.env ?? []).filter((entry) => entry.value !== undefined && entry.value !== '').map((entry) => [entry.name, entry.value!]));
    say(`settings: the operator's (${deployment})`);
  } catch (error) {
    if (!(error instanceof KubeError) || (error.status !== 404 && error.status !== 403)) throw error;
    say(`settings: the operator's defaults (its Deployment ${deployment} ${error.status === 404 ? 'was not found' : 'cannot be read with these credentials'})`);
  }
  const relevant = Object.fromEntries(Object.entries(env).filter(([key]) => key in analysisEnvSchema.shape));
  const result = analysisEnvSchema.safeParse(relevant);
  if (!result.success) {
    throw new ClusterRunInputError(`the operator's configuration (${deployment}) is invalid: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  return result.data;
}

/**
 * Prometheus as given, or the operator's: a Service URL inside the cluster
 * (http://NAME.NAMESPACE.svc[.cluster.local][:PORT][/PATH]) is reached through the apiserver's
 * service proxy, authenticated as the kubeconfig's user (it needs `get services/proxy` there).
 */
function prometheusClient(options: ClusterRunOptions, operatorUrl: string | undefined): { client: PrometheusClient; description: string } {
  const timeoutMs = 30_000;
  if (options.prometheusUrl) return { client: new PrometheusClient({ baseUrl: options.prometheusUrl, timeoutMs }), description: options.prometheusUrl };
  if (!operatorUrl) {
    throw new ClusterRunInputError("no Prometheus: the operator's Deployment has no PROMETHEUS_URL; give --prometheus URL (for example after `kubectl -n monitoring port-forward svc/prometheus-operated 9090`)");
  }
  const service = /^(https?):\/\/([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?(\/.*)?$/.exec(operatorUrl);
  if (!service) return { client: new PrometheusClient({ baseUrl: operatorUrl, timeoutMs }), description: `${operatorUrl} (the operator's PROMETHEUS_URL)` };
  const [, scheme, name, namespace, port, path] = service;
  const server = options.kubeConfig.getCurrentCluster()!.server.replace(/\/+$/, '');
  const target = `${scheme === 'https' ? 'https:' : ''}${name}:${port ?? (scheme === 'https' ? '443' : '80')}`;
  const baseUrl = `${server}/api/v1/namespaces/${namespace}/services/${target}/proxy${(path ?? '').replace(/\/+$/, '')}`;
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const context = new RequestContext(url, HttpMethod.POST);
    await options.kubeConfig.applySecurityAuthentication(context);
    const response = await kubeFetch(url, {
      ...(init as object),
      headers: { ...(init.headers as Record<string, string>), ...context.getHeaders() },
      dispatcher: context.getDispatcher(),
    } as Parameters<typeof kubeFetch>[1]);
    return response as unknown as Response;
  };
  return { client: new PrometheusClient({ baseUrl, timeoutMs, fetch }), description: `${operatorUrl} (the operator's PROMETHEUS_URL) through the Kubernetes API's service proxy` };
}
