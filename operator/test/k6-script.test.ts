// The generated k6 script. k6 cannot run on these machines (AGPL; this workplace does not use it),
// so the script is (1) type-checked against @types/k6 with tsc, (2) inspected as a bundle, and
// (3) executed under Node with FAKE k6 modules that follow the k6 docs for the few calls it makes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan, periodicArrivals } from '../src/traffic/index.js';
import { embeddedScriptConfig, renderK6Script, validateK6Options, type RenderedScript, type ScriptConfig } from '../src/k6/index.js';

const OPERATOR_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXPERIMENTS = join(OPERATOR_DIR, '..', 'experiments');
const TSC = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');

function example(file: string): LoadExperiment {
  const result = parseExperiment(readFileSync(join(EXPERIMENTS, file), 'utf8'), file);
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

function tsc(args: string[]): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [TSC, ...args], { cwd: OPERATOR_DIR, encoding: 'utf8', timeout: 120_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('the k6 script type-checks against @types/k6 (tsc only: k6 cannot run here)', () => {
  it('tsc -p operator/tsconfig.k6.json: the entry point and the traffic model, with k6 types and ES2020, no Node', () => {
    const { status, output } = tsc(['-p', 'tsconfig.k6.json']);
    assert.equal(status, 0, `tsc -p tsconfig.k6.json failed:\n${output}`);
  });

  it('the same settings catch Node APIs and wrong k6 calls (the check is not vacuous)', () => {
    // Under dist/ (build output) so that 'k6/http' resolves through the repository's node_modules.
    const dir = mkdtempSync(join(OPERATOR_DIR, 'dist', 'k6-typecheck-'));
    try {
      writeFileSync(
        join(dir, 'bad.ts'),
        "import http from 'k6/http';\nhttp.post('http://x/', 'body', { timeout: true });\nexport const secret = Buffer.from('x');\n",
      );
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../../tsconfig.k6.json', include: ['bad.ts'] }));
      const { status, output } = tsc(['-p', join(dir, 'tsconfig.json')]);
      assert.notEqual(status, 0);
      assert.match(output, /Cannot find name 'Buffer'/);
      assert.match(output, /bad\.ts\(2,/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the bundle: one self-contained ES module per experiment', () => {
  const files = ['smoke.yaml', 'quickstart.yaml', 'seed-20k.yaml', 'bottleneck-db-pool.yaml', 'breaking-point.yaml'];
  for (const file of files) {
    it(`${file}: imports only k6 modules, embeds its configuration, exports the scenario functions`, () => {
      const experiment = example(file);
      const script = renderK6Script(experiment);
      const imports = [...script.source.matchAll(/^import .* from "([^"]+)";$/gm)].map((match) => match[1]);
      assert.deepEqual(imports.sort(), ['k6', 'k6/crypto', 'k6/encoding', 'k6/execution', 'k6/http', 'k6/metrics']);
      assert.doesNotMatch(script.source, /\brequire\(|from "node:|process\.env/);
      assert.deepEqual(embeddedScriptConfig(script.source), script.config, 'the configuration is a JSON constant at the top');
      assert.match(script.source, /^export \{\n {2}command,\n {2}login,\n {2}measurements,\n {2}options\n\};$/m);
      assert.deepEqual(validateK6Options(script.config.options, ['command', 'login', 'measurements']), []);
      assert.ok(script.source.length < 200_000, `${script.source.length} bytes`);
    });
  }

  it('is byte-identical when rendered twice (the reconciler compares sha256s)', () => {
    const experiment = example('quickstart.yaml');
    const first = renderK6Script(experiment);
    const second = renderK6Script(experiment);
    assert.equal(first.source, second.source);
    assert.equal(first.sha256, second.sha256);
    assert.notEqual(renderK6Script(experiment, { apiUrl: 'http://elsewhere:3000' }).sha256, first.sha256);
  });
});

// ------------------------------------------------------------------------------------ fake k6

/*
 * Minimal stand-ins for the k6 modules the script imports, written from the k6 docs:
 * k6/crypto hmac(algorithm, secret, data, 'base64rawurl') is unpadded base64url of the HMAC;
 * k6/encoding b64encode(text, 'rawurl') is unpadded base64url of the UTF-8 bytes; k6/http get/post
 * return {status, body}; k6/execution.scenario.iterationInTest is the iteration number.
 */
const FAKE_K6: Record<string, string> = {
  'k6.mjs': `export function check(value, sets, tags) {
  let all = true;
  for (const [name, test] of Object.entries(sets)) {
    const ok = Boolean(test(value));
    globalThis.fakeK6.checks.push({ name, ok, tags });
    all &&= ok;
  }
  return all;
}`,
  'k6-http.mjs': `function send(method, url, body, params) {
  const request = { method, url, body, params };
  globalThis.fakeK6.requests.push(request);
  return globalThis.fakeK6.respond(request);
}
export default {
  get: (url, params) => send('GET', url, null, params),
  post: (url, body, params) => send('POST', url, body, params),
};`,
  'k6-execution.mjs': `export default { get scenario() { return { iterationInTest: globalThis.fakeK6.iteration }; } };`,
  'k6-crypto.mjs': `import { createHmac } from 'node:crypto';
export function hmac(algorithm, secret, data, encoding) {
  if (encoding !== 'base64rawurl') throw new Error('fake k6/crypto: only base64rawurl is faked');
  return createHmac(algorithm, secret).update(data).digest('base64url');
}`,
  'k6-encoding.mjs': `export function b64encode(input, variant) {
  if (variant !== 'rawurl') throw new Error('fake k6/encoding: only rawurl is faked');
  return Buffer.from(input, 'utf8').toString('base64url');
}`,
  'k6-metrics.mjs': `export class Counter {
  constructor(name) { this.name = name; }
  add(value, tags) { globalThis.fakeK6.metrics.push({ name: this.name, value, tags }); }
}
export class Gauge extends Counter {}`,
};

interface FakeRequest {
  method: string;
  url: string;
  body: string | null;
  params: { headers: Record<string, string>; tags: Record<string, string>; timeout: string; responseType?: string };
}

interface FakeK6 {
  iteration: number;
  requests: FakeRequest[];
  checks: { name: string; ok: boolean; tags: Record<string, string> }[];
  metrics: { name: string; value: number; tags: Record<string, string> }[];
  respond: (request: FakeRequest) => { status: number; body: string | null };
}

interface ScriptModule {
  options: Record<string, unknown>;
  measurements(): void;
  command(): void;
  login(): void;
}

const fakeGlobals = globalThis as unknown as { fakeK6: FakeK6; __ENV: Record<string, string> };

/** Loads a rendered script with the fake k6 modules in place of the real ones. */
async function loadOnFakeK6(dir: string, name: string, script: RenderedScript): Promise<ScriptModule> {
  const source = script.source.replace(/from "k6(\/[a-z]+)?";/g, (_match, sub?: string) => `from "./k6${sub ? `-${sub.slice(1)}` : ''}.mjs";`);
  const path = join(dir, `${name}.mjs`);
  writeFileSync(path, source);
  return (await import(pathToFileURL(path).href)) as ScriptModule;
}

function decodeToken(token: string, secret: string): { deviceId: number; expiresAtS: number } {
  const [payload, signature] = token.split('.') as [string, string];
  assert.equal(signature, createHmac('sha256', secret).update(payload).digest('base64url'), 'signed with the API secret');
  const [id, exp] = Buffer.from(payload, 'base64url').toString('utf8').split('.');
  return { deviceId: Number(id), expiresAtS: Number(exp) };
}

describe('the bundle run on a FAKE k6 runtime in Node (the real k6 cannot run here)', () => {
  const SECRET = 'fake-k6-secret-0123456789';
  let dir: string;
  let smoke: ScriptModule;
  let smokeConfig: ScriptConfig;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'loadlab-fake-k6-'));
    mkdirSync(dir, { recursive: true });
    for (const [file, text] of Object.entries(FAKE_K6)) writeFileSync(join(dir, file), text);
    fakeGlobals.__ENV = { LOADLAB_TOKEN_SECRET: SECRET, LOADLAB_RUN_ID: 'r7', LOADLAB_API_URL: 'http://127.0.0.1:9/' };
    const rendered = renderK6Script(example('smoke.yaml'));
    smokeConfig = rendered.config;
    smoke = await loadOnFakeK6(dir, 'smoke', rendered);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function reset(respond: FakeK6['respond'] = () => ({ status: 201, body: null })): FakeK6 {
    fakeGlobals.fakeK6 = { iteration: 0, requests: [], checks: [], metrics: [], respond };
    return fakeGlobals.fakeK6;
  }

  it('exports the rendered options with the run tag from LOADLAB_RUN_ID', () => {
    assert.deepEqual(smoke.options, { ...smokeConfig.options, tags: { experiment: 'default/smoke', run: 'r7' } });
  });

  it('posts each device\'s measurement with its own token, route-template tags and a valid reading', () => {
    const fake = reset();
    const plan = buildTrafficPlan(example('smoke.yaml'));
    // The 5 s ramp to 20 devices offers 25 requests, then the 30 s hold 20 every 2 s: 325 in all.
    const total = Math.round(plan.totals.measurements);
    const rampRequests = Math.round(plan.phases[0]!.expectedRequests.measurements);
    for (let n = 0; n < total; n++) {
      fake.iteration = n;
      smoke.measurements();
    }
    assert.equal(fake.requests.length, 325);
    const devices: number[] = [];
    for (const request of fake.requests) {
      assert.equal(request.method, 'POST');
      assert.equal(request.url, 'http://127.0.0.1:9/v1/measurements', 'LOADLAB_API_URL wins, without a doubled slash');
      assert.deepEqual(request.params.tags, { endpoint: 'measurements', name: '/v1/measurements' });
      assert.equal(request.params.timeout, '10s');
      assert.equal(request.params.headers['Content-Type'], 'application/json');
      const { deviceId, expiresAtS } = decodeToken(request.params.headers.Authorization!.replace(/^Bearer /, ''), SECRET);
      assert.ok(expiresAtS > Date.now() / 1000 + 3600);
      const body = JSON.parse(request.body!) as Record<string, number | string>;
      assert.deepEqual(Object.keys(body).sort(), ['ambientTemp', 'chargeFull', 'chargeNow', 'chargeRate', 'deviceTime', 'waterLevel', 'waterTemp']);
      assert.ok((body.chargeNow as number) <= (body.chargeFull as number));
      assert.ok(Math.abs(Date.parse(body.deviceTime as string) - Date.now()) < 60_000, 'deviceTime is now');
      devices.push(deviceId - 1);
    }
    // The script's devices, iteration by iteration, are the local driver's for the same plan (one schedule).
    assert.deepEqual(devices, [...periodicArrivals(plan, 'measurements')].map((arrival) => arrival.device));
    assert.ok(fake.checks.every((check) => check.ok && check.tags.endpoint === 'measurements'));
    // The fleet gauge (k6_loadlab_fleet_devices): rising through the ramp, then the hold's 20.
    const fleet = fake.metrics.filter((metric) => metric.name === 'loadlab_fleet_devices').map((metric) => metric.value);
    assert.equal(fleet.length, 325, 'one reading per measurement');
    assert.ok(fleet.every((value, index) => value >= 0 && value <= 20 && (index === 0 || value >= fleet[index - 1]!)), 'never above the plan, never falling in a ramp-then-hold plan');
    assert.equal(fleet[0]! < 20, true, 'the ramp starts small');
    assert.deepEqual(fleet.slice(rampRequests + 10), Array(325 - rampRequests - 10).fill(20), 'the hold reports its fleet');
  });

  it('polls for commands with a device token and counts a non-200 as a failed check', () => {
    let status = 200;
    const fake = reset(() => ({ status, body: null }));
    fake.iteration = 5;
    smoke.command();
    status = 503;
    smoke.command();
    assert.deepEqual(fake.requests.map((request) => [request.method, request.url, request.body]), [
      ['GET', 'http://127.0.0.1:9/v1/command', null],
      ['GET', 'http://127.0.0.1:9/v1/command', null],
    ]);
    assert.deepEqual(fake.checks.map((check) => check.ok), [true, false]);
    assert.deepEqual(fake.requests[0]!.params.tags, { endpoint: 'command', name: '/v1/command' });
  });

  it('logs device n in at login iteration n and checks the API returned the registered id n+1', () => {
    const fake = reset((request) => {
      const serial = (JSON.parse(request.body!) as { serial: string }).serial;
      const index = Number(serial.split('-').at(-1));
      return { status: 200, body: JSON.stringify({ deviceId: index === 3 ? 999 : index + 1, token: 't', expiresAt: 'x' }) };
    });
    for (let n = 0; n < smokeConfig.login.devices + 2; n++) {
      fake.iteration = n;
      smoke.login();
    }
    assert.equal(fake.requests.length, 20, 'iterations past the planned logins send nothing');
    assert.deepEqual(JSON.parse(fake.requests[7]!.body!), { serial: 'kettle-1-00000007', key: createHmac('sha256', SECRET).update('loadlab-device-key:kettle-1-00000007').digest('base64url') });
    assert.equal(fake.requests[7]!.params.responseType, 'text', 'the body is read although the script discards bodies elsewhere');
    assert.deepEqual(fake.requests[7]!.params.tags, { endpoint: 'login', name: '/v1/devices/login' });
    const idChecks = fake.checks.filter((check) => check.name === 'login returned the registered device id');
    assert.equal(idChecks.filter((check) => !check.ok).length, 1, 'the device that came back with another id fails the check');
    assert.deepEqual(fake.metrics, [{ name: 'loadlab_login_device_mismatch', value: 1, tags: { endpoint: 'login' } }]);
  });

  it('fails an iteration with an actionable message when LOADLAB_TOKEN_SECRET is missing', () => {
    reset();
    const secret = fakeGlobals.__ENV.LOADLAB_TOKEN_SECRET;
    delete fakeGlobals.__ENV.LOADLAB_TOKEN_SECRET;
    try {
      assert.throws(() => smoke.measurements(), /LOADLAB_TOKEN_SECRET is not set: give the runners the TOKEN_SECRET/);
    } finally {
      fakeGlobals.__ENV.LOADLAB_TOKEN_SECRET = secret!;
    }
  });
});
