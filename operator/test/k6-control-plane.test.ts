// The run's ConfigMap and TestRun created for real on kube-apiserver + etcd, with k6-operator's
// TestRun CRD (v1.6.0, vendored) and loadlab's own LoadExperiment CRD installed: strict
// server-side validation, defaulting, ownership by a real LoadExperiment. No controllers run, so
// nothing executes the TestRun (k6 cannot run here anyway).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadExperimentCrd, parseExperiment, formatErrors, type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan, phaseRangeOfStep } from '../src/traffic/index.js';
import { SCRIPT_FILE, buildScriptConfigMap, buildTestRun, renderK6Script, type TestRunManifest } from '../src/k6/index.js';
import type { Built } from '../src/contract/objects.js';
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';

type KubeObject = Built<KubernetesObject>;
import { ControlPlane, KubectlError } from '@loadlab/sandbox/control-plane';

const NAMESPACE = 'loadlab-k6';
const OPERATOR_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXPERIMENTS = join(OPERATOR_DIR, '..', 'experiments');
const SECRET = 'control-plane-test-secret-0123';

function example(file: string): { text: string; experiment: LoadExperiment } {
  const text = readFileSync(join(EXPERIMENTS, file), 'utf8');
  const result = parseExperiment(text, file);
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return { text, experiment: { ...result.experiment, metadata: { ...result.experiment.metadata, namespace: NAMESPACE } } };
}

/** Every field of `sent` is in `stored` with the same value (the apiserver may add defaults). */
function assertContains(stored: unknown, sent: unknown, path: string): void {
  if (Array.isArray(sent)) {
    assert.ok(Array.isArray(stored), `${path}: not a list in the stored object`);
    assert.equal(stored.length, sent.length, `${path}: length`);
    sent.forEach((item, index) => assertContains(stored[index], item, `${path}[${index}]`));
  } else if (typeof sent === 'object' && sent !== null) {
    assert.ok(typeof stored === 'object' && stored !== null, `${path}: not an object in the stored object`);
    for (const [key, value] of Object.entries(sent)) assertContains((stored as Record<string, unknown>)[key], value, `${path}.${key}`);
  } else {
    assert.equal(stored, sent, path);
  }
}

