import { DRIVER_METRICS_PORT_NAME } from '@loadlab/operator/driver-job';
import { DRIVER_JOB } from '@loadlab/operator/names';
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { add, COMMON_LABELS, inNamespace, type Manifest } from '../objects.js';
import { ANALYSED_SCRAPE_INTERVAL_S, NAMESPACES, onRole, PORTS, tolerate } from '../settings.js';
import { component, GENERATOR_PODS } from './api.js';
import { OPERATOR_LABELS } from './operator.js';
import { TIMESCALEDB_NAME } from './timescaledb.js';

const POD_MONITOR = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor' } as const;
const SCRAPE_INTERVAL = '15s';
const ANALYSED_SCRAPE_INTERVAL = `${ANALYSED_SCRAPE_INTERVAL_S}s`;

/**
 * How a run's series get the labels the analysis and the dashboard select on. The API pods carry
 * loadlab.dev/experiment and loadlab.dev/run (operator/src/k6/testrun.ts labelsFor); Prometheus
 * writes them as experiment="<namespace>/<name>" (the same value k6 tags its remote-written series
 * with) and run="<run id>".
 */
export const EXPERIMENT_RELABELINGS = [
  {
    sourceLabels: ['__meta_kubernetes_namespace', '__meta_kubernetes_pod_label_loadlab_dev_experiment'],
    separator: '/',
    regex: '(.+/.+)',
    targetLabel: 'experiment',
    action: 'replace',
  },
  { sourceLabels: ['__meta_kubernetes_pod_label_loadlab_dev_run'], regex: '(.+)', targetLabel: 'run', action: 'replace' },
];

/**
 * The loadlab engine's driver pods: the run's labels as the API's, and job="driver", the job local
 * mode's Prometheus gives the driver, which the analysis selects the generator's own CPU by and
 * keeps out of the API's Node.js queries (operator/src/analysis/queries.ts). prometheus-operator
 * sets job, and an `endpoint` label (the port's name) on every target, before a PodMonitor's own
 * relabelings: these have the last word. The driver's series carry an `endpoint` of their own
 * (measurements, command, login), which the target's would otherwise push aside as
 * exported_endpoint; so the target's is dropped.
 */
export const LOAD_GENERATOR_RELABELINGS = [
  ...EXPERIMENT_RELABELINGS,
  { targetLabel: 'job', replacement: DRIVER_JOB, action: 'replace' },
  { regex: 'endpoint', action: 'labeldrop' },
];

/**
 * PodMonitors for the experiments' API pods and the loadlab engine's driver pods (every
 * namespace), the operator and TimescaleDB's postgres_exporter. Prometheus itself (remote-write
 * receiver on, for k6) comes from kube-prometheus-stack with the values in kubePrometheusStackValues().
 */
export class MonitoringChart extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    add(this, ...podMonitors(), ...monitoringPolicies());
  }
}

/** prometheus-operator's admission webhook (kube-prometheus-stack's default port): the API server calls it. */
const PROMETHEUS_OPERATOR_WEBHOOK_PORT = 10250;

/**
 * Who may reach the monitoring namespace. Prometheus accepts remote write on the port it answers
 * queries on, so whoever reaches it can forge the series a verdict is read from: from outside the
 * namespace only the operator (queries) and the load generators (k6's remote write) may. Ingress
 * only: Prometheus scrapes kubelets, nodes and the control plane at addresses only an installation
 * knows, and nothing outside trusts what comes from it. The API server's service proxy (`loadlab
 * report`) comes from the control plane's addresses: `cluster.sh install` adds a policy naming
 * them (LOADLAB_CONTROL_PLANE_CIDRS overrides them).
 */
export function monitoringPolicies(): Manifest[] {
  const namespace = NAMESPACES.monitoring;
  const policy = (name: string, spec: Record<string, unknown>): Manifest => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace, labels: { ...COMMON_LABELS } },
    spec,
  });
  return [
    policy('default-deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }),
    // Grafana and Prometheus, Prometheus and its exporters, alerting: all the installation's own.
    policy('monitoring-internal', { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] }),
    policy('prometheus', {
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
      policyTypes: ['Ingress'],
      ingress: [{
        from: [
          { ...inNamespace(NAMESPACES.system), podSelector: { matchLabels: { 'app.kubernetes.io/component': OPERATOR_LABELS['app.kubernetes.io/component'] } } },
          { ...inNamespace(NAMESPACES.experiments), podSelector: component(...GENERATOR_PODS) },
        ],
        ports: [{ protocol: 'TCP', port: PORTS.prometheus }],
      }],
    }),
    // The API server's address is the installation's: the port, from anywhere (a TLS webhook that
    // validates rules; it serves no series).
    policy('prometheus-operator-webhook', {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: PROMETHEUS_OPERATOR_WEBHOOK_PORT }] }],
    }),
  ];
}

