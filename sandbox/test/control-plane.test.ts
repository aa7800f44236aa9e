// The envtest-style control plane (kube-apiserver + etcd) with the vendored third-party CRDs:
// TestRuns and PodMonitors are checked against the real schemas by the real apiserver.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ControlPlane, KubectlError } from '../src/control-plane.js';

const NAMESPACE = 'loadlab-cp-test';

function testRun(name: string, parallelism: unknown): string {
  return JSON.stringify({
    apiVersion: 'k6.io/v1alpha1',
    kind: 'TestRun',
    metadata: { name, namespace: NAMESPACE },
    spec: { parallelism, script: { configMap: { name: 'loadlab-script', file: 'test.js' } } },
  });
}

describe('control plane (kube-apiserver + etcd)', () => {
  let cp: ControlPlane;

  before(async () => {
    cp = await ControlPlane.start();
    console.log(`control plane ready at ${cp.server} in ${cp.startupMs} ms`);
    const began = performance.now();
    const crds = await cp.installVendoredCrds();
    console.log(`installed ${crds.join(', ')} in ${Math.round(performance.now() - began)} ms`);
    await cp.createNamespace(NAMESPACE);
  });

  after(async () => {
    await cp?.stop();
  });

  test('serves the kubeconfig admin with the CRDs established', async () => {
    assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(await cp.kubectl(['auth', 'can-i', '*', '*', '--all-namespaces']), 'yes\n');
    const established = await cp.kubectl([
      'get',
      'crd',
      'testruns.k6.io',
      'podmonitors.monitoring.coreos.com',
      'servicemonitors.monitoring.coreos.com',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}',
    ]);
    assert.deepEqual(established.trim().split('\n').sort(), [
      'podmonitors.monitoring.coreos.com=True',
      'servicemonitors.monitoring.coreos.com=True',
      'testruns.k6.io=True',
    ]);
  });

  test('a minimal TestRun is stored by server-side apply and listed', async () => {
    const out = await cp.kubectl(['apply', '--server-side', '--field-manager=loadlab-test', '-f', '-'], { stdin: testRun('smoke', 1) });
    assert.match(out, /testrun\.k6\.io\/smoke serverside-applied/);
    const names = await cp.kubectl(['get', 'testruns', '-n', NAMESPACE, '-o', 'name']);
    assert.equal(names.trim(), 'testrun.k6.io/smoke');
    const stored = JSON.parse(await cp.kubectl(['get', 'testrun', 'smoke', '-n', NAMESPACE, '-o', 'json'])) as {
      spec: { parallelism: number; paused?: string };
    };
    assert.equal(stored.spec.parallelism, 1);
    assert.equal(stored.spec.paused, 'true', 'the CRD default for spec.paused is applied');
  });

  test('invalid TestRuns are rejected with the apiserver\'s validation messages', async () => {
    const rejected = async (args: string[], manifest: string, ...patterns: RegExp[]): Promise<void> => {
      await assert.rejects(cp.kubectl(args, { stdin: manifest }), (error: unknown) => {
        assert.ok(error instanceof KubectlError, String(error));
        for (const pattern of patterns) assert.match(error.stderr, pattern);
        return true;
      });
    };
    const ssa = ['apply', '--server-side', '--field-manager=loadlab-test', '-f', '-'];
    // Server-side apply checks field types while building the typed patch...
    await rejected(ssa, testRun('bad-type', 'two'), /\.spec\.parallelism: expected numeric \(int or float\), got string/);
    // ...a create goes through the CRD's OpenAPI schema validation.
    await rejected(['create', '-f', '-'], testRun('bad-type', 'two'), /spec\.parallelism in body must be of type integer: "string"/);
    // Required fields: spec.script is required by the CRD schema.
    const noScript = JSON.parse(testRun('no-script', 1)) as { spec: Record<string, unknown> };
    delete noScript.spec.script;
    await rejected(ssa, JSON.stringify(noScript), /spec\.script: Required value/);
    const names = await cp.kubectl(['get', 'testruns', '-n', NAMESPACE, '-o', 'name']);
    assert.equal(names.trim(), 'testrun.k6.io/smoke', 'nothing invalid was stored');
  });

  test('a PodMonitor passes a server-side dry run', async () => {
    const podMonitor = JSON.stringify({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: { name: 'loadlab-api', namespace: NAMESPACE },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'loadlab-api' } },
        podMetricsEndpoints: [{ port: 'http', path: '/metrics', interval: '15s' }],
      },
    });
    const out = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { stdin: podMonitor });
    assert.match(out, /podmonitor\.monitoring\.coreos\.com\/loadlab-api created \(server dry run\)/);
    const listed = await cp.kubectl(['get', 'podmonitors', '-n', NAMESPACE, '-o', 'name']);
    assert.equal(listed.trim(), '', 'a dry run stores nothing');
  });
});
