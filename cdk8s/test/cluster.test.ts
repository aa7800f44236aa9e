import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dashboardQueries, experimentDashboard, interpolate } from '@loadlab/operator/dashboard';
import { DATABASE_RESOURCE_SELECTOR } from '@loadlab/operator/names';
import { parse } from 'yaml';
import { OPERATOR_APISERVER_POLICY } from '../src/charts/operator.js';
import { DATABASE_SECRET, NAMESPACES, NODE_ROLE_LABEL, PORTS } from '../src/settings.js';
import { experimentsOnCluster } from './cluster-experiments.js';
import { figure, installLoadlab, nodeVersion, root, startCluster, stopCluster, waitFor, type ClusterClient, type Condition, type List, type ObjectMeta } from './cluster-support.js';

/*
 * charts/loadlab/ on a real Kubernetes cluster: the local one-host cluster of scripts/local-cluster/
 * (etcd and the control plane as host processes, four kubelets on containerd laid out as
 * kind-config.yaml, kube-proxy, kube-router enforcing NetworkPolicies, CoreDNS, prometheus-operator
 * and Prometheus), started once for this file (these tests, then cluster-experiments.ts's) and
 * always removed at the end.
 *
 * loadlab is installed as a user installs it, by `scripts/cluster.sh install --provider=local`:
 * k6-operator's TestRun CRD (read from ../shared/vendor by path), the database Secret made by the
 * same code as on kind, and charts/loadlab/ applied unchanged but for two images: PostgreSQL 15
 * (Debian's) stands in for TimescaleDB, whose image cannot be pulled here and which has no Debian
 * package, and Debian's postgres_exporter 0.11 for the chart's 0.17 (its image drops the
 * --collector.stat_statements flag 0.11 lacks, saying so). Not here: k6 and k6-operator (AGPL), so
 * an experiment is provisioned and then waits for its TestRun; Grafana; kube-state-metrics (not
 * served by the Go module proxy); more than one host.
 */

const SYSTEM = NAMESPACES.system;
const EXPERIMENTS = NAMESPACES.experiments;
/** A namespace of our own, outside the charts: the NetworkPolicy clients. */
const OUTSIDE = 'loadlab-cluster-test';
const EXPERIMENT = 'cluster-test';
const API_DEPLOYMENT = `${EXPERIMENT}-api`;
/**
 * For the NetworkPolicy clients: Node on Debian, which every worker holds. Named as
 * scripts/local-cluster/lib.sh names it, after the Node version package-lock.json pins.
 */
const CLIENT_IMAGE = `loadlab/node:${nodeVersion()}-bookworm`;

