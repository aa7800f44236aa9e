import { DRIVER_METRICS_PORT } from '@loadlab/operator/driver-job';
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { add, COMMON_LABELS, DNS_EGRESS, defaultDeny, inNamespace, restrictedNamespace, type Manifest } from '../objects.js';
import { IMAGES, NAMESPACES, onRole, PORTS, tolerate } from '../settings.js';
import { DEFAULTS_CONFIGMAP, operatorRbac } from './operator.js';

/** k6's REST API on the runners: the starter and k6-operator call it to start and watch a test. */
const K6_REST_PORT = 6565;
const K6_OPERATOR_NAMESPACE = 'k6-operator-system';
export const component = (...names: string[]) => ({ matchExpressions: [{ key: 'app.kubernetes.io/component', operator: 'In', values: names }] });
const RUNNERS = ['load-generator'];
/** Every pod of a load generator: k6's runners, initializer and starter, and the loadlab engine's drivers. */
export const GENERATOR_PODS = ['load-generator', 'load-generator-initializer', 'load-generator-starter'];

/**
 * The API defaults the operator stamps out per experiment, and the namespace experiments run in.
 * The operator builds each experiment's Deployment itself (operator/src/controller/builders.ts: the
 * spec's replicas, resources and knobs, Pod Security "restricted"); what an installation decides is
 * here, in the ConfigMap the operator reads its environment from: which API image, and where the
 * load generators run (on the load node, away from the system under test, as the seed did).
 */
export class ApiChart extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    const namespace = NAMESPACES.experiments;
    add(
      this,
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: DEFAULTS_CONFIGMAP, namespace: NAMESPACES.system, labels: { ...COMMON_LABELS } },
        data: {
          API_IMAGE: IMAGES.api,
          K6_RUNNER_IMAGE: IMAGES.k6Runner,
          GENERATOR_PLACEMENT: JSON.stringify({ nodeSelector: onRole('load'), tolerations: tolerate('load') }),
        },
      },
      restrictedNamespace(namespace),
      ...operatorRbac().filter((manifest) => manifest.metadata.namespace === namespace),
      ...experimentLimits(namespace),
      defaultDeny(namespace),
      apiPolicy(namespace),
      generatorPolicy(namespace),
    );
  }
}

/**
 * What one experiment namespace may take from the cluster: every container gets a request (the
 * scheduler then counts it) and a memory limit (at most 16Gi, the default too); all pods together
 * at most the quota. An
 * experiment whose pods go beyond fails to create them (its run fails with the reason), instead of
 * starving the shared database and monitoring. Raise them with the cluster.
 */
export const EXPERIMENT_LIMITS = {
  defaultRequest: { cpu: '100m', memory: '128Mi' },
  // Memory only: a CPU maximum would become every container's CPU limit, and the analysis reads
  // CPU against a limit where there is one (api_cpu_limit_fraction).
  maxPerContainer: { memory: '16Gi' },
  quota: { pods: '100', 'requests.cpu': '32', 'requests.memory': '64Gi', 'limits.memory': '256Gi' },
} as const;

function experimentLimits(namespace: string): Manifest[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: { name: 'loadlab-experiments', namespace, labels: { ...COMMON_LABELS } },
      spec: { limits: [{ type: 'Container', defaultRequest: { ...EXPERIMENT_LIMITS.defaultRequest }, max: { ...EXPERIMENT_LIMITS.maxPerContainer } }] },
    },
    {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'loadlab-experiments', namespace, labels: { ...COMMON_LABELS } },
      spec: { hard: { ...EXPERIMENT_LIMITS.quota } },
    },
  ];
}

/** The API pods: in from the load generators and Prometheus; out to TimescaleDB and DNS. */
function apiPolicy(namespace: string): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'loadlab-api', namespace, labels: { ...COMMON_LABELS } },
    spec: {
      podSelector: component('api'),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { from: [{ podSelector: component(...RUNNERS) }], ports: [{ protocol: 'TCP', port: PORTS.api }] },
        // Prometheus scrapes /metrics on the same port.
        { from: [inNamespace(NAMESPACES.monitoring)], ports: [{ protocol: 'TCP', port: PORTS.api }] },
      ],
      egress: [
        DNS_EGRESS,
        {
          to: [{ ...inNamespace(NAMESPACES.system), podSelector: { matchLabels: { 'app.kubernetes.io/name': 'timescaledb' } } }],
          ports: [{ protocol: 'TCP', port: PORTS.postgres }],
        },
      ],
    },
  };
}

/**
 * The load generators' pods: k6's (out to the API, to Prometheus' remote-write receiver, between
 * runners and starter; in from k6-operator) and the loadlab engine's drivers (out to the API; in:
 * Prometheus scraping their metrics port).
 */
function generatorPolicy(namespace: string): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'loadlab-load-generator', namespace, labels: { ...COMMON_LABELS } },
    spec: {
      podSelector: component(...GENERATOR_PODS),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { from: [inNamespace(K6_OPERATOR_NAMESPACE), { podSelector: component('load-generator-starter') }], ports: [{ protocol: 'TCP', port: K6_REST_PORT }] },
        { from: [inNamespace(NAMESPACES.monitoring)], ports: [{ protocol: 'TCP', port: DRIVER_METRICS_PORT }] },
      ],
      egress: [
        DNS_EGRESS,
        { to: [{ podSelector: component('api') }], ports: [{ protocol: 'TCP', port: PORTS.api }] },
        { to: [inNamespace(NAMESPACES.monitoring)], ports: [{ protocol: 'TCP', port: PORTS.prometheus }] },
        { to: [{ podSelector: component(...RUNNERS) }], ports: [{ protocol: 'TCP', port: K6_REST_PORT }] },
      ],
    },
  };
}
