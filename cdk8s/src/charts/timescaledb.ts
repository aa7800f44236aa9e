import { Chart } from 'cdk8s';
import { POSTGRES_EXPORTER_QUERIES } from '@loadlab/operator/exporter-queries';
import type { Construct } from 'constructs';
import { add, COMMON_LABELS, DNS_EGRESS, inNamespace, type Manifest } from '../objects.js';
import { RESTRICTED_CONTAINER, restrictedPod } from '../security.js';
import { DATABASE_SECRET, IMAGES, NAMESPACES, onRole, PORTS } from '../settings.js';

export const TIMESCALEDB_NAME = 'timescaledb';
const LABELS = { 'app.kubernetes.io/name': TIMESCALEDB_NAME, 'app.kubernetes.io/component': 'database', ...COMMON_LABELS } as const;
const SELECTOR = { 'app.kubernetes.io/name': TIMESCALEDB_NAME } as const;
/** The timescale image is Alpine-based: its postgres user is uid 70. */
const POSTGRES_UID = 70;
/** postgres_exporter's image runs as nobody. */
const NOBODY = 65534;
const EXPORTER_QUERIES = `${TIMESCALEDB_NAME}-exporter-queries`;

/**
 * Settings for a 2-CPU, 2 GiB database (the pod's limits): the experiments measure the API's
 * behaviour, so the database gets enough buffers and connections that it is not the first thing
 * to run out (unless an experiment sets out to make it so). pg_stat_statements is loaded for
 * postgres_exporter's slow-statement view; the timescale image's own tuning is off so these hold.
 */
export const POSTGRES_SETTINGS: Record<string, string> = {
  max_connections: '300',
  shared_buffers: '512MB',
  effective_cache_size: '1536MB',
  work_mem: '8MB',
  maintenance_work_mem: '128MB',
  wal_buffers: '16MB',
  max_wal_size: '2GB',
  checkpoint_completion_target: '0.9',
  random_page_cost: '1.1',
  shared_preload_libraries: 'timescaledb,pg_stat_statements',
  'timescaledb.max_background_workers': '8',
  max_worker_processes: '16',
};

/** The shared TimescaleDB (one schema per experiment, made by the operator) with postgres_exporter beside it. */
export class TimescaleDbChart extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    const namespace = NAMESPACES.system;
    add(this, ...timescaleDbManifests(namespace));
  }
}

