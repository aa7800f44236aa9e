import { ApiObject, type Chart } from 'cdk8s';
import { ENFORCE_RESTRICTED } from './security.js';

/** A manifest as plain data: what every builder here returns and the tests read. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Adds plain manifests to a chart, each under a construct id made of its kind and name. */
export function add(chart: Chart, ...manifests: readonly Manifest[]): void {
  for (const manifest of manifests) {
    const { apiVersion, kind, metadata, ...rest } = manifest;
    new ApiObject(chart, `${kind}-${metadata.namespace ?? ''}-${metadata.name}`, { apiVersion, kind, metadata, ...rest });
  }
}

export const COMMON_LABELS = { 'app.kubernetes.io/part-of': 'loadlab', 'app.kubernetes.io/managed-by': 'cdk8s' } as const;

/** A NetworkPolicy peer: DNS through kube-system's resolver (UDP and TCP 53). */
export const DNS_EGRESS = {
  to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }],
  ports: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'TCP', port: 53 },
  ],
};

export function inNamespace(namespace: string) {
  return { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } };
}

/** Denies all ingress and egress to the namespace's pods; the other policies open what is needed. */
export function defaultDeny(namespace: string): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'default-deny', namespace, labels: { ...COMMON_LABELS } },
    spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
  };
}

/** A namespace whose pods the API server holds to Pod Security "restricted". */
export function restrictedNamespace(name: string): Manifest {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...COMMON_LABELS, ...ENFORCE_RESTRICTED } } };
}
