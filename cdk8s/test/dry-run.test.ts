import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApiDeployment, buildApiService } from '@loadlab/operator/builders';
import { buildDriverConfigMap, buildDriverJob } from '@loadlab/operator/driver-job';
import { buildTrafficPlan } from '@loadlab/operator/traffic';
import { parseExperiment } from '@loadlab/operator/schema';
import { ControlPlane, repoRoot } from '@loadlab/sandbox/control-plane';
import { CHARTS_DIR } from '../src/main.js';
import { NAMESPACES } from '../src/settings.js';

/*
 * Every manifest under charts/ (the committed files, what users apply) through a server-side
 * dry-run on a real kube-apiserver + etcd, with our CRD and the vendored TestRun, PodMonitor and
 * ServiceMonitor CRDs installed: schemas, defaulting, CEL rules, RBAC objects and Pod Security
 * admission all run as on a cluster. No kubelet or controllers run here (nothing is scheduled):
 * the pods starting, their images and the network policies being enforced are verified on a real
 * cluster by cluster.test.ts.
 */

describe('charts/ on a real kube-apiserver (server-side dry-run)', () => {
  let plane: ControlPlane;
  const files = readdirSync(join(CHARTS_DIR, 'loadlab')).filter((name) => name.endsWith('.yaml')).sort();
  before(async () => {
    plane = await ControlPlane.start();
    await plane.installVendoredCrds();
    await plane.installCrds([join(CHARTS_DIR, 'loadlab', '00-crd.yaml')]);
    // Dry-run objects need their namespace to exist; the namespaces themselves are dry-run too.
    for (const namespace of Object.values(NAMESPACES)) await plane.createNamespace(namespace);
  });
  after(async () => {
    await plane?.stop();
  });

  for (const file of ['00-crd.yaml', '10-operator.yaml', '20-api.yaml', '30-timescaledb.yaml', '40-monitoring.yaml', '50-dashboards.yaml']) {
    it(`accepts ${file}, with no Pod Security warning`, async () => {
      assert.ok(files.includes(file), `${file} is in charts/loadlab/`);
      let warnings = '';
      const out = await plane.kubectl(
        ['apply', '--server-side', '--dry-run=server', '--field-manager=loadlab-charts', '-o', 'name', '-f', join(CHARTS_DIR, 'loadlab', file)],
        { onStderr: (text) => (warnings += text) },
      );
      assert.ok(out.trim().split('\n').length >= 1, out);
      assert.doesNotMatch(warnings, /PodSecurity|violate/i, warnings);
    });
  }

  it('no chart file goes untested', () => {
    assert.deepEqual(files, ['00-crd.yaml', '10-operator.yaml', '20-api.yaml', '30-timescaledb.yaml', '40-monitoring.yaml', '50-dashboards.yaml']);
  });

  it('refuses a pod that breaks "restricted" in the namespaces we ship (the enforce label works)', async () => {
    const pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'root', namespace: NAMESPACES.experiments },
      spec: { containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] },
    };
    await plane.kubectl(['apply', '--server-side', '-f', join(CHARTS_DIR, 'loadlab', '20-api.yaml')]);
    await assert.rejects(plane.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], { stdin: JSON.stringify(pod) }), /violates PodSecurity "restricted/);
  });

  it('warns about a Deployment whose pods would break "restricted" (so the warning check above can fail)', async () => {
    await plane.kubectl(['apply', '--server-side', '-f', join(CHARTS_DIR, 'loadlab', '20-api.yaml')]);
    const deployment = {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'root', namespace: NAMESPACES.experiments },
      spec: { selector: { matchLabels: { app: 'root' } }, template: { metadata: { labels: { app: 'root' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    };
    let warnings = '';
    await plane.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], { stdin: JSON.stringify(deployment), onStderr: (text) => (warnings += text) });
    assert.match(warnings, /would violate PodSecurity "restricted/);
  });

  it('admits the API Deployment the operator builds for each example experiment in the restricted namespace, without a Pod Security warning', async () => {
    await plane.kubectl(['apply', '--server-side', '-f', join(CHARTS_DIR, 'loadlab', '20-api.yaml')]);
    const dir = resolve(repoRoot(), 'experiments');
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml'))) {
      const parsed = parseExperiment(readFileSync(join(dir, file), 'utf8'), file);
      assert.ok(parsed.ok, file);
      const experiment = { ...parsed.experiment, metadata: { ...parsed.experiment.metadata, namespace: NAMESPACES.experiments } };
      const options = { ownerUid: '3f1c2f4e-0000-4000-8000-000000000001', runId: 'r1-3f1c2f', databaseUrl: 'postgres://u:p@timescaledb.loadlab-system.svc:5432/loadlab', tokenSecret: 'x'.repeat(32), defaultImage: 'loadlab/api:dev' };
      let warnings = '';
      await plane.kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=loadlab-operator', '-f', '-'], {
        stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [buildApiDeployment(experiment, options), buildApiService(experiment, options)] }),
        onStderr: (text) => (warnings += text),
      });
      assert.doesNotMatch(warnings, /PodSecurity|violate/i, `${file}: ${warnings}`);
    }
  });

  it('admits the driver Job and ConfigMap the operator builds for each example experiment on the loadlab engine in the restricted namespace, without a Pod Security warning', async () => {
    await plane.kubectl(['apply', '--server-side', '-f', join(CHARTS_DIR, 'loadlab', '20-api.yaml')]);
    const dir = resolve(repoRoot(), 'experiments');
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml'))) {
      const parsed = parseExperiment(readFileSync(join(dir, file), 'utf8'), file);
      assert.ok(parsed.ok, file);
      const experiment = {
        ...parsed.experiment,
        metadata: { ...parsed.experiment.metadata, namespace: NAMESPACES.experiments },
        // Two runners: the one-per-node rule is part of what is admitted.
        spec: { ...parsed.experiment.spec, generator: { ...parsed.experiment.spec.generator, engine: 'loadlab' as const, parallelism: 2 } },
      };
      const plan = buildTrafficPlan(experiment);
      const identity = { runId: 'r1-3f1c2f', ownerUid: '3f1c2f4e-0000-4000-8000-000000000001' };
      const job = buildDriverJob(experiment, {
        ...identity, image: 'loadlab/operator:dev', plan, phaseRange: { from: 0, to: plan.phases.length }, tokenSecret: 'x'.repeat(32),
        start: { at: new Date(Date.now() + 20_000).toISOString(), delayS: 20 }, metricsLingerS: 30,
      });
      let warnings = '';
      await plane.kubectl(['apply', '--server-side', '--dry-run=server', '--validate=strict', '--field-manager=loadlab-operator', '-f', '-'], {
        stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [buildDriverConfigMap(experiment, identity), job] }),
        onStderr: (text) => (warnings += text),
      });
      assert.doesNotMatch(warnings, /PodSecurity|violate/i, `${file}: ${warnings}`);
    }
  });

  it('accepts every example experiment in the experiments namespace', async () => {
    const dir = resolve(repoRoot(), 'experiments');
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml'))) {
      await plane.kubectl(['apply', '--server-side', '--dry-run=server', '-n', NAMESPACES.experiments, '-f', join(dir, file)]);
    }
  });
});