function timescaleDbManifests(namespace: string): Manifest[] {
  const ports = [{ name: 'postgres', port: PORTS.postgres, targetPort: 'postgres', protocol: 'TCP' }];
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: TIMESCALEDB_NAME, namespace, labels: { ...LABELS } },
      spec: { selector: SELECTOR, ports },
    },
    {
      // The StatefulSet's governing Service: stable pod DNS names.
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${TIMESCALEDB_NAME}-headless`, namespace, labels: { ...LABELS } },
      spec: { clusterIP: 'None', selector: SELECTOR, ports },
    },
    {
      // loadlab's own postgres_exporter query: lock waits and the oldest open transaction.
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: EXPORTER_QUERIES, namespace, labels: { ...LABELS } },
      data: { 'queries.yaml': POSTGRES_EXPORTER_QUERIES },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: TIMESCALEDB_NAME, namespace, labels: { ...LABELS } },
      spec: {
        serviceName: `${TIMESCALEDB_NAME}-headless`,
        replicas: 1,
        selector: { matchLabels: SELECTOR },
        template: {
          metadata: { labels: { ...LABELS } },
          spec: {
            securityContext: restrictedPod(POSTGRES_UID),
            // Part of the system under test: on its node, beside the API.
            nodeSelector: onRole('sut'),
            terminationGracePeriodSeconds: 60,
            containers: [
              {
                name: 'timescaledb',
                image: IMAGES.timescaledb,
                imagePullPolicy: 'IfNotPresent',
                args: Object.entries(POSTGRES_SETTINGS).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
                ports: [{ name: 'postgres', containerPort: PORTS.postgres, protocol: 'TCP' }],
                env: [
                  { name: 'POSTGRES_USER', value: 'postgres' },
                  { name: 'POSTGRES_DB', value: 'loadlab' },
                  { name: 'POSTGRES_PASSWORD', valueFrom: { secretKeyRef: { name: DATABASE_SECRET.name, key: DATABASE_SECRET.passwordKey } } },
                  // A subdirectory: the volume's root holds lost+found on some provisioners.
                  { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
                  { name: 'NO_TS_TUNE', value: 'true' },
                ],
                readinessProbe: { exec: { command: ['pg_isready', '-U', 'postgres', '-h', '127.0.0.1'] }, periodSeconds: 5, timeoutSeconds: 3 },
                livenessProbe: { exec: { command: ['pg_isready', '-U', 'postgres', '-h', '127.0.0.1'] }, periodSeconds: 15, timeoutSeconds: 5, failureThreshold: 6 },
                startupProbe: { exec: { command: ['pg_isready', '-U', 'postgres', '-h', '127.0.0.1'] }, periodSeconds: 5, failureThreshold: 60 },
                resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '2Gi' } },
                securityContext: RESTRICTED_CONTAINER,
                volumeMounts: [
                  { name: 'data', mountPath: '/var/lib/postgresql/data' },
                  { name: 'run', mountPath: '/var/run/postgresql' },
                  { name: 'tmp', mountPath: '/tmp' },
                  // Parallel queries need more shared memory than a container's 64 MiB default.
                  { name: 'shm', mountPath: '/dev/shm' },
                ],
              },
              {
                name: 'postgres-exporter',
                image: IMAGES.postgresExporter,
                imagePullPolicy: 'IfNotPresent',
                args: ['--collector.stat_statements', '--extend.query-path=/etc/loadlab/queries.yaml'],
                ports: [{ name: 'metrics', containerPort: PORTS.postgresExporter, protocol: 'TCP' }],
                env: [
                  { name: 'DATA_SOURCE_URI', value: `127.0.0.1:${PORTS.postgres}/loadlab?sslmode=disable` },
                  { name: 'DATA_SOURCE_USER', value: 'postgres' },
                  { name: 'DATA_SOURCE_PASS', valueFrom: { secretKeyRef: { name: DATABASE_SECRET.name, key: DATABASE_SECRET.passwordKey } } },
                ],
                readinessProbe: { httpGet: { path: '/metrics', port: 'metrics' }, periodSeconds: 15, timeoutSeconds: 10 },
                resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '250m', memory: '128Mi' } },
                securityContext: { ...RESTRICTED_CONTAINER, runAsUser: NOBODY, runAsGroup: NOBODY },
                volumeMounts: [{ name: 'exporter-queries', mountPath: '/etc/loadlab', readOnly: true }],
              },
            ],
            volumes: [
              { name: 'exporter-queries', configMap: { name: EXPORTER_QUERIES } },
              { name: 'run', emptyDir: {} },
              { name: 'tmp', emptyDir: {} },
              { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '512Mi' } },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: { ...LABELS } },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } } },
          },
        ],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: TIMESCALEDB_NAME, namespace, labels: { ...LABELS } },
      spec: {
        podSelector: { matchLabels: SELECTOR },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            // The operator (schemas, roles, preload) and the experiments' API pods, only in the
            // namespace the operator runs experiments in: a namespace's name label is the
            // apiserver's, which nobody can give their own namespace, unlike a pod's labels.
            from: [
              { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator' } } },
              { ...inNamespace(NAMESPACES.experiments), podSelector: { matchLabels: { 'app.kubernetes.io/component': 'api' } } },
            ],
            ports: [{ protocol: 'TCP', port: PORTS.postgres }],
          },
          { from: [inNamespace(NAMESPACES.monitoring)], ports: [{ protocol: 'TCP', port: PORTS.postgresExporter }] },
        ],
        egress: [DNS_EGRESS],
      },
    },
  ];
}
