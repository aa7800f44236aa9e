import { OPERATOR_IMAGE_UID } from '@loadlab/operator/driver-job';
import { rbacManifests } from '@loadlab/operator/rbac';
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { add, COMMON_LABELS, DNS_EGRESS, defaultDeny, inNamespace, restrictedNamespace, type Manifest } from '../objects.js';
import { RESTRICTED_CONTAINER, restrictedPod } from '../security.js';
import { ANALYSED_SCRAPE_INTERVAL_S, DATABASE_SECRET, IMAGES, MONITORING, NAMESPACES, onRole, PORTS, tolerate } from '../settings.js';

export const OPERATOR_NAME = 'loadlab-operator';
/** The ConfigMap of defaults the operator stamps into every experiment (the API chart writes it). */
export const DEFAULTS_CONFIGMAP = 'loadlab-defaults';
export const OPERATOR_LABELS = { 'app.kubernetes.io/name': 'loadlab', 'app.kubernetes.io/component': 'operator', ...COMMON_LABELS } as const;

/**
 * The operator: its namespace (Pod Security "restricted" enforced), ServiceAccount, the RBAC the
 * operator's code declares (operator/src/controller/rbac.ts: exactly what it uses, Lease included),
 * the Deployment, and the NetworkPolicies of loadlab-system.
 */
export class OperatorChart extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    const namespace = NAMESPACES.system;
    add(
      this,
      restrictedNamespace(namespace),
      defaultDeny(namespace),
      {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: OPERATOR_NAME, namespace, labels: { ...OPERATOR_LABELS } },
        automountServiceAccountToken: true,
      },
      // Its Lease's Role here; its Role in the experiments namespace comes with that namespace (ApiChart).
      ...operatorRbac().filter((manifest) => manifest.metadata.namespace === namespace),
      operatorDeployment(namespace),
      operatorNetworkPolicy(namespace),
      operatorApiserverPolicy(namespace),
    );
  }
}

/**
 * The operator's RBAC (operator/src/controller/rbac.ts): Roles in the namespaces it watches, only
 * the experiments namespace here, and its Lease's. No ClusterRole: it needs nothing cluster-wide,
 * and a user who may create LoadExperiments somewhere else gets nothing done there by it.
 */
export function operatorRbac(): Manifest[] {
  return rbacManifests({ serviceAccount: OPERATOR_NAME, namespace: NAMESPACES.system, watchNamespaces: [NAMESPACES.experiments], leaseNamespace: NAMESPACES.system, name: OPERATOR_NAME }) as Manifest[];
}

function fromSecret(name: string, key: string) {
  return { name, valueFrom: { secretKeyRef: { name: DATABASE_SECRET.name, key } } };
}

function operatorDeployment(namespace: string): Manifest {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: OPERATOR_NAME, namespace, labels: { ...OPERATOR_LABELS } },
    spec: {
      // Two replicas: leader election (a Lease) keeps exactly one reconciling; the other takes
      // over within the lease duration if the leader's node goes.
      replicas: 2,
      selector: { matchLabels: { 'app.kubernetes.io/name': 'loadlab', 'app.kubernetes.io/component': 'operator' } },
      template: {
        metadata: { labels: { ...OPERATOR_LABELS } },
        spec: {
          serviceAccountName: OPERATOR_NAME,
          securityContext: restrictedPod(OPERATOR_IMAGE_UID),
          // The operator is control, not load: it lives with monitoring, off the system under test.
          nodeSelector: onRole('monitoring'),
          tolerations: tolerate('monitoring'),
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'operator',
              image: IMAGES.operator,
              imagePullPolicy: 'IfNotPresent',
              args: ['operator'],
              ports: [{ name: 'metrics', containerPort: PORTS.operatorMetrics, protocol: 'TCP' }],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'LEASE_NAMESPACE', value: namespace },
                // Only where its Role is (operatorRbac); add a namespace to both to run experiments there.
                { name: 'WATCH_NAMESPACES', value: NAMESPACES.experiments },
                { name: 'PROMETHEUS_URL', value: MONITORING.prometheusUrl },
                { name: 'REMOTE_WRITE_URL', value: MONITORING.remoteWriteUrl },
                // The status link is opened from the user's machine, through the port-forward.
                { name: 'GRAFANA_URL', value: MONITORING.grafanaUrl },
                // How often what the analysis reads is scraped (40-monitoring), and so its resolution.
                { name: 'SCRAPE_INTERVAL_SECONDS', value: String(ANALYSED_SCRAPE_INTERVAL_S) },
                { name: 'ANALYSIS_STEP_SECONDS', value: String(ANALYSED_SCRAPE_INTERVAL_S) },
                // The loadlab engine's driver Jobs run the operator's own image (`loadlab drive`).
                { name: 'DRIVER_IMAGE', value: IMAGES.operator },
                { name: 'METRICS_PORT', value: String(PORTS.operatorMetrics) },
                fromSecret('DATABASE_URL', DATABASE_SECRET.urlKey),
                fromSecret('SECRET_KEY', DATABASE_SECRET.secretKeyKey),
              ],
              // API_IMAGE, GENERATOR_PLACEMENT: the defaults the API chart writes.
              envFrom: [{ configMapRef: { name: DEFAULTS_CONFIGMAP } }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10, failureThreshold: 6 },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
              securityContext: RESTRICTED_CONTAINER,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  };
}

/** In: Prometheus scraping /metrics. Out: DNS, TimescaleDB, Prometheus (the API server: below). */
function operatorNetworkPolicy(namespace: string): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: OPERATOR_NAME, namespace, labels: { ...OPERATOR_LABELS } },
    spec: {
      podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [inNamespace(NAMESPACES.monitoring)], ports: [{ protocol: 'TCP', port: PORTS.operatorMetrics }] }],
      egress: [
        DNS_EGRESS,
        { to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'timescaledb' } } }], ports: [{ protocol: 'TCP', port: PORTS.postgres }] },
        { to: [inNamespace(NAMESPACES.monitoring)], ports: [{ protocol: 'TCP', port: PORTS.prometheus }] },
      ],
    },
  };
}

/** The NetworkPolicy `cluster.sh install` replaces with one naming the cluster's API server. */
export const OPERATOR_APISERVER_POLICY = 'loadlab-operator-apiserver';

/**
 * Out: the API server. It has no pod to select and its addresses belong to the installation, so the
 * chart allows its ports to any address; `cluster.sh install` applies, under the same name, a policy
 * that names the addresses of the cluster's `kubernetes` Service and its endpoints instead
 * (LOADLAB_CONTROL_PLANE_CIDRS overrides them). Kept apart so that replacing it leaves the rest alone.
 */
function operatorApiserverPolicy(namespace: string): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: OPERATOR_APISERVER_POLICY, namespace, labels: { ...OPERATOR_LABELS } },
    spec: {
      podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator' } },
      policyTypes: ['Egress'],
      egress: [{ ports: PORTS.apiserver.map((port) => ({ protocol: 'TCP', port })) }],
    },
  };
}
