import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadExperimentCrd } from '@loadlab/operator/crd';
import { DASHBOARD_UID, dashboardQueries } from '@loadlab/operator/dashboard';
import { allRules } from '@loadlab/operator/rbac';
import { loadOperatorConfig } from '@loadlab/operator/config';
import { buildDriverJob, DRIVER_METRICS_PORT, DRIVER_METRICS_PORT_NAME } from '@loadlab/operator/driver-job';
import { parseExperiment } from '@loadlab/operator/schema';
import { buildTrafficPlan } from '@loadlab/operator/traffic';
import { parse } from 'yaml';
import { CHART_IDS, extraFiles } from '../src/app.js';
import { EXPERIMENT_RELABELINGS, LOAD_GENERATOR_RELABELINGS } from '../src/charts/monitoring.js';
import { OPERATOR_APISERVER_POLICY } from '../src/charts/operator.js';
import { staleFiles } from '../src/main.js';
import type { Manifest } from '../src/objects.js';
import { DATABASE_SECRET, NAMESPACES } from '../src/settings.js';
import { allManifests, podTemplates, renderedCharts, type Container } from './support.js';

const charts = renderedCharts();

/** An experiment on the loadlab engine, for the driver Job the operator would build for it. */
function driverExperiment() {
  const parsed = parseExperiment(JSON.stringify({
    apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: 'drv', namespace: NAMESPACES.experiments },
    spec: { fleet: { devices: 10 }, load: { stages: [{ devices: 10, duration: '10s' }] }, generator: { engine: 'loadlab', parallelism: 2 } },
  }), 'drv.json');
  return parsed.ok ? parsed.experiment : assert.fail('the test experiment is valid');
}
const chart = (id: string) => charts.get(id) ?? assert.fail(`no chart ${id}`);
const find = (manifests: readonly Manifest[], kind: string, name: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name === name) ?? assert.fail(`no ${kind}/${name}`);

describe('charts/ is what cdk8s/ synthesizes', () => {
  it('the committed files are up to date (else: npm run synth)', async () => {
    assert.deepEqual(await staleFiles(), []);
  });

  it('has one chart per concern, in apply order', () => {
    assert.deepEqual([...charts.keys()], [...CHART_IDS]);
  });
});

