/*
 * What an installation is made of: namespaces, names, images and the pinned versions of what
 * cluster:up installs beside our charts. The versions match the CRDs the tests read from
 * ../shared/vendor/ (k6-operator v1.6.0, prometheus-operator v0.93.0).
 */

export const VERSIONS = {
  /** grafana/k6-operator: its release bundle (CRDs + controller), the TestRun CRD the tests use. */
  k6Operator: 'v1.6.0',
  /** prometheus-community/kube-prometheus-stack 88.0.0 ships prometheus-operator v0.93.0. */
  kubePrometheusStack: '88.0.0',
  prometheusOperator: 'v0.93.0',
} as const;

export const IMAGES = {
  operator: 'loadlab/operator:dev',
  api: 'loadlab/api:dev',
  timescaledb: 'timescale/timescaledb:2.23.0-pg17',
  postgresExporter: 'quay.io/prometheuscommunity/postgres-exporter:v0.17.1',
  /** k6's runners: a release, not k6-operator's default (grafana/k6:latest, which moves). */
  k6Runner: 'grafana/k6:1.7.1',
} as const;

export const NAMESPACES = {
  /** The operator and the shared TimescaleDB. */
  system: 'loadlab-system',
  /** Where experiments run by default (cluster:up makes it the context's namespace). */
  experiments: 'loadlab',
  /** kube-prometheus-stack's release: Prometheus, Grafana (its dashboard sidecar watches here). */
  monitoring: 'monitoring',
} as const;

/** The Secret cluster:up creates with a random password (never in charts/): keys below. */
export const DATABASE_SECRET = {
  name: 'loadlab-database',
  /** The database's superuser: its own container and postgres_exporter only. */
  passwordKey: 'password',
  /** The operator's DATABASE_URL: adminUser, a CREATEROLE role that is no superuser. */
  urlKey: 'url',
  adminPasswordKey: 'admin-password',
  adminUser: 'loadlab_admin',
  secretKeyKey: 'secret-key',
} as const;

/** Node roles kind-config.yaml labels (and taints) its workers with. */
export const NODE_ROLE_LABEL = 'loadlab.dev/role';
export type NodeRole = 'sut' | 'load' | 'monitoring';

/** Tolerate the taint of a role's nodes (kind-config.yaml taints the load and monitoring workers). */
export function tolerate(role: NodeRole) {
  return [{ key: NODE_ROLE_LABEL, operator: 'Equal', value: role, effect: 'NoSchedule' }];
}

export function onRole(role: NodeRole) {
  return { [NODE_ROLE_LABEL]: role };
}

export const PORTS = {
  api: 3000,
  operatorMetrics: 8080,
  postgres: 5432,
  postgresExporter: 9187,
  prometheus: 9090,
  /** The apiserver's port as pods reach it (kind: 6443 behind the kubernetes Service's 443). */
  apiserver: [443, 6443],
} as const;

/** The operator's in-cluster URLs of what kube-prometheus-stack runs (release name "monitoring"). */
/**
 * Everything the analysis reads is scraped every 5 s: the experiment's API and driver pods, the
 * database's exporter and the kubelets' cAdvisor (k6 pushes every 5 s too). The operator's
 * SCRAPE_INTERVAL_SECONDS says so, and its rate window is four of them (20 s): with 15 s, the
 * window was 60 s, longer than a smoke run, and rate() over a series younger than its window
 * reports a fraction of the real rate (a 20-device smoke run was judged "4 of 20 rps served").
 */
export const ANALYSED_SCRAPE_INTERVAL_S = 5;

export const MONITORING = {
  // prometheus-operated: the Service prometheus-operator makes for every Prometheus it runs.
  prometheusUrl: 'http://prometheus-operated.monitoring.svc:9090',
  remoteWriteUrl: 'http://prometheus-operated.monitoring.svc:9090/api/v1/write',
  grafanaUrl: 'http://localhost:3000',
} as const;
