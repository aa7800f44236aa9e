import { AnalysisInputError } from '../analysis/errors.js';
import { RetryableError, TerminalError } from '../analysis/prometheus-client.js';
import { analyseClusterRun, ClusterRunInputError, OPERATOR_DEPLOYMENT, type ClusterRun } from '../controller/cluster-report.js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ComparableRun } from '../analysis/compare/record.js';
import { runRecordName } from '../contract/names.js';
import { KubeClient, loadKubeConfig } from '../controller/kube.js';
import { readRunRecord } from '../controller/run-record.js';

/* A LoadExperiment named on the command line (NAMESPACE/NAME), analysed again: what `loadlab report` and `loadlab compare` share. */

export const CLUSTER_OPTIONS = {
  prometheus: { type: 'string' },
  context: { type: 'string' },
  operator: { type: 'string' },
} as const;

export const CLUSTER_OPTIONS_USAGE = `  --prometheus URL      Prometheus as reachable from here (default: the operator's PROMETHEUS_URL,
                        read from its Deployment and reached through the Kubernetes API's service
                        proxy with your kubeconfig's credentials: no port-forward needed)
  --context NAME        the kubeconfig context (default: the current one; KUBECONFIG is honoured)
  --operator NS/NAME    the operator's Deployment, whose analysis settings (step, scrape interval,
                        database selectors) are used so the numbers are the operator's own
                        (default ${OPERATOR_DEPLOYMENT})`;

/** NAMESPACE/NAME as Kubernetes spells them (lower-case DNS names). */
export function isExperimentRef(text: string): boolean {
  return /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(text);
}

export interface ClusterInputValues {
  prometheus?: string | undefined;
  context?: string | undefined;
  operator?: string | undefined;
}

export async function clusterRun(ref: string, values: ClusterInputValues, say: (line: string) => void): Promise<ClusterRun> {
  const [namespace, name] = ref.split('/') as [string, string];
  return analyseClusterRun({
    kubeConfig: kubeConfigFor(values),
    namespace,
    name,
    ...(values.prometheus ? { prometheusUrl: values.prometheus } : {}),
    ...(values.operator ? { operator: values.operator } : {}),
    say,
  });
}

/** The run before the experiment's last analysed one, from the records the operator keeps (<name>-runs). */
export async function previousClusterRun(ref: string, values: ClusterInputValues): Promise<ComparableRun> {
  const [namespace, name] = ref.split('/') as [string, string];
  const stored = await readRunRecord(new KubeClient(kubeConfigFor(values)), namespace, name, 'previous');
  if (!stored) throw new ClusterRunInputError(`${ref}: no previous run is kept (ConfigMap ${namespace}/${runRecordName(name)}): the experiment has been analysed once at most, by an operator that keeps run records`);
  return { ...stored.record, label: `${stored.record.label} (previous run)` };
}

function kubeConfigFor(values: ClusterInputValues): KubeConfig {
  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig();
  } catch (error) {
    throw new ClusterRunInputError(`cannot load the kubeconfig${process.env.KUBECONFIG ? ` (KUBECONFIG=${process.env.KUBECONFIG})` : ''}: ${(error as Error).message}`);
  }
  if (values.context !== undefined) {
    if (!kubeConfig.getContextObject(values.context)) throw new ClusterRunInputError(`--context ${values.context}: no such context in the kubeconfig (${kubeConfig.getContexts().map((context) => context.name).join(', ') || 'none'})`);
    kubeConfig.setCurrentContext(values.context);
  }
  return kubeConfig;
}

/** An error the user can fix by changing the input (exit 2), rather than one of the cluster or Prometheus (exit 1). */
export function isInputError(error: unknown): boolean {
  return error instanceof ClusterRunInputError || error instanceof AnalysisInputError;
}

export function describeError(error: unknown): string {
  if (error instanceof RetryableError || error instanceof TerminalError) return `Prometheus: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
