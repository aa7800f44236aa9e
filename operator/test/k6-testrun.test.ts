// The pure builders of a run's ConfigMap and TestRun (k6.io/v1alpha1, grafana/k6-operator v1.6.0).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { DEFAULT_REMOTE_WRITE_URL, SCRIPT_FILE, buildScriptConfigMap, buildTestRun, renderK6Script, type TestRunManifest, type TestRunOptions } from '../src/k6/index.js';
import { MAX_TESTRUN_NAME, testRunName } from '../src/contract/index.js';

function experimentWith(spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'k6-run' }): LoadExperiment {
  const manifest = { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata, spec };
  const result = parseExperiment(JSON.stringify(manifest), 'k6-run.json');
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

const BASE = {
  fleet: { devices: 100, reportInterval: '10s', pollInterval: '10s' },
  load: { stages: [{ devices: 100, duration: '1m' }] },
};

const specOf = (testRun: TestRunManifest) => testRun.spec;
const envOf = (testRun: TestRunManifest) => Object.fromEntries(specOf(testRun).runner.env.map((entry) => [entry.name, entry.value]));

describe('testRunName', () => {
  for (const row of [
    { name: 'smoke', run: 'r1', want: 'smoke-r1-k6' },
    { name: 'breaking-point', run: 'step-10', want: 'breaking-point-step-10-k6' },
    { name: 'a'.repeat(48), run: 'r1', length: MAX_TESTRUN_NAME },
    { name: `${'b'.repeat(30)}-${'c'.repeat(17)}`, run: 'a-very-long-run-id-12345', length: MAX_TESTRUN_NAME },
  ]) {
    it(`${row.name.slice(0, 20)}… run ${row.run}: ${row.want ?? `shortened to ${row.length} characters with a hash`}`, () => {
      const experiment = experimentWith(BASE, { name: row.name });
      const name = testRunName(experiment, row.run);
      if (row.want) assert.equal(name, row.want);
      else {
        assert.equal(name.length, row.length);
        assert.match(name, new RegExp(`-[0-9a-f]{8}-${row.run}-k6$`));
        assert.notEqual(name, testRunName(experimentWith(BASE, { name: `${row.name.slice(0, -1)}x` }), row.run), 'the hash keeps shortened names apart');
      }
      // k6-operator's children: <name>-initializer, <name>-service-<n> must stay DNS-1035 labels.
      assert.ok(`${name}-initializer`.length <= 63 && `${name}-service-64`.length <= 63);
      assert.match(name, /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    });
  }

  it('refuses run ids that would not make a valid name, saying what a valid one looks like', () => {
    const experiment = experimentWith(BASE);
    for (const run of ['', 'R1', 'r_1', '-r1', 'r1-', 'x'.repeat(25)]) {
      assert.throws(() => testRunName(experiment, run), /must be at most 24 lowercase letters, digits and "-".*e\.g\. r1 or step-3/);
    }
  });
});

describe('buildScriptConfigMap', () => {
  const experiment = experimentWith(BASE, { name: 'cm', namespace: 'lab' });
  const script = renderK6Script(experiment);

  it('holds the script under its file name, with its sha256 and phases as annotations', () => {
    const configMap = buildScriptConfigMap(experiment, script, { runId: 'r2' });
    assert.equal(configMap.apiVersion, 'v1');
    assert.equal(configMap.kind, 'ConfigMap');
    assert.deepEqual(configMap.data, { [SCRIPT_FILE]: script.source });
    assert.equal(configMap.metadata.name, 'cm-r2-k6');
    assert.equal(configMap.metadata.namespace, 'lab');
    assert.deepEqual(configMap.metadata.annotations, { 'loadlab.dev/script-sha256': script.sha256, 'loadlab.dev/phases': '0-0' });
    assert.equal(configMap.metadata.ownerReferences, undefined, 'no owner without a uid');
  });

  it('is owned by the LoadExperiment when given its uid, and labelled for selection', () => {
    const configMap = buildScriptConfigMap(experiment, script, { runId: 'r2', namespace: 'other', ownerUid: 'uid-1' });
    assert.deepEqual(configMap.metadata.ownerReferences, [
      { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', name: 'cm', uid: 'uid-1', controller: true, blockOwnerDeletion: true },
    ]);
    assert.equal(configMap.metadata.namespace, 'other');
    assert.deepEqual(configMap.metadata.labels, {
      'app.kubernetes.io/name': 'loadlab',
      'app.kubernetes.io/instance': 'cm',
      'app.kubernetes.io/component': 'load-generator-script',
      'app.kubernetes.io/part-of': 'loadlab',
      'app.kubernetes.io/managed-by': 'loadlab-operator',
      'loadlab.dev/experiment': 'cm',
      'loadlab.dev/run': 'r2',
    });
  });
});

describe('buildTestRun', () => {
  const options: TestRunOptions = { runId: 'r1', tokenSecret: 'test-secret-0123456789' };

  for (const row of [
    {
      name: 'one generator: no `separate`, cleanup per spec.cleanup onSuccess (k6-operator cannot express it: none)',
      spec: BASE,
      check: (testRun: TestRunManifest) => {
        const spec = specOf(testRun);
        assert.equal(spec.parallelism, 1);
        assert.equal(spec.separate, undefined);
        assert.equal(spec.cleanup, undefined);
      },
    },
    {
      name: 'four generators: one per node (separate: true)',
      spec: { ...BASE, generator: { parallelism: 4 } },
      check: (testRun: TestRunManifest) => {
        assert.equal(specOf(testRun).parallelism, 4);
        assert.equal(specOf(testRun).separate, true);
      },
    },
    {
      name: 'cleanup: always maps to k6-operator\'s cleanup: post',
      spec: { ...BASE, cleanup: 'always' },
      check: (testRun: TestRunManifest) => assert.equal(specOf(testRun).cleanup, 'post'),
    },
    {
      name: 'cleanup: never leaves the TestRun in place',
      spec: { ...BASE, cleanup: 'never' },
      check: (testRun: TestRunManifest) => assert.equal(specOf(testRun).cleanup, undefined),
    },
    {
      name: 'resources, node selector and tolerations go to the runners; placement also to the initializer',
      spec: {
        ...BASE,
        generator: {
          resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: 2, memory: '1Gi' } },
          nodeSelector: { 'loadlab.dev/role': 'load' },
          tolerations: [{ key: 'loadlab.dev/load', operator: 'Exists', effect: 'NoSchedule' }],
        },
      },
      check: (testRun: TestRunManifest) => {
        const spec = specOf(testRun);
        assert.deepEqual(spec.runner.resources, { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } }, 'quantities as the apiserver stores them');
        assert.deepEqual(spec.runner.nodeSelector, { 'loadlab.dev/role': 'load' });
        assert.deepEqual(spec.runner.tolerations, [{ key: 'loadlab.dev/load', operator: 'Exists', effect: 'NoSchedule' }]);
        assert.deepEqual(spec.initializer.nodeSelector, { 'loadlab.dev/role': 'load' });
      },
    },
  ]) {
    it(row.name, () => row.check(buildTestRun(experimentWith(row.spec), options)));
  }

  it('points at the script ConfigMap and sends metrics by remote write, tagged with the experiment and run', () => {
    const experiment = experimentWith(BASE, { name: 'tagged', namespace: 'lab' });
    const testRun = buildTestRun(experiment, { ...options, runId: 'r9' });
    assert.equal(testRun.apiVersion, 'k6.io/v1alpha1');
    assert.equal(testRun.kind, 'TestRun');
    assert.equal(testRun.metadata.name, 'tagged-r9-k6');
    assert.equal(testRun.metadata.namespace, 'lab');
    const spec = specOf(testRun);
    assert.deepEqual(spec.script, { configMap: { name: 'tagged-r9-k6', file: SCRIPT_FILE } });
    assert.equal(spec.arguments, '--out experimental-prometheus-rw --tag experiment=lab/tagged --tag run=r9');
    assert.deepEqual(envOf(testRun), {
      LOADLAB_RUN_ID: 'r9',
      LOADLAB_API_URL: 'http://tagged-api.lab.svc:3000',
      LOADLAB_TOKEN_SECRET: 'test-secret-0123456789',
      K6_PROMETHEUS_RW_SERVER_URL: DEFAULT_REMOTE_WRITE_URL,
      K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM: 'true',
      K6_PROMETHEUS_RW_PUSH_INTERVAL: '5s',
      K6_PROMETHEUS_RW_STALE_MARKERS: 'true',
      K6_NO_USAGE_REPORT: 'true',
    });
    assert.equal(spec.runner.metadata.labels['loadlab.dev/run'], 'r9');
    // The operator passes the API's Secret: the runners get a reference, the value is in no TestRun.
    const byRef = specOf(buildTestRun(experiment, { ...options, runId: 'r9', tokenSecret: { secretName: 'tagged-api-0123456789', key: 'TOKEN_SECRET' } }));
    assert.deepEqual(byRef.runner.env.find((entry: { name: string }) => entry.name === 'LOADLAB_TOKEN_SECRET'), { name: 'LOADLAB_TOKEN_SECRET', valueFrom: { secretKeyRef: { name: 'tagged-api-0123456789', key: 'TOKEN_SECRET' } } });
  });

  it('takes the API URL, remote-write URL, runner image, namespace, owner and phase range it is given', () => {
    const experiment = experimentWith(BASE);
    const testRun = buildTestRun(experiment, {
      ...options,
      namespace: 'ns2',
      ownerUid: 'abc',
      apiUrl: 'http://api.example:8080',
      remoteWriteUrl: 'http://prom:9090/api/v1/write',
      runnerImage: 'grafana/k6:1.0.0',
      phaseRange: { from: 2, to: 4 },
      k6Cleanup: 'none',
    });
    assert.equal(envOf(testRun).LOADLAB_API_URL, 'http://api.example:8080');
    assert.equal(envOf(testRun).K6_PROMETHEUS_RW_SERVER_URL, 'http://prom:9090/api/v1/write');
    assert.equal(specOf(testRun).runner.image, 'grafana/k6:1.0.0');
    assert.equal(testRun.metadata.namespace, 'ns2');
    assert.equal(testRun.metadata.ownerReferences?.[0]?.uid, 'abc');
    assert.deepEqual(testRun.metadata.annotations, { 'loadlab.dev/phases': '2-3' });
    assert.match(specOf(testRun).arguments, /--tag experiment=ns2\/k6-run /);
  });

  it('runs every pod under Pod Security "restricted" with a writable /tmp', () => {
    const spec = specOf(buildTestRun(experimentWith(BASE), options));
    for (const pod of [spec.runner, spec.initializer, spec.starter]) {
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(typeof pod.securityContext.runAsUser, 'number', 'numeric, so the kubelet can verify non-root');
      assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
      assert.deepEqual(pod.containerSecurityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true });
    }
    assert.deepEqual(spec.runner.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
  });

  it('is the same object every time (a reconciler can apply it repeatedly)', () => {
    const experiment = experimentWith({ ...BASE, generator: { parallelism: 3 } });
    assert.deepEqual(buildTestRun(experiment, options), buildTestRun(experiment, options));
  });
});
