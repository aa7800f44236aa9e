// `loadlab render` and the `loadlab` dispatcher, run as users run them: the compiled bin, spawned.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parseDocument } from 'yaml';
import { parseExperiment } from '../src/schema/index.js';

const OPERATOR_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(OPERATOR_DIR, 'dist', 'src', 'cli', 'main.js');
const EXPERIMENTS = join(OPERATOR_DIR, '..', 'experiments');
const SECRET = 'cli-test-secret-0123456789';

/** The CLI as a process; asynchronous, so a file's tests run two at a time (most of their time is Node starting). */
function loadlab(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { LOADLAB_TOKEN_SECRET: _ignored, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...inherited, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

type Manifest = { kind: string; metadata: { name: string; namespace: string; annotations?: Record<string, string> }; data?: Record<string, string>; spec?: Record<string, unknown> };

function manifests(stdout: string): Manifest[] {
  const documents = parseAllDocuments(stdout);
  assert.ok(Array.isArray(documents));
  for (const document of documents) assert.deepEqual(document.errors, []);
  return documents.map((document) => document.toJS() as Manifest).filter((manifest) => manifest !== null);
}

/** The examples the operator runs: all of them. */
const CLUSTER_EXAMPLES = readdirSync(EXPERIMENTS).filter((name) => name.endsWith('.yaml'));

describe('loadlab render <experiment.yaml>', { concurrency: 2 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadlab-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const file of CLUSTER_EXAMPLES) {
    it(`${file}: prints the script's ConfigMap and the TestRun as a YAML stream; --format script prints the same script`, async () => {
      const yaml = await loadlab(['render', join(EXPERIMENTS, file), '--token-secret', SECRET]);
      assert.equal(yaml.status, 0, yaml.stderr);
      assert.equal(yaml.stderr, '');
      assert.doesNotMatch(yaml.stdout, /: [&*]a\d+$/m, 'plain YAML, no anchors or aliases');
      const [configMap, testRun, ...rest] = manifests(yaml.stdout);
      assert.deepEqual(rest, []);
      const name = `${file.replace(/\.yaml$/, '')}-manual-k6`;
      assert.equal(configMap!.kind, 'ConfigMap');
      assert.equal(configMap!.metadata.name, name);
      assert.equal(testRun!.kind, 'TestRun');
      assert.equal(testRun!.metadata.namespace, 'default');
      const script = await loadlab(['render', join(EXPERIMENTS, file), '--format', 'script']);
      assert.equal(script.status, 0, script.stderr);
      assert.equal(configMap!.data!['loadlab.js'], script.stdout, 'the ConfigMap holds the script, unchanged by YAML');
      assert.match(script.stdout, /^\/\/ loadlab k6 script for LoadExperiment default\//);
    });
  }

  it('names the run, the namespace and the API; renders the same bytes twice', async () => {
    const args = ['render', join(EXPERIMENTS, 'smoke.yaml'), '--run-id', 'r42', '--namespace', 'lab', '--api-url', 'http://api.lab:8080', '--token-secret', SECRET];
    const first = await loadlab(args);
    assert.equal(first.status, 0, first.stderr);
    assert.equal((await loadlab(args)).stdout, first.stdout);
    const [configMap, testRun] = manifests(first.stdout);
    assert.equal(testRun!.metadata.name, 'smoke-r42-k6');
    assert.equal(configMap!.metadata.namespace, 'lab');
    const env = (testRun!.spec!.runner as { env: { name: string; value: string }[] }).env;
    assert.ok(env.some((entry) => entry.name === 'LOADLAB_API_URL' && entry.value === 'http://api.lab:8080'));
    assert.ok(env.some((entry) => entry.name === 'LOADLAB_TOKEN_SECRET' && entry.value === SECRET));
    assert.match(testRun!.spec!.arguments as string, /--tag experiment=lab\/smoke --tag run=r42/);
    assert.match(configMap!.data!['loadlab.js']!, /"apiUrl": "http:\/\/api\.lab:8080"/);
  });

  it('takes the token secret from LOADLAB_TOKEN_SECRET, else generates one and says so on stderr', async () => {
    const fromEnv = await loadlab(['render', join(EXPERIMENTS, 'smoke.yaml')], { LOADLAB_TOKEN_SECRET: 'from-env-secret-0123' });
    assert.equal(fromEnv.status, 0);
    assert.match(fromEnv.stdout, /value: from-env-secret-0123/);
    const generated = await loadlab(['render', join(EXPERIMENTS, 'smoke.yaml')]);
    assert.equal(generated.status, 0);
    const secret = /generated (\S+); run the experiment's API with TOKEN_SECRET set to it/.exec(generated.stderr)?.[1];
    assert.ok(secret && secret.length >= 16, generated.stderr);
    assert.match(generated.stdout, new RegExp(`value: ${secret}`));
  });

  it('--phases renders one search step', async () => {
    const result = await loadlab(['render', join(EXPERIMENTS, 'breaking-point.yaml'), '--phases', '2-3', '--run-id', 'step-1', '--token-secret', SECRET]);
    assert.equal(result.status, 0, result.stderr);
    const [configMap, testRun] = manifests(result.stdout);
    assert.equal(testRun!.metadata.annotations!['loadlab.dev/phases'], '2-3');
    assert.equal(configMap!.metadata.annotations!['loadlab.dev/phases'], '2-3');
    assert.match(result.stdout, /^# phases 2-3 of 22 \(70 s of load\)\.$/m);
  });

  it('exits 2 with every problem, located, for an invalid experiment', async () => {
    const path = join(dir, 'invalid.yaml');
    writeFileSync(
      path,
      [
        'apiVersion: loadlab.dev/v1alpha1',
        'kind: LoadExperiment',
        'metadata:',
        '  name: broken',
        'spec:',
        '  fleet:',
        '    devices: 100',
        '    jitter: 2',
        '  load:',
        '    stages: [{ devices: 100, duration: 1m }]',
        '    search: { startDevices: 10, step: { factor: 2 }, maxDevices: 100 }',
        '  slo:',
        '    latencyPercentile: 100',
        '',
      ].join('\n'),
    );
    const result = await loadlab(['render', path]);
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /invalid\.yaml:8:13: spec\.fleet\.jitter: must be at most 1/);
    assert.match(result.stderr, /spec\.load: set exactly one of stages .* or search/);
    assert.match(result.stderr, /spec\.slo\.latencyPercentile: must be between 0 and 100/);
    assert.match(result.stderr, /not a valid LoadExperiment \(3 problems\)/);
  });

  for (const row of [
    { args: ['--format', 'json'], want: /--format must be yaml or script, not "json"/ },
    { args: ['--run-id', 'Run_1'], want: /--run-id: run id "Run_1" must be at most 24 lowercase letters/ },
    { args: ['--phases', '3-1'], want: /--phases must be FROM-TO with 0 <= FROM <= TO <= 1 \(the plan has 2 phases\), not "3-1"/ },
    { args: ['--namespace', 'Bad_NS'], want: /--namespace "Bad_NS" is not a Kubernetes namespace name/ },
    { args: ['--api-url', 'api:3000'], want: /--api-url must be an http:\/\/ or https:\/\/ URL/ },
    { args: ['--frobnicate'], want: /Unknown option '--frobnicate'/ },
  ]) {
    it(`exits 2 on ${row.args.join(' ')}, saying what to write instead`, async () => {
      const result = await loadlab(['render', join(EXPERIMENTS, 'smoke.yaml'), ...row.args]);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, row.want);
      assert.match(result.stderr, /loadlab render --help/);
    });
  }

  it('exits 2 without a file and 1 on a file it cannot read', async () => {
    const none = await loadlab(['render']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /name the experiment file, e\.g\. loadlab render experiments\/smoke\.yaml/);
    const missing = await loadlab(['render', join(dir, 'nope.yaml')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /loadlab render: cannot read .*nope\.yaml: no such file/);
    const directory = await loadlab(['render', dir]);
    assert.equal(directory.status, 1);
    assert.match(directory.stderr, /cannot read/);
  });
});

describe('loadlab render <experiment.yaml> with spec.generator.engine: loadlab', { concurrency: 2 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadlab-cli-engine-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** An example experiment switched to the loadlab engine, as a file. */
  function onLoadlabEngine(file: string, generator: Record<string, unknown> = {}): string {
    const document = parseDocument(readFileSync(join(EXPERIMENTS, file), 'utf8'));
    document.setIn(['spec', 'generator', 'engine'], 'loadlab');
    for (const [key, value] of Object.entries(generator)) document.setIn(['spec', 'generator', key], value);
    const path = join(dir, file);
    writeFileSync(path, document.toString());
    return path;
  }

  for (const file of CLUSTER_EXAMPLES) {
    it(`${file}: prints the experiment's ConfigMap and the driver Job; the ConfigMap parses back to the experiment`, async () => {
      const path = onLoadlabEngine(file);
      const result = await loadlab(['render', path, '--token-secret', SECRET]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stderr, '');
      assert.doesNotMatch(result.stdout, /: [&*]a\d+$/m, 'plain YAML, no anchors or aliases');
      const [configMap, job, ...rest] = manifests(result.stdout);
      assert.deepEqual(rest, []);
      const name = `${file.replace(/\.yaml$/, '')}-manual-driver`;
      assert.deepEqual([configMap!.kind, configMap!.metadata.name, job!.kind, job!.metadata.name], ['ConfigMap', name, 'Job', name]);
      const parsed = parseExperiment(configMap!.data!['experiment.json']!, 'experiment.json');
      assert.ok(parsed.ok);
      const original = parseExperiment(readFileSync(path, 'utf8'), file);
      assert.ok(original.ok);
      assert.deepEqual(parsed.experiment.spec, original.experiment.spec);
      const container = (job!.spec as { template: { spec: { containers: { args: string[]; image: string; env: { name: string; value: string }[] }[] } } }).template.spec.containers[0]!;
      assert.equal(container.image, 'loadlab/operator:dev');
      assert.equal(container.args[0], 'drive');
      assert.deepEqual(container.env.map((entry) => entry.name), ['LOADLAB_API_URL', 'LOADLAB_TOKEN_SECRET']);
      assert.equal(container.env[1]!.value, SECRET);
      assert.match(result.stdout, /^# Needs no k6-operator/m);
    });
  }

  it('takes the image, the start time, the linger and the phases; without --start-at each runner starts when its pod does', async () => {
    const path = onLoadlabEngine('breaking-point.yaml', { parallelism: 5 });
    const result = await loadlab(['render', path, '--phases', '2-3', '--run-id', 'step-1', '--token-secret', SECRET, '--image', 'registry.example/loadlab/operator:1.2', '--start-at', '2026-06-01T12:00:00Z', '--linger', '10']);
    assert.equal(result.status, 0, result.stderr);
    const [, job] = manifests(result.stdout);
    const spec = job!.spec as { parallelism: number; template: { spec: { containers: { args: string[]; image: string }[] } } };
    const container = spec.template.spec.containers[0]!;
    assert.equal(spec.parallelism, 5);
    assert.equal(container.image, 'registry.example/loadlab/operator:1.2');
    const flag = (name: string) => container.args[container.args.indexOf(name) + 1];
    assert.deepEqual([flag('--phases'), flag('--runners'), flag('--start-at'), flag('--linger')], ['2-3', '5', '2026-06-01T12:00:00Z', '10']);
    assert.equal(job!.metadata.annotations!['loadlab.dev/start-at'], '2026-06-01T12:00:00Z');
    const byHand = await loadlab(['render', path, '--token-secret', SECRET]);
    assert.ok(!manifests(byHand.stdout)[1]!.metadata.annotations!['loadlab.dev/start-at']);
    assert.doesNotMatch(byHand.stdout, /--start-at/);
  });

  for (const row of [
    { engine: 'loadlab', args: ['--format', 'script'], want: /--format script: the loadlab engine runs no script/ },
    { engine: 'loadlab', args: ['--remote-write-url', 'http://prometheus:9090/api/v1/write'], want: /--remote-write-url is for engine k6/ },
    { engine: 'loadlab', args: ['--start-at', 'soon'], want: /--start-at must be an RFC 3339 time/ },
    { engine: 'loadlab', args: ['--linger', 'forever'], want: /--linger must be a number of seconds from 0 to 3600/ },
    { engine: 'k6', args: ['--image', 'x'], want: /--image is for engine loadlab \(this experiment's spec\.generator\.engine is k6\)/ },
  ]) {
    it(`engine ${row.engine}: exits 2 on ${row.args.join(' ')}, saying why`, async () => {
      const path = row.engine === 'loadlab' ? onLoadlabEngine('smoke.yaml') : join(EXPERIMENTS, 'smoke.yaml');
      const result = await loadlab(['render', path, '--token-secret', SECRET, ...row.args]);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, row.want);
    });
  }
});

describe('loadlab (the dispatcher)', { concurrency: 2 }, () => {
  it('runs through a symlink, as npm links package bins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loadlab-bin-'));
    try {
      symlinkSync(BIN, join(dir, 'loadlab'));
      const run = spawnSync(process.execPath, [join(dir, 'loadlab'), '--help'], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /^Usage: loadlab <command>/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const row of [
    { args: ['--help'], status: 0, out: /Usage: loadlab <command>[\s\S]*render <experiment\.yaml>[\s\S]*run <experiment\.yaml>[\s\S]*drive --experiment FILE/ },
    { args: ['help'], status: 0, out: /Usage: loadlab <command>/ },
    { args: ['render', '--help'], status: 0, out: /Usage: loadlab render <experiment\.yaml> \[options\][\s\S]*--run-id ID[\s\S]*Exit status/ },
    { args: ['help', 'render'], status: 0, out: /Usage: loadlab render/ },
    { args: ['run', '--help'], status: 0, out: /Usage: loadlab run <experiment\.yaml>[\s\S]*--out DIR[\s\S]*--api-cpus LIST[\s\S]*Exit status/ },
    { args: ['drive', '--help'], status: 0, out: /Usage: loadlab drive --experiment FILE[\s\S]*--runners N[\s\S]*LOADLAB_TOKEN_SECRET[\s\S]*Exit status/ },
    { args: ['dashboard', '--help'], status: 0, out: /Usage: loadlab dashboard \[--output FILE\][\s\S]*PROMETHEUS_URL[\s\S]*Exit status/ },
    { args: ['dashboard', '--bogus'], status: 2, err: /loadlab dashboard: Unknown option '--bogus'/ },
    { args: ['compare', '--help'], status: 0, out: /Usage: loadlab compare BASELINE CANDIDATE[\s\S]*--min-effect N=V[\s\S]*breaking-steps=1[\s\S]*99 {3}regressed/ },
    { args: ['compare', 'a'], status: 2, err: /give exactly two runs, the baseline and the candidate/ },
    { args: ['compare', 'a', 'b', '--format', 'pdf'], status: 2, err: /--format must be one of text, markdown, json, html, not "pdf"/ },
    { args: ['compare', 'a', 'b', '--min-effect', 'p95=lots'], status: 2, err: /--min-effect p95=lots: expected a percentage such as 10%/ },
    { args: ['compare', '--previous', 'some/folder/', 'b'], status: 2, err: /--previous needs the BASELINE as NAMESPACE\/NAME of a LoadExperiment/ },
    { args: ['compare', 'no-such-run', 'b'], status: 1, err: /no-such-run: no such run folder or file/ },
    { args: ['compare', 'package.json', 'package.json'], status: 2, err: /package\.json has no per-interval record \("comparable"\)/ },
    { args: [], status: 2, err: /Usage: loadlab <command>/ },
    { args: ['frobnicate'], status: 2, err: /loadlab: unknown command "frobnicate"/ },
    { args: ['run'], status: 2, err: /give exactly one experiment file/ },
    { args: ['run', 'experiments/smoke.yaml', '--api-cpus', 'x'], status: 2, err: /--api-cpus: "x" is not a CPU list/ },
    { args: ['run', 'experiments/smoke.yaml', '--api-cpus', '4096'], status: 2, err: /--api-cpus: CPU 4096 is not available here/ },
  ]) {
    it(`loadlab ${row.args.join(' ')} -> exit ${row.status}`, async () => {
      const result = await loadlab(row.args);
      assert.equal(result.status, row.status, result.stderr);
      if (row.out) assert.match(result.stdout, row.out);
      if (row.err) assert.match(result.stderr, row.err);
    });
  }
});

describe("loadlab run and render refuse what a default installation's policy refuses, before starting anything", () => {
  it('a plan that asks 66,667 requests/s of one generator', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loadlab-policy-'));
    try {
      const file = join(dir, 'flood.json');
      writeFileSync(file, JSON.stringify({ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: 'flood' }, spec: { fleet: { devices: 1_000_000 }, load: { stages: [{ devices: 1_000_000, duration: '10s' }] } } }));
      const run = await loadlab(['run', file, '--out', join(dir, 'out')]);
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /^loadlab run: .*flood\.json: spec\.generator\.parallelism: at its peak the plan offers 66,667 requests\/s.*MAX_REQUESTS_PER_SECOND_PER_GENERATOR.*set parallelism to at least 4 \(an installation that changes none of its limits refuses this/m);
      assert.equal(run.stdout, '', 'nothing started');
      assert.ok(!existsSync(join(dir, 'out')), 'no run folder');
      const render = await loadlab(['render', file]);
      assert.equal(render.status, 2);
      assert.match(render.stderr, /flood\.json: spec\.generator\.parallelism: at its peak[\s\S]*refused by the operator's default policy/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loadlab dashboard', { concurrency: 2 }, () => {
  it('prints the dashboard the cluster installation provisions, byte for byte, and writes it with --output', async () => {
    const printed = await loadlab(['dashboard']);
    assert.equal(printed.status, 0, printed.stderr);
    const dashboard = JSON.parse(printed.stdout) as { uid: string; panels: unknown[]; templating: { list: { name: string }[] } };
    assert.equal(dashboard.uid, 'loadlab-experiment');
    assert.ok(dashboard.panels.length > 20);
    assert.deepEqual(dashboard.templating.list.map((variable) => variable.name).slice(0, 4), ['datasource', 'namespace', 'experiment', 'run']);
    const chart = manifests(readFileSync(join(OPERATOR_DIR, '..', 'charts', 'loadlab', '50-dashboards.yaml'), 'utf8')).find((m) => m.kind === 'ConfigMap' && m.data?.['loadlab-experiment.json']);
    assert.equal(chart?.data?.['loadlab-experiment.json'], printed.stdout, 'one dashboard: the chart provisions what the command prints');

    const dir = mkdtempSync(join(tmpdir(), 'loadlab-dashboard-'));
    try {
      const file = join(dir, 'dashboard.json');
      const written = await loadlab(['dashboard', '--output', file]);
      assert.equal(written.status, 0, written.stderr);
      assert.equal(written.stdout, '');
      assert.equal(readFileSync(file, 'utf8'), printed.stdout);
      const unwritable = await loadlab(['dashboard', '--output', join(dir, 'missing', 'dashboard.json')]);
      assert.equal(unwritable.status, 1);
      assert.match(unwritable.stderr, /cannot write .*missing\/dashboard\.json: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