describe('charts/loadlab on a real cluster (scripts/local-cluster)', { timeout: 60 * 60_000 }, () => {
  let client: ClusterClient;
  const kubectl = (args: string[], options?: Parameters<ClusterClient['kubectl']>[1]) => client.kubectl(args, options);
  const json = <T>(args: string[]) => client.json<T>(args);
  const pods = (namespace: string, selector?: string) => client.pods(namespace, selector);
  const exec = (namespace: string, pod: string, container: string, command: string[], timeoutMs?: number) => client.exec(namespace, pod, container, command, timeoutMs);
  const query = (expr: string) => client.query(expr);

  before(async () => {
    client = await startCluster();
  }, { timeout: 35 * 60_000 });

  it("every node is Ready with kind-config.yaml's roles: labels and taints", { timeout: 60_000 }, async () => {
    type KindNode = { role: string; labels?: Record<string, string>; kubeadmConfigPatches?: string[] };
    const config = parse(readFileSync(join(root, 'kind-config.yaml'), 'utf8')) as { nodes: KindNode[] };
    const expected = config.nodes.map((node) => {
      const taints = (node.kubeadmConfigPatches ?? []).flatMap((patch) => (parse(patch) as { nodeRegistration?: { taints?: { key: string; value: string; effect: string }[] } }).nodeRegistration?.taints ?? []);
      // kubeadm (and so kind) taints and labels the control plane itself.
      if (node.role === 'control-plane') taints.push({ key: 'node-role.kubernetes.io/control-plane', value: '', effect: 'NoSchedule' });
      return { role: node.role === 'control-plane' ? 'control-plane' : node.labels?.[NODE_ROLE_LABEL], taints: taints.map((t) => `${t.key}=${t.value}:${t.effect}`).sort() };
    });
    type Node = { metadata: ObjectMeta; spec: { taints?: { key: string; value?: string; effect: string }[] }; status: { conditions: Condition[] } };
    const nodes = (await json<List<Node>>(['get', 'nodes'])).items;
    const actual = nodes.map((node) => ({
      name: node.metadata.name,
      ready: node.status.conditions.find((c) => c.type === 'Ready')?.status,
      role: 'node-role.kubernetes.io/control-plane' in (node.metadata.labels ?? {}) ? 'control-plane' : node.metadata.labels?.[NODE_ROLE_LABEL],
      taints: (node.spec.taints ?? []).map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`).sort(),
    }));
    for (const node of actual) assert.equal(node.ready, 'True', `${node.name} is Ready`);
    const byRole = (list: { role?: string | undefined; taints: string[] }[]) => list.map(({ role, taints }) => ({ role, taints })).sort((a, b) => String(a.role).localeCompare(String(b.role)));
    assert.deepEqual(byRole(actual), byRole(expected));
    console.log(`  nodes: ${actual.map((n) => `${n.name} (${n.role}; ${n.taints.join(', ') || 'no taint'})`).join('; ')}`);
  });

  it('installs as a user would (cluster.sh install --provider=local): every Deployment and StatefulSet becomes Available, without a Pod Security warning', { timeout: 20 * 60_000 }, async () => {
    const began = performance.now();
    const output = await installLoadlab();
    console.log(output.text.trimEnd().replace(/^/gm, '  '));
    assert.equal(output.code, 0, 'cluster.sh install succeeds');
    assert.doesNotMatch(output.text, /Warning:|PodSecurity|violate/i, 'applying the charts warns about nothing');

    type Workload = { kind: string; metadata: ObjectMeta; spec: { replicas?: number }; status: { readyReplicas?: number; availableReplicas?: number; updatedReplicas?: number; conditions?: Condition[] } };
    const workloads = await waitFor('every Deployment and StatefulSet of the charts to be available', 5 * 60_000, async () => {
      const items = (await json<List<Workload>>(['get', 'deployments,statefulsets', '-A', '-l', 'app.kubernetes.io/part-of=loadlab'])).items;
      const ready = items.every((w) =>
        w.kind === 'Deployment'
          ? w.status.conditions?.some((c) => c.type === 'Available' && c.status === 'True') && w.status.availableReplicas === w.spec.replicas && w.status.updatedReplicas === w.spec.replicas
          : w.status.readyReplicas === w.spec.replicas);
      return items.length > 0 && ready ? items : undefined;
    });
    assert.deepEqual(workloads.map((w) => `${w.kind}/${w.metadata.namespace}/${w.metadata.name}`).sort(), [
      `Deployment/${SYSTEM}/loadlab-operator`,
      `StatefulSet/${SYSTEM}/timescaledb`,
    ]);
    figure(`loadlab installed (TestRun CRD, Secret, charts) and every workload available in ${((performance.now() - began) / 1000).toFixed(0)} s`);

    // The Secret is the one cluster.sh makes: random passwords (the superuser's, the operator's admin's),
    // the operator's URL to the chart's database Service as the admin, which is no superuser.
    const secret = await json<{ data: Record<string, string> }>(['-n', SYSTEM, 'get', 'secret', DATABASE_SECRET.name]);
    const decoded = (key: string) => Buffer.from(secret.data[key] ?? '', 'base64').toString('utf8');
    assert.match(decoded(DATABASE_SECRET.passwordKey), /^[0-9a-f]{48}$/);
    assert.match(decoded(DATABASE_SECRET.adminPasswordKey), /^[0-9a-f]{48}$/);
    assert.notEqual(decoded(DATABASE_SECRET.adminPasswordKey), decoded(DATABASE_SECRET.passwordKey));
    assert.equal(decoded(DATABASE_SECRET.urlKey), `postgres://${DATABASE_SECRET.adminUser}:${decoded(DATABASE_SECRET.adminPasswordKey)}@timescaledb.${SYSTEM}.svc:${PORTS.postgres}/loadlab`);
  });

  it('Pod Security "restricted" admits every running pod of ours without a warning, and none was refused', { timeout: 3 * 60_000 }, async () => {
    for (const namespace of [SYSTEM, EXPERIMENTS]) {
      const labels = (await json<{ metadata: ObjectMeta }>(['get', 'namespace', namespace])).metadata.labels ?? {};
      assert.equal(labels['pod-security.kubernetes.io/enforce'], 'restricted', namespace);
    }
    const refused = (await json<List<{ reason: string; message: string; metadata: ObjectMeta }>>(['get', 'events', '-A', '--field-selector', 'reason=FailedCreate'])).items;
    assert.deepEqual(refused.map((e) => `${e.metadata.namespace}: ${e.message}`), [], 'no controller was refused a pod');
    // Each running pod, submitted again (as a server-side dry-run) into its restricted namespace:
    // admitted, and without a warning.
    const running = await pods(SYSTEM);
    assert.ok(running.length >= 3, `the operator's two replicas and the database run in ${SYSTEM}`);
    for (const pod of running) {
      const copy = { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${pod.metadata.name}-admission`, namespace: SYSTEM, labels: pod.metadata.labels }, spec: { ...pod.spec, nodeName: undefined } };
      let warnings = '';
      await kubectl(['create', '--dry-run=server', '-o', 'name', '-f', '-'], { stdin: JSON.stringify(copy), onStderr: (text) => (warnings += text) });
      assert.equal(warnings.trim(), '', `${pod.metadata.name}: ${warnings}`);
    }
  });

  it('the operator runs in-cluster from its image, as its ServiceAccount, two replicas: deleting the leader hands the Lease to the other within the lease duration', { timeout: 5 * 60_000 }, async () => {
    const operators = await pods(SYSTEM, 'app.kubernetes.io/component=operator');
    assert.equal(operators.length, 2);
    for (const pod of operators) {
      assert.equal(pod.spec.serviceAccountName, 'loadlab-operator');
      assert.equal(pod.spec.containers[0]!.image, 'loadlab/operator:dev');
      assert.equal(pod.status.containerStatuses?.[0]?.ready, true, pod.metadata.name);
      assert.equal(pod.spec.nodeName, 'loadlab-monitoring', 'the operator runs on the monitoring node');
    }
    type Lease = { spec: { holderIdentity?: string; leaseDurationSeconds: number; leaseTransitions?: number; acquireTime?: string; renewTime?: string } };
    const lease = async () => (await json<Lease>(['-n', SYSTEM, 'get', 'lease', 'loadlab-operator'])).spec;
    const names = operators.map((pod) => pod.metadata.name);
    // The operator's identity is <pod>_<pid>_<random> (a restarted container is a new candidate).
    const podOf = (identity?: string) => identity?.split('_')[0];
    const first = await waitFor('a leader', 60_000, async () => {
      const spec = await lease();
      return names.includes(podOf(spec.holderIdentity) ?? '') ? spec : undefined;
    });
    const leader = podOf(first.holderIdentity)!;
    const other = names.find((name) => name !== leader)!;

    const deleted = Date.now();
    await kubectl(['-n', SYSTEM, 'delete', 'pod', leader, '--wait=false']);
    const next = await waitFor('another replica to lead', 2 * 60_000, async () => {
      const spec = await lease();
      return spec.holderIdentity && podOf(spec.holderIdentity) !== leader ? spec : undefined;
    }, 250);
    const tookMs = Date.parse(next.acquireTime!) - deleted;
    // The deleted leader releases the Lease as it stops; a standby that polls every retry period
    // takes it at once. Either way it must not take longer than the Lease could have run.
    assert.ok(tookMs <= next.leaseDurationSeconds * 1000, `took the Lease ${tookMs} ms after the delete (lease duration ${next.leaseDurationSeconds} s)`);
    assert.equal(next.leaseTransitions, (first.leaseTransitions ?? 0) + 1);
    const holder = podOf(next.holderIdentity);
    figure(
      `leader election: deleted the leader ${leader}; ${holder === other ? 'the other replica' : 'its replacement'} ${holder} held the Lease ` +
        `${(tookMs / 1000).toFixed(1)} s later (lease duration ${next.leaseDurationSeconds} s)`,
    );
    await kubectl(['-n', SYSTEM, 'rollout', 'status', 'deployment/loadlab-operator', '--timeout=180s'], { timeoutMs: 190_000 });

    // Least privilege: write access only in the namespace it runs experiments in (a Role there), nothing cluster-wide.
    const canI = async (verb: string, resource: string, namespace: string) =>
      (await kubectl(['auth', 'can-i', verb, resource, '-n', namespace, `--as=system:serviceaccount:${SYSTEM}:loadlab-operator`]).catch((error: Error) => error.message)).trim();
    assert.equal(await canI('create', 'deployments', EXPERIMENTS), 'yes');
    for (const namespace of ['default', 'kube-system', SYSTEM, 'monitoring']) {
      assert.match(await canI('create', 'deployments', namespace), /\bno\b/, `create deployments in ${namespace}`);
      assert.match(await canI('list', 'loadexperiments.loadlab.dev', namespace), /\bno\b/, `list loadexperiments in ${namespace}`);
    }
    assert.match(await canI('get', 'secrets', EXPERIMENTS), /\bno\b/, 'reads no Secrets');
  });

  it('the database runs on its PersistentVolumeClaim (PostgreSQL standing in for TimescaleDB), with its exporter', { timeout: 2 * 60_000 }, async () => {
    const [pod] = await pods(SYSTEM, 'app.kubernetes.io/name=timescaledb');
    assert.ok(pod);
    assert.equal(pod.spec.nodeName, 'loadlab-sut');
    const claim = pod.spec.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName;
    assert.equal(claim, 'data-timescaledb-0');
    type Pvc = { spec: { volumeName: string; storageClassName: string }; status: { phase: string } };
    const pvc = await json<Pvc>(['-n', SYSTEM, 'get', 'pvc', claim]);
    assert.equal(pvc.status.phase, 'Bound');
    assert.equal(pvc.spec.storageClassName, 'standard', 'the default StorageClass');
    type Pv = { spec: { nodeAffinity: { required: { nodeSelectorTerms: { matchExpressions: { values: string[] }[] }[] } } } };
    const pv = await json<Pv>(['get', 'pv', pvc.spec.volumeName]);
    assert.deepEqual(pv.spec.nodeAffinity.required.nodeSelectorTerms[0]!.matchExpressions[0]!.values, ['loadlab-sut'], 'the volume is on the pod\'s node');
    // Over the local socket, where the image's pg_hba trusts local logins.
    const psql = (sql: string) => exec(SYSTEM, pod.metadata.name, 'timescaledb', ['psql', '-U', 'postgres', '-d', 'loadlab', '-tAc', sql]);
    assert.equal((await psql('show data_directory')).trim(), '/var/lib/postgresql/data/pgdata', 'the data directory is on the claim\'s mount');
    assert.equal((await psql('show shared_preload_libraries')).trim(), 'pg_stat_statements', 'timescaledb is not preloaded (PostgreSQL stands in for it)');
    assert.match(await kubectl(['-n', SYSTEM, 'logs', pod.metadata.name, '-c', 'timescaledb']), /stands in for TimescaleDB: not preloading timescaledb/);
    assert.match(await kubectl(['-n', SYSTEM, 'logs', pod.metadata.name, '-c', 'postgres-exporter']), /ignoring --collector\.stat_statements/);
    console.log(`  database: ${(await psql('select version()')).trim()} on ${pvc.spec.volumeName} (${claim})`);
    // The operator's admin may create roles and schemas, and is no superuser (cluster.sh install made it).
    assert.equal((await psql(`select rolsuper, rolcreaterole, has_database_privilege(oid, 'loadlab', 'CREATE') from pg_roles where rolname = '${DATABASE_SECRET.adminUser}'`)).trim(), 'f|t|t');
  });

  // --- a LoadExperiment: the operator provisions its API ---------------------------------------------
  let runId = '';
  let apiPod = '';

  it('a LoadExperiment makes the in-cluster operator provision the API, which runs against the database', { timeout: 6 * 60_000 }, async () => {
    const experiment = {
      apiVersion: 'loadlab.dev/v1alpha1',
      kind: 'LoadExperiment',
      metadata: { name: EXPERIMENT, namespace: EXPERIMENTS },
      spec: {
        fleet: { devices: 20, reportInterval: '2s', pollInterval: '2s' },
        load: { stages: [{ devices: 20, duration: '5s' }, { devices: 20, duration: '15s', shape: 'hold' }] },
        slo: { latencyPercentile: 95, latencyThreshold: '1s', maxErrorRate: 0.05 },
        // A CPU limit: cAdvisor then reports the CFS throttling series the analysis reads.
        target: { resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { cpu: '1', memory: '512Mi' } } },
        // k6-operator does not run here: the run waits for its TestRun, well within this.
        timeout: '30m',
      },
    };
    const began = performance.now();
    await kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(experiment) });
    type Experiment = { metadata: ObjectMeta; status?: { phase?: string; runId?: string; conditions?: Condition[] } };
    const running = await waitFor('the experiment to provision its API and start its run', 5 * 60_000, async () => {
      const object = await json<Experiment>(['-n', EXPERIMENTS, 'get', 'loadexperiment', EXPERIMENT]);
      assert.notEqual(object.status?.phase, 'Failed', JSON.stringify(object.status?.conditions));
      return object.status?.phase === 'Running' ? object : undefined;
    }, 2_000);
    runId = running.status!.runId!;
    figure(`LoadExperiment applied → API provisioned, data prepared, phase Running in ${((performance.now() - began) / 1000).toFixed(0)} s (run ${runId})`);
    const conditions = Object.fromEntries((running.status?.conditions ?? []).map((c) => [c.type, c.status]));
    assert.equal(conditions.ApiReady, 'True');
    assert.equal(conditions.DatabaseReady, 'True');
    // It wrote the k6 TestRun (the vendored CRD), which nothing here runs.
    const testRuns = (await json<List<{ metadata: ObjectMeta }>>(['-n', EXPERIMENTS, 'get', 'testruns.k6.io'])).items;
    assert.equal(testRuns.length, 1);
    assert.deepEqual(testRuns[0]!.metadata.ownerReferences?.map((o) => o.uid), [running.metadata.uid]);

    const api = await pods(EXPERIMENTS, `loadlab.dev/experiment=${EXPERIMENT}`);
    assert.equal(api.length, 1);
    apiPod = api[0]!.metadata.name;
    assert.equal(api[0]!.metadata.labels?.['loadlab.dev/run'], runId);
    assert.equal(api[0]!.spec.nodeName, 'loadlab-sut', 'the API lands on the system-under-test node');
    // The experiments namespace's quota counts it.
    const quota = await json<{ status: { used: Record<string, string> } }>(['-n', EXPERIMENTS, 'get', 'resourcequota', 'loadlab-experiments']);
    assert.ok(Number(quota.status.used.pods) >= 1, JSON.stringify(quota.status));
  });

  it('every container of ours runs as non-root on a read-only root filesystem', { timeout: 3 * 60_000 }, async () => {
    const checked: string[] = [];
    for (const namespace of [SYSTEM, EXPERIMENTS]) {
      for (const pod of await pods(namespace)) {
        for (const container of pod.spec.containers) {
          const uid = Number((await exec(namespace, pod.metadata.name, container.name, ['id', '-u'])).trim());
          assert.notEqual(uid, 0, `${pod.metadata.name}/${container.name} runs as root`);
          assert.equal(uid, container.securityContext?.runAsUser ?? pod.spec.securityContext?.runAsUser, `${pod.metadata.name}/${container.name}: the uid of its securityContext`);
          await assert.rejects(
            exec(namespace, pod.metadata.name, container.name, ['touch', '/loadlab-write-test']),
            /Read-only file system/,
            `${pod.metadata.name}/${container.name}: writing / fails`,
          );
          checked.push(`${pod.metadata.name}/${container.name} uid ${uid}`);
        }
      }
    }
    assert.equal(checked.length, 5, 'two operators, the database and its exporter, the API');
    console.log(`  non-root, read-only /: ${checked.join('; ')}`);
  });

  it("Prometheus scrapes the API through the chart's PodMonitor, relabelled with experiment and run", { timeout: 4 * 60_000 }, async () => {
    const selector = `experiment="${EXPERIMENTS}/${EXPERIMENT}",run="${runId}"`;
    const up = await waitFor(`up{${selector}} = 1`, 3 * 60_000, async () => {
      const result = await query(`up{${selector}}`);
      return result.length === 1 && result[0]!.value[1] === '1' ? result[0]! : undefined;
    }, 2_000);
    assert.equal(up.metric.pod, apiPod);
    assert.equal(up.metric.namespace, EXPERIMENTS);
    const created = (await json<{ metadata: { creationTimestamp: string } }>(['-n', EXPERIMENTS, 'get', 'pod', apiPod])).metadata.creationTimestamp;
    figure(`Prometheus: up{${selector}} = 1 (pod ${apiPod}, job ${up.metric.job}), seen ${((Date.now() - Date.parse(created)) / 1000).toFixed(0)} s after the pod was created`);
    // The database's exporter, through its PodMonitor (job from the pod's name label).
    const pg = await waitFor('pg_up{job="timescaledb"} = 1', 2 * 60_000, async () => {
      const result = await query('pg_up{job="timescaledb"}');
      return result[0]?.value[1] === '1' ? result[0] : undefined;
    }, 2_000);
    assert.equal(pg.metric.pod, 'timescaledb-0');
  });

  it("the kubelets' cAdvisor series the analysis reads are in Prometheus, for the API's and the database's containers", { timeout: 4 * 60_000 }, async () => {
    // The dashboard's panels are the analysis' query catalog (Kubernetes flavour): run every one
    // that reads cAdvisor for the API, as Grafana would send it.
    const values = { namespace: EXPERIMENTS, experiment: EXPERIMENT, run: runId, database: 'job="timescaledb"', database_pod: DATABASE_RESOURCE_SELECTOR, __rate_interval: '1m' };
    const cadvisor = dashboardQueries(experimentDashboard()).filter((q) => /container_/.test(q.expr));
    const apiQueries = cadvisor.filter((q) => /container="api"/.test(q.expr) && !/kube_pod_container/.test(q.expr));
    assert.ok(apiQueries.length >= 2, 'the catalog reads the API container\'s CPU and throttling from cAdvisor');
    for (const { panel, expr } of apiQueries) {
      const promql = interpolate(expr, values);
      const result = await waitFor(`data for "${panel}": ${promql}`, 3 * 60_000, async () => {
        const series = await query(promql);
        return series.length > 0 ? series : undefined;
      }, 3_000);
      assert.ok(result.every((s) => s.metric.pod === undefined || s.metric.pod === apiPod), `${panel}: ${JSON.stringify(result)}`);
      console.log(`  ${panel}: ${result.map((s) => `${s.metric.pod ?? ''} ${Number(s.value[1]).toPrecision(3)}`).join(', ')}`);
    }
    // Every cAdvisor series the catalog names, for the container it names, where that container runs.
    const metrics = [...new Set(cadvisor.flatMap((q) => [...q.expr.matchAll(/(?<![a-z_])(container_[a-z_]+)\{[^}]*container="([a-z0-9]+)"/g)].map((m) => `${m[1]}|${m[2]}`)))];
    const where: Record<string, string> = { api: `namespace="${EXPERIMENTS}",pod="${apiPod}"`, timescaledb: `namespace="${SYSTEM}",pod="timescaledb-0"` };
    const missing: string[] = [];
    for (const entry of metrics) {
      const [metric, container] = entry.split('|') as [string, string];
      if (!where[container]) continue; // k6's runners: no k6 here
      const series = await query(`${metric}{${where[container]},container="${container}"}`);
      if (series.length === 0) missing.push(`${metric}{container="${container}"}`);
    }
    assert.deepEqual(missing, []);
    console.log(`  cAdvisor series present: ${metrics.filter((m) => where[m.split('|')[1]!]).map((m) => m.replace('|', ' for ')).join(', ')}`);
    // The shared database's container, selected where the charts run it (not among the experiment's pods).
    for (const { panel, expr } of cadvisor.filter((q) => /container="timescaledb"/.test(q.expr) && !/kube_pod_container/.test(q.expr))) {
      const promql = interpolate(expr, values);
      const result = await waitFor(`data for "${panel}": ${promql}`, 60_000, async () => {
        const series = await query(promql);
        return series.length > 0 ? series : undefined;
      }, 3_000);
      console.log(`  ${panel}: ${result.map((s) => Number(s.value[1]).toPrecision(3)).join(', ')} cores`);
    }
  });

  it("NetworkPolicies are enforced: a pod in another namespace cannot reach the database, the API can; only the operator and the experiments' load generators reach Prometheus", { timeout: 4 * 60_000 }, async () => {
    // Two clients side by side in a namespace of ours, on the load node (so across nodes to the
    // database on the sut node): the same pod but for the one label the database's policy admits
    // from any namespace (app.kubernetes.io/component=api). Only the policy tells them apart.
    await kubectl(['create', 'namespace', OUTSIDE]);
    const client = (name: string, labels: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: OUTSIDE, labels },
      spec: {
        nodeSelector: { [NODE_ROLE_LABEL]: 'load' },
        tolerations: [{ key: NODE_ROLE_LABEL, operator: 'Equal', value: 'load', effect: 'NoSchedule' }],
        terminationGracePeriodSeconds: 0,
        securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'client', image: CLIENT_IMAGE, imagePullPolicy: 'Never', command: ['sleep', 'infinity'],
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        }],
      },
    });
    const generatorLabels = { 'app.kubernetes.io/component': 'load-generator' };
    await kubectl(['apply', '-f', '-'], {
      stdin: JSON.stringify({
        apiVersion: 'v1', kind: 'List',
        items: [
          client('outsider', { app: 'outsider' }), client('api-labelled', { 'app.kubernetes.io/component': 'api' }), client('generator-labelled', generatorLabels),
          // The same labels in the experiments namespace: what the Prometheus policy admits.
          { ...client('generator', generatorLabels), metadata: { name: 'generator', namespace: EXPERIMENTS, labels: generatorLabels } },
        ],
      }),
    });
    await kubectl(['-n', OUTSIDE, 'wait', '--for=condition=Ready', 'pod/outsider', 'pod/api-labelled', 'pod/generator-labelled', '--timeout=120s'], { timeoutMs: 130_000 });
    await kubectl(['-n', EXPERIMENTS, 'wait', '--for=condition=Ready', 'pod/generator', '--timeout=120s'], { timeoutMs: 130_000 });
    const database = `timescaledb.${SYSTEM}.svc`;
    const prometheus = `prometheus-operated.${NAMESPACES.monitoring}.svc`;
    // "connected", or the error code, within 3 s.
    const connectScript = (host: string, port: number) => `const s=require("net").connect(${port},"${host}");s.setTimeout(3000,()=>{console.log("timeout");process.exit(0)});` +
      's.on("connect",()=>{console.log("connected");process.exit(0)});s.on("error",e=>{console.log(e.code);process.exit(0)})';
    const connectTo = async (host: string, port: number, namespace: string, pod: string, container: string) => (await exec(namespace, pod, container, ['node', '-e', connectScript(host, port)])).trim();
    const connect = (namespace: string, pod: string, container: string) => connectTo(database, PORTS.postgres, namespace, pod, container);

    // kube-router admits a new pod's address once it has seen the pod: the admitted client's
    // first attempts may still be refused.
    const admitted = await waitFor("the experiment's API to reach the database", 90_000, async () => ((await connect(EXPERIMENTS, apiPod, 'api')) === 'connected' ? 'connected' : undefined), 2_000);
    assert.equal(admitted, 'connected');
    for (let attempt = 0; attempt < 3; attempt++) {
      assert.notEqual(await connect(OUTSIDE, 'outsider', 'client'), 'connected', 'a pod in another namespace reaches the database');
      // The label alone opened the database before the policy named the experiments namespace.
      assert.notEqual(await connect(OUTSIDE, 'api-labelled', 'client'), 'connected', 'a pod that labels itself an API, in another namespace, reaches the database');
    }
    const refusedAs = await connect(OUTSIDE, 'outsider', 'client');
    const labelledRefusedAs = await connect(OUTSIDE, 'api-labelled', 'client');
    console.log(`  to ${database}:${PORTS.postgres}: from ${OUTSIDE}/outsider "${refusedAs}", from ${OUTSIDE}/api-labelled "${labelledRefusedAs}", from ${EXPERIMENTS}/${apiPod} "connected"`);

    // Prometheus (its remote-write receiver and its queries share the port): the operator and the
    // load generators of the experiments namespace, no one else, not even a pod with a
    // generator's labels in another namespace, nor the experiment's API.
    const [operatorPod] = await pods(SYSTEM, 'app.kubernetes.io/component=operator');
    const toPrometheus = (namespace: string, pod: string, container: string) => connectTo(prometheus, PORTS.prometheus, namespace, pod, container);
    const fromGenerator = await waitFor('a load generator to reach Prometheus', 90_000, async () => ((await toPrometheus(EXPERIMENTS, 'generator', 'client')) === 'connected' ? 'connected' : undefined), 2_000);
    assert.equal(fromGenerator, 'connected');
    assert.equal(await toPrometheus(SYSTEM, operatorPod!.metadata.name, 'operator'), 'connected', 'the operator reaches Prometheus');
    const refused: string[] = [];
    for (const [namespace, pod, container] of [[OUTSIDE, 'outsider', 'client'], [OUTSIDE, 'generator-labelled', 'client'], [EXPERIMENTS, apiPod, 'api']] as const) {
      const outcome = await toPrometheus(namespace, pod, container);
      assert.notEqual(outcome, 'connected', `${namespace}/${pod} reaches Prometheus`);
      refused.push(`from ${namespace}/${pod} "${outcome}"`);
    }
    console.log(`  to ${prometheus}:${PORTS.prometheus}: ${refused.join(', ')}, from ${EXPERIMENTS}/generator and the operator "connected"`);

    // The operator's way out to the API server names its addresses, not any address.
    const egress = await json<{ spec: { egress: { to?: { ipBlock?: { cidr: string } }[] }[] } }>(['-n', SYSTEM, 'get', 'networkpolicy', OPERATOR_APISERVER_POLICY]);
    const cidrs = egress.spec.egress.flatMap((rule) => rule.to?.map((peer) => peer.ipBlock?.cidr) ?? ['any address']);
    const endpoints = await json<{ items: { endpoints: { addresses: string[] }[] }[] }>(['-n', 'default', 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=kubernetes']);
    for (const address of endpoints.items.flatMap((slice) => slice.endpoints.flatMap((endpoint) => endpoint.addresses))) assert.ok(cidrs.includes(`${address}/32`), `${address} in ${cidrs.join(', ')}`);
    assert.ok(!cidrs.includes('any address') && !cidrs.includes('0.0.0.0/0'), cidrs.join(', '));
    console.log(`  the operator's egress to the API server: ${cidrs.join(', ')}`);
    await kubectl(['-n', EXPERIMENTS, 'delete', 'pod', 'generator', '--wait=false']);
    await kubectl(['delete', 'namespace', OUTSIDE, '--wait=false']);
  });

  it("deleting the LoadExperiment: the operator's finalizer drops its schema, then the garbage collector deletes its Deployment", { timeout: 4 * 60_000 }, async () => {
    const [database] = await pods(SYSTEM, 'app.kubernetes.io/name=timescaledb');
    const schemas = async () =>
      (await exec(SYSTEM, database!.metadata.name, 'timescaledb', ['psql', '-U', 'postgres', '-d', 'loadlab', '-tAc', "select nspname from pg_namespace where nspname like 'loadlab\\_%' and nspname <> 'loadlab_operator' order by 1"])).trim().split('\n').filter(Boolean);
    // The operator's own schema: the leadership fence its terms claimed (experiment-database.ts).
    const fence = (await exec(SYSTEM, database!.metadata.name, 'timescaledb', ['psql', '-U', 'postgres', '-d', 'loadlab', '-tAc', 'select lease, token from loadlab_operator.leader_fence'])).trim();
    assert.match(fence, new RegExp(`^${SYSTEM}/loadlab-operator\\|\\d+$`), 'the leader claimed the fence before its destructive work');
    const before = await schemas();
    assert.equal(before.length, 1, `the experiment's schema: ${before.join(', ')}`);
    // Made by the non-superuser admin: only such an admin grants itself the experiment's role.
    assert.equal((await exec(SYSTEM, database!.metadata.name, 'timescaledb', ['psql', '-U', 'postgres', '-d', 'loadlab', '-tAc', `select pg_has_role('${DATABASE_SECRET.adminUser}', '${before[0]}', 'MEMBER')`])).trim(), 't');
    const deployment = await json<{ metadata: ObjectMeta }>(['-n', EXPERIMENTS, 'get', 'deployment', API_DEPLOYMENT]);
    const experimentUid = (await json<{ metadata: ObjectMeta }>(['-n', EXPERIMENTS, 'get', 'loadexperiment', EXPERIMENT])).metadata.uid;
    assert.deepEqual(deployment.metadata.ownerReferences?.map((o) => o.uid), [experimentUid]);

    const began = performance.now();
    await kubectl(['-n', EXPERIMENTS, 'delete', 'loadexperiment', EXPERIMENT, '--wait=false']);
    await waitFor('the LoadExperiment to be gone (its finalizer let go)', 2 * 60_000, async () => {
      const left = await kubectl(['-n', EXPERIMENTS, 'get', 'loadexperiments', '-o', 'name']);
      return left.trim() === '' ? true : undefined;
    });
    const finalized = performance.now();
    await waitFor(`the garbage collector to delete ${API_DEPLOYMENT}`, 2 * 60_000, async () => {
      const left = await kubectl(['-n', EXPERIMENTS, 'get', 'deployments,services,configmaps,testruns.k6.io', '-l', `loadlab.dev/experiment=${EXPERIMENT}`, '-o', 'name']);
      return left.trim() === '' ? true : undefined;
    });
    assert.deepEqual(await schemas(), [], 'the finalizer dropped the schema');
    figure(
      `deleting the LoadExperiment: finalizer done in ${((finalized - began) / 1000).toFixed(1)} s, ` +
        `its Deployment, Service, ConfigMap and TestRun garbage-collected ${((performance.now() - finalized) / 1000).toFixed(1)} s later`,
    );
  });
});

// The experiments end to end, on the same cluster once the charts' tests are done; then it goes.
experimentsOnCluster();
after(() => stopCluster(), { timeout: 5 * 60_000 });