function podMonitors(): Manifest[] {
  const namespace = NAMESPACES.system;
  return [
    {
      ...POD_MONITOR,
      metadata: { name: 'loadlab-api', namespace, labels: { ...COMMON_LABELS } },
      spec: {
        namespaceSelector: { any: true },
        selector: { matchLabels: { 'app.kubernetes.io/part-of': 'loadlab', 'app.kubernetes.io/component': 'api' } },
        podMetricsEndpoints: [{ port: 'http', path: '/metrics', interval: ANALYSED_SCRAPE_INTERVAL, relabelings: EXPERIMENT_RELABELINGS }],
      },
    },
    {
      ...POD_MONITOR,
      metadata: { name: 'loadlab-load-generator', namespace, labels: { ...COMMON_LABELS } },
      spec: {
        namespaceSelector: { any: true },
        // The driver pods' metrics port; k6's runners (the same component) have none: k6 remote-writes.
        selector: { matchLabels: { 'app.kubernetes.io/part-of': 'loadlab', 'app.kubernetes.io/component': 'load-generator' } },
        podMetricsEndpoints: [{ port: DRIVER_METRICS_PORT_NAME, path: '/metrics', interval: ANALYSED_SCRAPE_INTERVAL, relabelings: LOAD_GENERATOR_RELABELINGS }],
      },
    },
    {
      ...POD_MONITOR,
      metadata: { name: 'loadlab-operator', namespace, labels: { ...COMMON_LABELS } },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/component': 'operator', 'app.kubernetes.io/part-of': 'loadlab' } },
        // The breaking-point gauges carry the experiment and run they describe: keep those labels.
        podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: SCRAPE_INTERVAL, honorLabels: true }],
      },
    },
    {
      ...POD_MONITOR,
      metadata: { name: TIMESCALEDB_NAME, namespace, labels: { ...COMMON_LABELS } },
      spec: {
        // job="timescaledb": what the operator's DATABASE_METRICS_SELECTOR and the dashboard select.
        jobLabel: 'app.kubernetes.io/name',
        selector: { matchLabels: { 'app.kubernetes.io/name': TIMESCALEDB_NAME } },
        podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: ANALYSED_SCRAPE_INTERVAL }],
      },
    },
  ];
}

/** The Helm values cluster:up installs kube-prometheus-stack with (written to charts/values/). */
export function kubePrometheusStackValues() {
  const placement = { nodeSelector: onRole('monitoring'), tolerations: tolerate('monitoring') };
  return {
    alertmanager: { enabled: false },
    prometheus: {
      prometheusSpec: {
        ...placement,
        scrapeInterval: SCRAPE_INTERVAL,
        evaluationInterval: SCRAPE_INTERVAL,
        // k6 pushes its metrics (experimental-prometheus-rw) to /api/v1/write.
        enableRemoteWriteReceiver: true,
        // k6's trends as native histograms: percentiles stay exact across runners.
        enableFeatures: ['native-histograms'],
        // Select our PodMonitors, which carry no Helm release label.
        podMonitorSelectorNilUsesHelmValues: false,
        serviceMonitorSelectorNilUsesHelmValues: false,
        retention: '7d',
        resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '4Gi' } },
      },
    },
    prometheusOperator: { ...placement },
    // cAdvisor's per-container CPU, throttling and memory, which the analysis reads.
    kubelet: { serviceMonitor: { interval: ANALYSED_SCRAPE_INTERVAL } },
    'kube-state-metrics': { ...placement },
    grafana: {
      ...placement,
      // The login cluster:up prints is read from the chart's Secret, never written here.
      sidecar: { dashboards: { enabled: true, label: 'grafana_dashboard', labelValue: '1', searchNamespace: NAMESPACES.monitoring } },
      'grafana.ini': { dashboards: { default_home_dashboard_path: '/tmp/dashboards/loadlab-experiment.json' } },
    },
  };
}
