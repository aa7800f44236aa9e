import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '@loadlab/sandbox/control-plane';
import { parse, parseAllDocuments } from 'yaml';
import { OPERATOR_APISERVER_POLICY } from '../src/charts/operator.js';
import type { Manifest } from '../src/objects.js';
import { IMAGES, NODE_ROLE_LABEL, PORTS, VERSIONS } from '../src/settings.js';

/*
 * scripts/cluster.sh (npm run cluster:up / cluster:down) in its dry mode, and its refusal when the
 * tools are missing. kind, Docker and helm cannot run on this machine: kind's real run is not
 * exercised here; the local provider's install runs for real in cluster.test.ts.
 */

const root = repoRoot();
const script = join(root, 'scripts', 'cluster.sh');
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync('bash', [script, ...args], { cwd: root, env, encoding: 'utf8' });

/** Every object of charts/loadlab/. */
function readChart(): Manifest[] {
  const dir = join(root, 'charts', 'loadlab');
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((doc) => doc.toJS() as Manifest));
}
const spec = (m: Manifest) => m.spec as Record<string, unknown>;

describe('scripts/cluster.sh', () => {
  it('up --dry-run prints every step with the pinned versions and the next commands', () => {
    const result = run(['up', '--dry-run']);
    assert.equal(result.status, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, /\+ kind create cluster --name loadlab --config kind-config\.yaml/);
    assert.match(out, new RegExp(`kube-prometheus-stack .*--version ${VERSIONS.kubePrometheusStack.replace(/\./g, '\\.')} --values charts/values/kube-prometheus-stack\\.yaml`));
    assert.match(out, new RegExp(`grafana/k6-operator/${VERSIONS.k6Operator}/bundle\\.yaml`));
    assert.match(out, new RegExp(`docker build -f api/Dockerfile -t ${IMAGES.api}`));
    assert.match(out, new RegExp(`docker build -f operator/Dockerfile -t ${IMAGES.operator}`));
    assert.match(out, /kind load docker-image/);
    assert.match(out, /create secret generic loadlab-database --from-literal=password=<random> --from-literal=admin-password=<random> --from-literal=url=postgres:\/\/loadlab_admin:<random>@timescaledb\.loadlab-system\.svc:5432\/loadlab/, 'the passwords are never printed; the operator connects as loadlab_admin');
    assert.match(out, /exec -i timescaledb-0 -c timescaledb -- psql -U postgres -d loadlab -v ON_ERROR_STOP=1 <<< CREATE\/ALTER ROLE loadlab_admin LOGIN CREATEROLE NOSUPERUSER; GRANT CREATE ON DATABASE loadlab/);
    assert.match(out, /apply --server-side --force-conflicts -f - <\(charts\/loadlab\/ but loadlab-operator-apiserver, then:\)/);
    assert.match(out, /kubectl apply -f experiments\/seed-20k\.yaml/);
    assert.match(out, /port-forward svc\/monitoring-grafana 3000:80/);
  });

  it('down --dry-run deletes the cluster', () => {
    const result = run(['down', '--dry-run']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /\+ kind delete cluster --name loadlab/);
  });

  it('up --provider=local --dry-run builds and starts the local cluster, then installs with PostgreSQL standing in for TimescaleDB', () => {
    const result = run(['up', '--provider=local', '--dry-run']);
    assert.equal(result.status, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, /\+ bash scripts\/local-cluster\/build\.sh\n\+ bash scripts\/local-cluster\/images\.sh\n.*\n\+ bash scripts\/local-cluster\/up\.sh/);
    assert.match(out, new RegExp(`apply --server-side --force-conflicts -f \\S*k6-operator-${VERSIONS.k6Operator}/k6\\.io_testruns\\.yaml`));
    assert.match(out, /create secret generic loadlab-database --from-literal=password=<random> --from-literal=admin-password=<random> --from-literal=url=postgres:\/\/loadlab_admin:/, 'the same Secret as on kind');
    assert.match(out, /CREATE\/ALTER ROLE loadlab_admin LOGIN CREATEROLE NOSUPERUSER/, 'the same admin as on kind');
    assert.match(out, /PostgreSQL \(loadlab\/postgres:bookworm\) standing in for TimescaleDB/);
    assert.doesNotMatch(out, /kind |helm |docker /, 'nothing of kind\'s path');
    assert.match(out, /npm run cluster:down -- --provider=local/);
  });

  it('down --provider=local --dry-run runs the local cluster\'s down.sh', () => {
    const result = run(['down', '--provider=local', '--dry-run']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /\+ bash scripts\/local-cluster\/down\.sh/);
  });

  it('refuses to start without kind, helm, docker and kubectl, naming each and how to get it', () => {
    const bin = mkdtempSync(join(tmpdir(), 'loadlab-path-'));
    try {
      for (const tool of ['bash', 'dirname', 'od', 'tr', 'grep']) {
        const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
        symlinkSync(found, join(bin, tool));
      }
      const result = run(['up'], { ...process.env, PATH: bin });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /missing docker kind helm kubectl: install them/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("install names the control plane's addresses in the operator's egress and Prometheus' ingress, the chart's selectors and ports, in place of the chart's any-address stand-in", () => {
    const result = run(['install', '--provider=local', '--dry-run'], { ...process.env, LOADLAB_CONTROL_PLANE_CIDRS: '10.243.0.1,fd00::1,10.96.0.0/24' });
    assert.equal(result.status, 0, result.stderr);
    const after = result.stdout.slice(result.stdout.indexOf('then:)') + 'then:)'.length);
    const printed = after.slice(0, after.indexOf('\ncluster: '));
    const policies = printed.split(/^---$/m).map((doc) => parse(doc) as Manifest | null).filter((doc): doc is Manifest => doc?.kind === 'NetworkPolicy');
    const cidrs = ['10.243.0.1/32', '10.96.0.0/24', 'fd00::1/128'].sort();
    const chart = readChart();
    const stand_in = chart.find((m) => m.metadata.name === OPERATOR_APISERVER_POLICY)!;
    const egress = policies.find((p) => p.metadata.name === OPERATOR_APISERVER_POLICY);
    assert.ok(egress, 'the operator\'s egress policy, under the chart\'s name (so the apply replaces it)');
    assert.equal(egress.metadata.namespace, stand_in.metadata.namespace);
    assert.deepEqual(spec(egress).podSelector, spec(stand_in).podSelector);
    assert.deepEqual(spec(egress).egress, [{ to: cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: PORTS.apiserver.map((port) => ({ protocol: 'TCP', port })) }]);
    const prometheus = chart.find((m) => m.metadata.name === 'prometheus' && m.kind === 'NetworkPolicy')!;
    const ingress = policies.find((p) => p.metadata.name === 'prometheus-from-control-plane');
    assert.ok(ingress);
    assert.equal(ingress.metadata.namespace, prometheus.metadata.namespace);
    assert.deepEqual(spec(ingress).podSelector, spec(prometheus).podSelector);
    assert.deepEqual(spec(ingress).ingress, [{ from: cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ protocol: 'TCP', port: PORTS.prometheus }] }]);

    const bad = run(['install', '--provider=local', '--dry-run'], { ...process.env, LOADLAB_CONTROL_PLANE_CIDRS: '10.0.0.1,apiserver.example' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /LOADLAB_CONTROL_PLANE_CIDRS: 'apiserver\.example\/32' is not a CIDR such as 10\.0\.0\.1\/32/);
  });

  it('rejects an unknown command with its usage', () => {
    const result = run(['sideways']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /usage: .* up\|install\|down \[--provider=kind\|local\] \[--dry-run\]/);
  });
});

describe('kind-config.yaml', () => {
  it('has a control plane and one worker per role, the load and monitoring workers tainted', () => {
    const config = parse(readFileSync(resolve(root, 'kind-config.yaml'), 'utf8')) as { nodes: { role: string; labels?: Record<string, string>; kubeadmConfigPatches?: string[] }[] };
    assert.equal(config.nodes.filter((node) => node.role === 'control-plane').length, 1);
    const workers = config.nodes.filter((node) => node.role === 'worker');
    assert.deepEqual(workers.map((node) => node.labels?.[NODE_ROLE_LABEL]), ['sut', 'load', 'monitoring']);
    for (const worker of workers) {
      const role = worker.labels![NODE_ROLE_LABEL]!;
      const taints = (worker.kubeadmConfigPatches ?? []).map((patch) => parse(patch) as { nodeRegistration?: { taints?: { key: string; value: string; effect: string }[] } });
      const tainted = taints.some((patch) => patch.nodeRegistration?.taints?.some((taint) => taint.key === NODE_ROLE_LABEL && taint.value === role && taint.effect === 'NoSchedule'));
      // The system under test stays untainted: the API Deployments the operator creates land there without a toleration.
      assert.equal(tainted, role !== 'sut', `${role} worker`);
    }
  });
});