describe('each chart', () => {
  it('00-crd: the LoadExperiment CRD, exactly as the schema generates it', () => {
    assert.deepEqual(chart('00-crd'), [loadExperimentCrd()]);
  });

  it('10-operator: ServiceAccount, the RBAC the operator code declares, a Deployment wired to the downward API and the Secret', () => {
    const manifests = chart('10-operator');
    // No ClusterRole: the experiments namespace's Role (20-api, with the namespace) and the Lease's here.
    const everything = [...charts.values()].flat();
    assert.deepEqual(everything.filter((m) => m.kind === 'ClusterRole' || m.kind === 'ClusterRoleBinding'), []);
    const roles = everything.filter((m) => m.kind === 'Role' && m.metadata.name.startsWith('loadlab-operator'));
    assert.deepEqual(roles.map((m) => `${m.metadata.namespace}/${m.metadata.name}`), [`${NAMESPACES.system}/loadlab-operator-leader-election`, `${NAMESPACES.experiments}/loadlab-operator`]);
    const rules = [...roles].reverse().flatMap((m) => m.rules as unknown[]);
    assert.deepEqual(rules, allRules(), 'the roles hold exactly the operator\'s declared rules');
    const bindings = everything.filter((m) => m.kind === 'RoleBinding' && m.metadata.name.startsWith('loadlab-operator'));
    assert.ok(bindings.every((m) => JSON.stringify(m.subjects) === JSON.stringify([{ kind: 'ServiceAccount', name: 'loadlab-operator', namespace: NAMESPACES.system }])));
    const deployment = find(manifests, 'Deployment', 'loadlab-operator');
    const pod = (deployment.spec as { template: { spec: { serviceAccountName: string; containers: { env: { name: string; value?: string; valueFrom?: Record<string, Record<string, string>> }[]; envFrom: unknown[] }[] } } }).template.spec;
    assert.equal(pod.serviceAccountName, 'loadlab-operator');
    const env = new Map(pod.containers[0]!.env.map((e) => [e.name, e]));
    assert.deepEqual(env.get('POD_NAME')?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.deepEqual(env.get('POD_NAMESPACE')?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
    assert.deepEqual(env.get('DATABASE_URL')?.valueFrom, { secretKeyRef: { name: DATABASE_SECRET.name, key: DATABASE_SECRET.urlKey } });
    assert.deepEqual(env.get('SECRET_KEY')?.valueFrom, { secretKeyRef: { name: DATABASE_SECRET.name, key: DATABASE_SECRET.secretKeyKey } });
    assert.deepEqual(pod.containers[0]!.envFrom, [{ configMapRef: { name: 'loadlab-defaults' } }]);
    const namespace = find(manifests, 'Namespace', NAMESPACES.system);
    assert.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  it('10-operator + 20-api: the environment they give the operator passes its own configuration check', () => {
    const deployment = find(chart('10-operator'), 'Deployment', 'loadlab-operator');
    const container = (deployment.spec as { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } }).template.spec.containers[0]!;
    const defaults = find(chart('20-api'), 'ConfigMap', 'loadlab-defaults').data as Record<string, string>;
    const env: Record<string, string> = {
      ...defaults,
      ...Object.fromEntries(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!])),
      // What the downward API and the Secret fill in on a cluster:
      POD_NAME: 'loadlab-operator-abc', POD_NAMESPACE: NAMESPACES.system,
      DATABASE_URL: 'postgres://postgres:pw@timescaledb.loadlab-system.svc:5432/loadlab', SECRET_KEY: 'x'.repeat(48),
    };
    const config = loadOperatorConfig(env);
    assert.equal(config.apiImage, 'loadlab/api:dev');
    assert.deepEqual(config.generatorPlacement?.nodeSelector, { 'loadlab.dev/role': 'load' });
    assert.equal(config.databaseMetricsSelector, 'job="timescaledb"', 'the default matches the TimescaleDB PodMonitor\'s jobLabel');
    const database = find(chart('30-timescaledb'), 'StatefulSet', 'timescaledb');
    assert.equal(config.databaseResourceSelector, `namespace="${database.metadata.namespace}",pod=~"${database.metadata.name}-[0-9]+"`, 'the default selects the StatefulSet\'s pods');
    assert.equal(config.analysis.scrapeIntervalS, 5, 'what the PodMonitors and cAdvisor scrape at');
    assert.equal(config.leaderElection.namespace, NAMESPACES.system);
    assert.equal(config.driver.image, 'loadlab/operator:dev', 'the driver Jobs run the operator\'s own image');
    assert.deepEqual(config.watchNamespaces, [NAMESPACES.experiments], 'it watches where its Role is');
  });

  it('20-api: every experiment container gets a request and a memory limit (LimitRange), the namespace a quota; the database admits API pods from that namespace only', () => {
    const manifests = chart('20-api');
    const limitRange = find(manifests, 'LimitRange', 'loadlab-experiments').spec as { limits: { type: string; defaultRequest: Record<string, string>; max: Record<string, string> }[] };
    assert.deepEqual(limitRange.limits[0]!.defaultRequest, { cpu: '100m', memory: '128Mi' });
    assert.deepEqual(Object.keys(limitRange.limits[0]!.max), ['memory'], 'no CPU maximum (it would become every container\'s CPU limit)');
    const quota = find(manifests, 'ResourceQuota', 'loadlab-experiments').spec as { hard: Record<string, string> };
    assert.deepEqual(Object.keys(quota.hard).sort(), ['limits.memory', 'pods', 'requests.cpu', 'requests.memory']);
    const database = find(chart('30-timescaledb'), 'NetworkPolicy', 'timescaledb').spec as { ingress: { from: Record<string, unknown>[] }[] };
    const apiPeer = database.ingress[0]!.from.find((peer) => JSON.stringify(peer).includes('"api"'))!;
    assert.deepEqual(apiPeer.namespaceSelector, { matchLabels: { 'kubernetes.io/metadata.name': NAMESPACES.experiments } }, 'a namespace name, which no tenant can give their own namespace');
  });

  it('20-api: the experiments namespace enforces restricted, denies by default, and opens generator → API → TimescaleDB', () => {
    const manifests = chart('20-api');
    assert.equal(find(manifests, 'Namespace', NAMESPACES.experiments).metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    const names = manifests.filter((m) => m.kind === 'NetworkPolicy').map((m) => m.metadata.name).sort();
    assert.deepEqual(names, ['default-deny', 'loadlab-api', 'loadlab-load-generator']);
    // Prometheus (in its namespace) may scrape the driver pods' metrics port, and nothing else may.
    const generators = find(manifests, 'NetworkPolicy', 'loadlab-load-generator').spec as { ingress: { from: { namespaceSelector?: { matchLabels: Record<string, string> } }[]; ports: { port: number }[] }[] };
    const scrape = generators.ingress.find((rule) => rule.ports.some((port) => port.port === DRIVER_METRICS_PORT));
    assert.deepEqual(scrape?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NAMESPACES.monitoring } } }]);
  });

  it('40-monitoring: the monitoring namespace denies ingress by default; from outside it only the operator and the load generators reach Prometheus', () => {
    const policies = chart('40-monitoring').filter((m) => m.kind === 'NetworkPolicy');
    for (const policy of policies) assert.equal(policy.metadata.namespace, NAMESPACES.monitoring);
    type Peer = { namespaceSelector?: { matchLabels: Record<string, string> }; podSelector?: Selector };
    type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values: string[] }[] };
    type Policy = { podSelector: Selector; policyTypes: string[]; ingress?: { from?: Peer[]; ports?: { port: number }[] }[] };
    const spec = (name: string) => find(policies, 'NetworkPolicy', name).spec as Policy;
    assert.deepEqual(spec('default-deny-ingress'), { podSelector: {}, policyTypes: ['Ingress'] });
    // Every rule that admits a peer outside the namespace names who, or is one port no series is written to.
    for (const policy of policies) {
      for (const rule of (policy.spec as Policy).ingress ?? []) {
        if (!rule.from) assert.deepEqual(rule.ports, [{ protocol: 'TCP', port: 10250 }], `${policy.metadata.name}: open to any address only on the webhook port`);
        for (const peer of rule.from ?? []) assert.ok(peer.podSelector, `${policy.metadata.name}: ${JSON.stringify(peer)} selects pods`);
      }
    }
    const prometheus = spec('prometheus');
    const selects = (selector: Selector, labels: Record<string, string>) =>
      Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
      (selector.matchExpressions ?? []).every((e) => e.operator === 'In' && e.values.includes(labels[e.key] ?? ''));
    const admits = (namespace: string, labels: Record<string, string>) =>
      prometheus.ingress!.some((rule) => rule.from!.some((peer) => peer.namespaceSelector?.matchLabels['kubernetes.io/metadata.name'] === namespace && selects(peer.podSelector!, labels)));
    const job = buildDriverJob(driverExperiment(), { runId: 'r1', image: 'x', plan: buildTrafficPlan(driverExperiment()), phaseRange: { from: 0, to: 1 }, tokenSecret: 'x'.repeat(32), metricsLingerS: 30 });
    assert.ok(admits(NAMESPACES.experiments, job.spec.template.metadata!.labels!), 'a driver pod in the experiments namespace');
    const operatorPod = (find(chart('10-operator'), 'Deployment', 'loadlab-operator').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    assert.ok(admits(NAMESPACES.system, operatorPod), 'the operator');
    assert.ok(!admits(NAMESPACES.experiments, { ...job.spec.template.metadata!.labels!, 'app.kubernetes.io/component': 'api' }), 'an API pod');
    assert.ok(!admits('elsewhere', job.spec.template.metadata!.labels!), 'a pod labelled a generator in another namespace');
    assert.deepEqual(prometheus.ingress!.flatMap((rule) => rule.ports), [{ protocol: 'TCP', port: 9090 }]);
  });

  it('10-operator: out to the API server on its ports only, in a policy of its own that cluster.sh install replaces by address', () => {
    const policies = chart('10-operator').filter((m) => m.kind === 'NetworkPolicy');
    const open = policies.filter((m) => (m.spec as { egress?: { to?: unknown }[] }).egress?.some((rule) => !rule.to));
    assert.deepEqual(open.map((m) => m.metadata.name), [OPERATOR_APISERVER_POLICY]);
    assert.deepEqual((open[0]!.spec as { egress: unknown[] }).egress, [{ ports: [{ protocol: 'TCP', port: 443 }, { protocol: 'TCP', port: 6443 }] }]);
  });

  it('30-timescaledb: a StatefulSet on the timescale image with a PVC, settings, and postgres_exporter beside it', () => {
    const set = find(chart('30-timescaledb'), 'StatefulSet', 'timescaledb');
    const spec = set.spec as { volumeClaimTemplates: { spec: { resources: { requests: { storage: string } } } }[]; template: { spec: { containers: { name: string; image: string; args?: string[] }[] } } };
    assert.equal(spec.volumeClaimTemplates[0]!.spec.resources.requests.storage, '20Gi');
    const [db, exporter] = spec.template.spec.containers;
    assert.match(db!.image, /^timescale\/timescaledb:2\.23\./);
    assert.ok(db!.args!.includes('shared_preload_libraries=timescaledb,pg_stat_statements'));
    assert.equal(exporter!.name, 'postgres-exporter');
  });

  it('40-monitoring: PodMonitors label series experiment=<namespace>/<pod label> and run=<pod label>', () => {
    const monitors = chart('40-monitoring').filter((m) => m.kind === 'PodMonitor');
    assert.deepEqual(monitors.map((m) => m.metadata.name).sort(), ['loadlab-api', 'loadlab-load-generator', 'loadlab-operator', 'timescaledb']);
    // The loadlab engine's driver pods: the same labels, job="driver", their Job's metrics port.
    const drivers = find(monitors, 'PodMonitor', 'loadlab-load-generator').spec as { namespaceSelector: unknown; selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; relabelings: unknown }[] };
    assert.deepEqual(drivers.namespaceSelector, { any: true });
    assert.deepEqual(drivers.podMetricsEndpoints[0]!.relabelings, LOAD_GENERATOR_RELABELINGS);
    assert.equal(drivers.podMetricsEndpoints[0]!.port, DRIVER_METRICS_PORT_NAME);
    const job = buildDriverJob(driverExperiment(), { runId: 'r1', image: 'x', plan: buildTrafficPlan(driverExperiment()), phaseRange: { from: 0, to: 1 }, tokenSecret: 'x'.repeat(32), metricsLingerS: 30 });
    const podLabels = job.spec.template.metadata!.labels!;
    for (const [key, value] of Object.entries(drivers.selector.matchLabels)) assert.equal(podLabels[key], value, `the PodMonitor selects the driver pods (${key})`);
    assert.ok(job.spec.template.spec!.containers[0]!.ports!.some((port) => port.name === drivers.podMetricsEndpoints[0]!.port), 'on a port their container names');
    const api = find(monitors, 'PodMonitor', 'loadlab-api').spec as { namespaceSelector: unknown; podMetricsEndpoints: { relabelings: unknown }[] };
    assert.deepEqual(api.namespaceSelector, { any: true });
    assert.deepEqual(api.podMetricsEndpoints[0]!.relabelings, EXPERIMENT_RELABELINGS);
    // What Prometheus does with them: source labels joined by the separator, matched by the regex.
    const [experiment, run] = EXPERIMENT_RELABELINGS;
    assert.deepEqual(experiment!.sourceLabels, ['__meta_kubernetes_namespace', '__meta_kubernetes_pod_label_loadlab_dev_experiment']);
    assert.equal(experiment!.separator, '/');
    assert.ok(new RegExp(`^${experiment!.regex}$`).test('lab/seed-20k') && !new RegExp(`^${experiment!.regex}$`).test('lab/'), 'an unlabelled pod gets no experiment label');
    assert.equal(run!.targetLabel, 'run');
    const values = parse(extraFiles()['values/kube-prometheus-stack.yaml']!) as { prometheus: { prometheusSpec: Record<string, unknown> } };
    assert.equal(values.prometheus.prometheusSpec.enableRemoteWriteReceiver, true, 'k6 remote-writes into Prometheus');
    assert.equal(values.prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues, false, 'our PodMonitors are selected');
  });

  it('50-dashboards: the experiment dashboard in a ConfigMap with the Grafana sidecar label', () => {
    const [namespace, configMap] = chart('50-dashboards');
    assert.equal(namespace!.kind, 'Namespace');
    assert.equal(configMap!.metadata.labels?.grafana_dashboard, '1');
    const dashboard = JSON.parse((configMap!.data as Record<string, string>)[`${DASHBOARD_UID}.json`]!);
    assert.equal(dashboard.uid, 'loadlab-experiment');
    assert.deepEqual(dashboard.templating.list.map((v: { name: string }) => v.name), ['datasource', 'namespace', 'experiment', 'run', 'database', 'database_pod']);
    const titles = dashboard.panels.map((p: { title: string }) => p.title);
    for (const title of ['Fleet size', 'Offered vs achieved rate', 'Latency percentiles (server, device routes)', 'Error rate', 'Breaking point']) assert.ok(titles.includes(title), title);
    assert.ok(dashboardQueries(dashboard).length >= 45);
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique (Grafana keys panels by id)');
  });
});