describe('k6 ConfigMaps and TestRuns on a real kube-apiserver (vendored k6-operator v1.6.0 CRD)', () => {
  let cp: ControlPlane;
  let dir: string;

  const apply = (objects: readonly object[]) =>
    cp.kubectl(['apply', '--server-side', '--field-manager=loadlab-operator', '--validate=strict', '-f', '-'], {
      stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    });
  const get = async (kind: string, name: string) => JSON.parse(await cp.kubectl(['get', kind, name, '-n', NAMESPACE, '-o', 'json'])) as Record<string, unknown>;

  before(async () => {
    cp = await ControlPlane.start();
    dir = mkdtempSync(join(tmpdir(), 'loadlab-k6-cp-'));
    const crdPath = join(dir, 'loadexperiments.json');
    writeFileSync(crdPath, JSON.stringify(loadExperimentCrd()));
    await cp.installVendoredCrds();
    await cp.installCrds([crdPath]);
    await cp.createNamespace(NAMESPACE);
  });

  after(async () => {
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Creates the LoadExperiment itself, so the children have a real owner; returns its uid. */
  async function createExperiment(text: string): Promise<string> {
    await cp.kubectl(['apply', '--server-side', '--field-manager=loadlab-test', '-n', NAMESPACE, '-f', '-'], { stdin: text });
    const name = /^ {2}name: (\S+)/m.exec(text)![1]!;
    return ((await get('loadexperiment', name)).metadata as { uid: string }).uid;
  }

  /** A raw, server-side dry-run create with strict field validation: the apiserver alone judges the object. */
  async function serverValidates(object: KubeObject, collection: string) {
    const path = join(dir, `${object.kind}-${object.metadata.name}.json`);
    writeFileSync(path, JSON.stringify(object));
    await cp.kubectl(['create', '--raw', `${collection}?dryRun=All&fieldValidation=Strict`, '-f', path]);
  }

  async function createAndReadBack(experiment: LoadExperiment, configMap: Built<V1ConfigMap>, testRun: TestRunManifest, uid: string) {
    await serverValidates(configMap, `/api/v1/namespaces/${NAMESPACE}/configmaps`);
    await serverValidates(testRun, `/apis/k6.io/v1alpha1/namespaces/${NAMESPACE}/testruns`);
    const out = await apply([configMap, testRun]);
    assert.match(out, new RegExp(`configmap/${configMap.metadata.name} serverside-applied`));
    assert.match(out, new RegExp(`testrun.k6.io/${testRun.metadata.name} serverside-applied`));

    const storedMap = await get('configmap', configMap.metadata.name);
    assert.equal((storedMap.data as Record<string, string>)[SCRIPT_FILE], configMap.data![SCRIPT_FILE], 'the script, byte for byte');
    const storedRun = await get('testrun', testRun.metadata.name);
    assertContains(storedRun.spec, testRun.spec, 'spec');
    assertContains(storedRun.metadata, testRun.metadata, 'metadata');
    assert.equal((storedRun.spec as { paused: string }).paused, 'true', 'the CRD default: runners start together through the starter');
    for (const stored of [storedMap, storedRun]) {
      const owners = (stored.metadata as { ownerReferences: { uid: string; kind: string; name: string }[] }).ownerReferences;
      assert.deepEqual(owners.map((owner) => [owner.kind, owner.name, owner.uid]), [['LoadExperiment', experiment.metadata.name, uid]]);
    }
  }

  const files = readdirSync(EXPERIMENTS).filter((file) => file.endsWith('.yaml'));
  for (const file of files) {
    it(`${file}: the built ConfigMap and TestRun are accepted with strict validation, stored as sent, owned by the experiment`, async () => {
      const { text, experiment } = example(file);
      const uid = await createExperiment(text);
      const script = renderK6Script(experiment);
      const identity = { runId: 'r1', namespace: NAMESPACE, ownerUid: uid };
      const configMap = buildScriptConfigMap(experiment, script, identity);
      const testRun = buildTestRun(experiment, { ...identity, tokenSecret: SECRET, phaseRange: script.config.range });
      await createAndReadBack(experiment, configMap, testRun, uid);
    });
  }

  it('breaking-point.yaml: one TestRun per search step (steps 0 and 5), side by side', async () => {
    const { text, experiment } = example('breaking-point.yaml');
    const uid = await createExperiment(text);
    const plan = buildTrafficPlan(experiment);
    for (const step of [0, 5]) {
      const phaseRange = phaseRangeOfStep(plan, step);
      const script = renderK6Script(experiment, { plan, phaseRange });
      const identity = { runId: `step-${step}`, namespace: NAMESPACE, ownerUid: uid };
      const testRun = buildTestRun(experiment, { ...identity, tokenSecret: SECRET, phaseRange });
      await createAndReadBack(experiment, buildScriptConfigMap(experiment, script, identity), testRun, uid);
    }
    const names = await cp.kubectl(['get', 'testruns', '-n', NAMESPACE, '-l', 'loadlab.dev/experiment=breaking-point', '-o', 'name']);
    assert.deepEqual(names.trim().split('\n').sort(), ['testrun.k6.io/breaking-point-r1-k6', 'testrun.k6.io/breaking-point-step-0-k6', 'testrun.k6.io/breaking-point-step-5-k6']);
  });

  it('the apiserver itself refuses a field the TestRun CRD does not know (strict field validation, not pruning)', async () => {
    const { experiment } = example('smoke.yaml');
    const testRun = buildTestRun(experiment, { runId: 'bad', namespace: NAMESPACE, tokenSecret: SECRET });
    (testRun.spec.runner as unknown as Record<string, unknown>).replicas = 3;
    // kubectl may already refuse it client-side (with the server's OpenAPI); a raw POST leaves it to the server.
    const path = join(dir, 'bad-testrun.json');
    writeFileSync(path, JSON.stringify(testRun));
    await assert.rejects(
      cp.kubectl(['create', '--raw', `/apis/k6.io/v1alpha1/namespaces/${NAMESPACE}/testruns?fieldValidation=Strict`, '-f', path]),
      (error: unknown) => {
        assert.ok(error instanceof KubectlError);
        assert.match(error.stderr, /unknown field "spec\.runner\.replicas"/);
        return true;
      },
    );
    // The same object without the extra field is accepted by that raw, strictly validated POST.
    delete (testRun.spec.runner as unknown as Record<string, unknown>).replicas;
    writeFileSync(path, JSON.stringify(testRun));
    const created = JSON.parse(
      await cp.kubectl(['create', '--raw', `/apis/k6.io/v1alpha1/namespaces/${NAMESPACE}/testruns?fieldValidation=Strict`, '-f', path]),
    ) as KubeObject;
    assert.equal(created.metadata.name, 'smoke-bad-k6');
  });

  it('`loadlab render` output applies as it is (kubectl apply -f -)', async () => {
    const cli = join(OPERATOR_DIR, 'dist', 'src', 'cli', 'main.js');
    const rendered = spawnSync(
      process.execPath,
      [cli, 'render', join(EXPERIMENTS, 'quickstart.yaml'), '--namespace', NAMESPACE, '--run-id', 'by-hand', '--token-secret', SECRET],
      { encoding: 'utf8' },
    );
    assert.equal(rendered.status, 0, rendered.stderr);
    const out = await cp.kubectl(['apply', '--server-side', '--field-manager=loadlab-test', '--validate=strict', '-f', '-'], { stdin: rendered.stdout });
    assert.match(out, /configmap\/quickstart-by-hand-k6 serverside-applied/);
    assert.match(out, /testrun\.k6\.io\/quickstart-by-hand-k6 serverside-applied/);
  });
});
