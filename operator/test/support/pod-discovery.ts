import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '@loadlab/sandbox/control-plane';

/*
 * Prometheus' Kubernetes pod discovery and prometheus-operator, stood in for with a file_sd file:
 * each pod's target carries the __meta_kubernetes_* labels discovery would give it and the labels
 * prometheus-operator sets on every PodMonitor target (its job "<namespace>/<monitor>" among
 * them), and the PodMonitor's own relabelings, read from the synthesized charts, run after them as
 * prometheus-operator orders them. What is not covered: prometheus-operator's rendering itself.
 */

const MONITORING_CHART = join(repoRoot(), 'charts', 'loadlab', '40-monitoring.yaml');
const MONITOR_NAMESPACE = 'loadlab-system';

/** A PodMonitor's relabelings as prometheus-operator writes them into relabel_configs, from the synthesized chart. */
export function podMonitorRelabelConfigs(monitor: string): Record<string, unknown>[] {
  const monitors = parseAllDocuments(readFileSync(MONITORING_CHART, 'utf8')).map((document) => document.toJS() as { kind: string; metadata: { name: string }; spec: { podMetricsEndpoints: { relabelings?: Record<string, unknown>[] }[] } });
  const found = monitors.find((entry) => entry.kind === 'PodMonitor' && entry.metadata.name === monitor);
  assert.ok(found, `${MONITORING_CHART} has the ${monitor} PodMonitor`);
  const relabelings = found.spec.podMetricsEndpoints[0]?.relabelings ?? [];
  assert.ok(relabelings.length > 0, `the ${monitor} PodMonitor relabels`);
  return relabelings.map((rule) => Object.fromEntries(Object.entries(rule).map(([key, value]) => [key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), value])));
}

export interface DiscoveredPod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Where this process serves /metrics here (a pod's own address in a cluster). */
  address: string;
  container: string;
  /** The PodMonitor endpoint's port name. */
  endpoint: string;
  monitor: string;
}

/** What pod discovery and prometheus-operator give a pod's target, before the PodMonitor's relabelings. */
export function discoveredPod(pod: DiscoveredPod): { targets: string[]; labels: Record<string, string> } {
  return {
    targets: [pod.address],
    labels: {
      __meta_kubernetes_namespace: pod.namespace,
      __meta_kubernetes_pod_name: pod.name,
      ...Object.fromEntries(Object.entries(pod.labels).map(([key, value]) => [`__meta_kubernetes_pod_label_${key.replace(/[^a-zA-Z0-9_]/g, '_')}`, value])),
      // prometheus-operator's own relabelling of every PodMonitor target:
      namespace: pod.namespace,
      pod: pod.name,
      container: pod.container,
      endpoint: pod.endpoint,
      job: `${MONITOR_NAMESPACE}/${pod.monitor}`,
    },
  };
}

/** Targets appear to Prometheus through its file_sd file, written whole and renamed, as its docs ask. */
export function writeTargets(file: string, groups: { targets: string[]; labels: Record<string, string> }[]): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(groups));
  renameSync(`${file}.tmp`, file);
}