describe('static checks over every rendered manifest', () => {
  const manifests = allManifests();

  it('Pod Security "restricted" on every pod and container', () => {
    const problems: string[] = [];
    for (const { name, spec } of podTemplates(manifests)) {
      const pod = spec.securityContext ?? {};
      if ((pod.seccompProfile as { type?: string } | undefined)?.type !== 'RuntimeDefault') problems.push(`${name}: seccompProfile RuntimeDefault`);
      for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
        const sc = container.securityContext ?? {};
        const where = `${name}/${container.name}`;
        if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push(`${where}: runAsNonRoot`);
        if (typeof (sc.runAsUser ?? pod.runAsUser) !== 'number' || (sc.runAsUser ?? pod.runAsUser) === 0) problems.push(`${where}: a numeric non-root runAsUser`);
        if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation false`);
        if (JSON.stringify((sc.capabilities as { drop?: string[] } | undefined)?.drop) !== '["ALL"]') problems.push(`${where}: drop ALL capabilities`);
        if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem`);
        if (sc.privileged === true) problems.push(`${where}: privileged`);
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(podTemplates(manifests).length >= 2);
  });

  it('requests and limits (CPU and memory) on every container', () => {
    const missing = podTemplates(manifests).flatMap(({ name, spec }) =>
      spec.containers.flatMap((container: Container) =>
        ['requests', 'limits'].flatMap((kind) =>
          ['cpu', 'memory'].filter((resource) => !container.resources?.[kind as 'requests' | 'limits']?.[resource]).map((resource) => `${name}/${container.name}: ${kind}.${resource}`),
        ),
      ),
    );
    assert.deepEqual(missing, []);
  });

  it('RBAC: no wildcards; Secrets only created (the API\'s), never read', () => {
    const rules = manifests.filter((m) => m.kind === 'ClusterRole' || m.kind === 'Role').flatMap((m) => m.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]);
    assert.ok(rules.length > 0);
    for (const rule of rules) {
      for (const value of [...rule.apiGroups, ...rule.resources, ...rule.verbs]) assert.notEqual(value, '*', JSON.stringify(rule));
      if (rule.resources.includes('secrets')) assert.deepEqual(rule.verbs, ['create'], JSON.stringify(rule));
    }
  });

  it('no Secret is shipped (cluster:up creates the database Secret with a random password)', () => {
    assert.deepEqual(manifests.filter((m) => m.kind === 'Secret'), []);
  });

  it('every namespace we ship pods into denies by default', () => {
    const withPods = new Set(podTemplates(manifests).map(({ name }) => manifests.find((m) => `${m.kind}/${m.metadata.name}` === name)!.metadata.namespace));
    for (const namespace of withPods) {
      assert.ok(manifests.some((m) => m.kind === 'NetworkPolicy' && m.metadata.name === 'default-deny' && m.metadata.namespace === namespace), `default-deny in ${namespace}`);
    }
  });
});
