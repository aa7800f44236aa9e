import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { PostgresCluster } from './support/postgres.js';
import { login, startTestApi, TEST_SECRET } from './support/api.js';

/** Where scripts/setup.sh installs Schemathesis (its own venv, pinned there). */
const SCHEMATHESIS = join(process.env.LOADLAB_CACHE || join(homedir(), '.cache', 'loadlab'), 'schemathesis', 'bin', 'st');
/** The run's time budget: Schemathesis stops generating after it and reports what it found. */
const MAX_TIME_S = 45;

/**
 * The API against its own OpenAPI document, by a property-based tester (Schemathesis, every check
 * but one: status codes and headers as documented, invalid requests refused, 405 for undeclared
 * methods, no 5xx, responses matching their schemas). Real API, real PostgreSQL. Found a 500 on its
 * first runs: a reading of 1e-222 °C made PostgreSQL's rollup arithmetic underflow.
 */
describe('OpenAPI conformance: Schemathesis against the running API (real PostgreSQL)', () => {
  let pg: PostgresCluster;
  let api: Awaited<ReturnType<typeof startTestApi>>;
  before(async () => {
    pg = await PostgresCluster.start();
    api = await startTestApi(pg.url);
  });
  after(async () => {
    await api?.close();
    await pg?.destroy();
  });

  it(`passes every check within ${MAX_TIME_S} s of generated requests`, { timeout: (MAX_TIME_S + 120) * 1000 }, async () => {
    assert.ok(existsSync(SCHEMATHESIS), `Schemathesis is not installed at ${SCHEMATHESIS}: run npm run setup`);
    const { token } = await login(api.url, 'kettle-schemathesis');
    const hooks = fileURLToPath(new URL('../../test/schemathesis', import.meta.url));
    const args = [
      // 413 counted as a refusal of invalid data (schemathesis.toml says why).
      '--config-file', join(hooks, 'schemathesis.toml'),
      'run', `${api.url}/openapi.json`,
      // Every check; the hooks keep schema-valid readings inside the rules the document states in
      // words only (deviceTime's window and one reading per device and time, chargeNow <= chargeFull).
      '--checks', 'all',
      // The coverage phase's boundary cases bypass the hooks (a chargeNow over chargeFull reads as valid there).
      '--phases', 'examples,fuzzing',
      '--max-time', String(MAX_TIME_S),
      '--request-timeout', '10',
      '--seed', '20261202',
      // Nothing written into the working tree: every run starts from the seed alone.
      '--generation-database', 'none',
      '--workers', '1',
      '-H', `Authorization: Bearer ${token}`,
      '--no-color',
    ];
    // Date-times inside the API's deviceTime window (test/schemathesis/loadlab_hooks.py says why).
    const env = { ...process.env, SCHEMATHESIS_HOOKS: 'loadlab_hooks', PYTHONPATH: hooks, LOADLAB_TOKEN_SECRET: TEST_SECRET };
    const child = spawn(SCHEMATHESIS, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const summary = output.split('\n').filter((line) => /passed|failed|errors?|warnings?|test cases|Operations|API probing|Examples|Coverage|Fuzzing/i.test(line)).slice(-15);
    console.log(summary.map((line) => `  ${line}`).join('\n'));
        // The failures section first (what was wrong, and the answer), then the summary; a request body can be long.
    const failures = output.indexOf('FAILURES');
    assert.equal(code, 0, `Schemathesis found problems:\n${failures >= 0 ? `${output.slice(failures, failures + 3000)}\n…\n` : ''}${output.slice(-3000)}`);
  });
});
