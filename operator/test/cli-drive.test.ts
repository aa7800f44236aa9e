// `loadlab drive`, what each pod of the loadlab engine's Job runs: the compiled bin, spawned with
// the Job's own arguments and environment (test/support/driver-pods.ts stands in for the Job
// controller and the kubelet), against a trivial HTTP server standing in for the API.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildDriverConfigMap, buildDriverJob, DRIVER_ENV, EXPERIMENT_FILE, experimentDocument, planDigest } from '../src/driver-job/index.js';
import { formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { arrivalCounts, buildTrafficPlan } from '../src/traffic/index.js';
import { startDriverPods } from './support/driver-pods.js';

const BIN = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js'));
const SECRET = 'cli-drive-test-secret-0123456789';

function experimentWith(spec: Record<string, unknown>): LoadExperiment {
  const manifest = { apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: 'drive', namespace: 'lab' }, spec };
  const result = parseExperiment(JSON.stringify(manifest), 'drive.json');
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

/** 6 s of load: 60 devices joining over 2 s, then held for 4 s, each reporting every 1 s and polling every 2 s. */
const EXPERIMENT = experimentWith({
  fleet: { devices: 60, reportInterval: '1s', pollInterval: '2s', seed: 5 },
  load: { stages: [{ devices: 60, duration: '2s' }, { devices: 60, duration: '4s', shape: 'hold' }] },
  generator: { engine: 'loadlab', parallelism: 2 },
});

describe('loadlab drive', () => {
  let dir: string;
  let server: Server;
  let apiUrl: string;
  const requests: { path: string; auth?: string; body: string }[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'loadlab-drive-'));
    writeFileSync(join(dir, EXPERIMENT_FILE), experimentDocument(EXPERIMENT, 'lab'));
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        requests.push({ path: request.url ?? '', ...(request.headers.authorization ? { auth: request.headers.authorization } : {}), body });
        response.writeHead(request.url === '/v1/command' ? 200 : 201, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    apiUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((ok) => server?.close(ok));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const drive = (args: string[], env: Record<string, string | undefined> = {}) => {
    const run = spawnSync(process.execPath, [BIN, 'drive', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } as NodeJS.ProcessEnv, timeout: 60_000 });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  };

  it('the Job\'s two pods, from its own arguments and environment, send the schedule between them, each arrival once, and exit 0', async () => {
    requests.length = 0;
    const plan = buildTrafficPlan(EXPERIMENT);
    const identity = { runId: 'r1-abcdef', namespace: 'lab', ownerUid: 'uid-1' };
    const job = buildDriverJob(EXPERIMENT, {
      ...identity,
      image: 'loadlab/operator:dev',
      plan,
      phaseRange: { from: 0, to: plan.phases.length },
      tokenSecret: SECRET,
      start: { at: new Date(Date.now() + 2000).toISOString(), delayS: 2 },
      metricsLingerS: 2,
    });
    const pods = await startDriverPods(job as Parameters<typeof startDriverPods>[0], buildDriverConfigMap(EXPERIMENT, identity), { apiUrl, workDir: dir });
    // Scraped during the linger, after the schedule: each pod's own counters of what it offered.
    const scraped = pods.map((pod) => new Promise<string>((ok) => setTimeout(() => void fetch(pod.metricsUrl).then((r) => r.text()).then(ok, () => ok('')), 2000 + plan.durationS * 1000 + 800)));
    const exits = await Promise.all(pods.map((pod) => pod.exited));
    for (const [index, exit] of exits.entries()) assert.deepEqual(exit, { code: 0, signal: null }, `pod ${index}: ${JSON.stringify(pods[index]!.output())}`);

    const whole = arrivalCounts(plan);
    const paths = (path: string) => requests.filter((request) => request.path === path);
    assert.equal(paths('/v1/measurements').length, whole.measurements, 'every measurement of the schedule');
    assert.equal(paths('/v1/command').length, whole.command, 'every poll');
    assert.equal(paths('/v1/devices/login').length, whole.login, 'every login');
    const measurements = paths('/v1/measurements').map((request) => `${request.auth} ${(JSON.parse(request.body) as { deviceTime: string }).deviceTime}`);
    assert.equal(new Set(measurements).size, measurements.length, 'no measurement sent twice');
    const logins = paths('/v1/devices/login').map((request) => request.body);
    assert.equal(new Set(logins).size, logins.length, 'no device logged in twice');

    for (const pod of pods) {
      const { stdout, stderr } = pod.output();
      assert.equal(stderr, '');
      const mine = arrivalCounts(plan, undefined, { index: pod.index, count: 2 });
      assert.match(stdout, new RegExp(`runner ${pod.index} of 2 for LoadExperiment lab/drive, phases 0-1 \\(6 s\\): ${mine.measurements} measurements, ${mine.command} polls, ${mine.login} logins`));
      assert.match(stdout, new RegExp(`done: sent ${mine.measurements + mine.command + mine.login} .*0 errors, 0 dropped`));
      const text = await scraped[pod.index]!;
      const offered = [...text.matchAll(/^loadlab_driver_requests_offered_total\{endpoint="(\w+)"\} (\d+)$/gm)].map((match) => [match[1], Number(match[2])]);
      assert.deepEqual(Object.fromEntries(offered), { measurements: mine.measurements, command: mine.command, login: mine.login }, `pod ${pod.index} offered its share, and /metrics served it after the schedule`);
    }
  });

  it('stops on SIGTERM (the Job deleted) with exit 130', async () => {
    const plan = buildTrafficPlan(EXPERIMENT);
    const job = buildDriverJob(EXPERIMENT, {
      runId: 'r2-abcdef', namespace: 'lab', image: 'x', plan, phaseRange: { from: 0, to: plan.phases.length }, tokenSecret: SECRET,
      start: { at: new Date(Date.now() + 60_000).toISOString(), delayS: 60 }, metricsLingerS: 0,
    });
    const [pod] = await startDriverPods({ ...job, spec: { ...job.spec, completions: 1 } } as Parameters<typeof startDriverPods>[0], buildDriverConfigMap(EXPERIMENT, { runId: 'r2-abcdef' }), { apiUrl, workDir: dir });
    // Its first line says it is waiting for its start time (its signal handlers are in place by then).
    for (let waited = 0; waited < 30_000 && !/loadlab drive: runner/.test(pod!.output().stdout); waited += 100) await new Promise((ok) => setTimeout(ok, 100));
    assert.match(pod!.output().stdout, /starting at /, 'the driver got going');
    pod!.process.kill('SIGTERM');
    const exit = await pod!.exited;
    assert.equal(exit.code, 130, JSON.stringify(pod!.output()));
    assert.match(pod!.output().stderr, /SIGTERM: stopping the schedule/);
  });

  const env = { [DRIVER_ENV.apiUrl]: 'http://127.0.0.1:1', [DRIVER_ENV.tokenSecret]: SECRET };
  const file = () => join(dir, EXPERIMENT_FILE);
  for (const row of [
    { name: 'no API URL or token secret', args: () => ['--experiment', file()], env: {}, want: [/LOADLAB_API_URL is not set/, /LOADLAB_TOKEN_SECRET is not set/] },
    { name: 'a runner index past the runner count', args: () => ['--experiment', file(), '--runners', '2'], env: { ...env, [DRIVER_ENV.runnerIndex]: '2' }, want: [/runner 2 of 2: the runner index must be a whole number from 0 to 1.*JOB_COMPLETION_INDEX/] },
    { name: 'an API URL that is not http', args: () => ['--experiment', file()], env: { ...env, [DRIVER_ENV.apiUrl]: 'postgres://db:5432' }, want: [/LOADLAB_API_URL: "postgres:\/\/db:5432" must be a plain http\(s\) origin/] },
    { name: 'a start time that is not one', args: () => ['--experiment', file(), '--start-at', 'at noon'], env, want: [/--start-at must be an RFC 3339 time/] },
    { name: 'phases outside the plan', args: () => ['--experiment', file(), '--phases', '0-5'], env, want: [/--phases must be FROM-TO with 0 <= FROM <= TO <= 1 \(the plan has 2 phases\), not "0-5"/] },
    { name: 'another version\'s plan', args: () => ['--experiment', file(), '--plan-digest', '0123456789abcdef'], env, want: [new RegExp(`computes another plan .*digest ${planDigest(buildTrafficPlan(EXPERIMENT))}, the Job's 0123456789abcdef.*operator's own image`)] },
    { name: 'no experiment', args: () => [], env, want: [/--experiment is required/] },
    { name: 'an unknown option', args: () => ['--experiment', file(), '--frobnicate'], env, want: [/Unknown option '--frobnicate'/] },
  ]) {
    it(`exits 2 on ${row.name}, saying what is wrong and where`, () => {
      const result = drive(row.args(), row.env);
      assert.equal(result.status, 2, result.stderr);
      for (const want of row.want) assert.match(result.stderr, want);
      assert.match(result.stderr, /loadlab drive --help/);
    });
  }

  it('exits 2 on an invalid experiment, located, and 1 on a file it cannot read', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: 'bad' }, spec: { fleet: { devices: 0 }, load: { stages: [{ devices: 1, duration: '1s' }] } } }));
    const invalid = drive(['--experiment', bad], env);
    assert.equal(invalid.status, 2);
    assert.match(invalid.stderr, /bad\.json:1:\d+: spec\.fleet\.devices: must be at least 1/);
    assert.match(invalid.stderr, /bad\.json is not a valid LoadExperiment/);
    const missing = drive(['--experiment', join(dir, 'nope.json')], env);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read .*nope\.json: no such file/);
  });
});
