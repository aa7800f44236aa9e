import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startApi, type RunningApi } from '../../src/main.js';

import { freePort } from './postgres.js';

export const TEST_SECRET = 'test-secret-0123456789abcdef';
const TOKEN_SECRET = TEST_SECRET;
const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/** The API in this process on a free port, against the given database. */
export async function startTestApi(databaseUrl: string, overrides: Record<string, string> = {}): Promise<RunningApi & { config: Config }> {
  const config = loadConfig({ DATABASE_URL: databaseUrl, TOKEN_SECRET: TEST_SECRET, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...overrides });
  return { ...(await startApi(config)), config };
}

/**
 * A device's key as its provisioning computes it (README: device login), written out here with
 * node:crypto rather than taken from the API, so the tests check the API against the format.
 */
export function deviceKey(serial: string, secret = TEST_SECRET): string {
  return createHmac('sha256', secret).update(`loadlab-device-key:${serial}`).digest('base64url');
}

export async function login(baseUrl: string, serial: string): Promise<{ deviceId: number; token: string }> {
  const response = await fetch(`${baseUrl}/v1/devices/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ serial, key: deviceKey(serial) }) });
  if (response.status !== 200) throw new Error(`login ${serial}: ${response.status} ${await response.text()}`);
  return (await response.json()) as { deviceId: number; token: string };
}

export function measurement(overrides: Record<string, unknown> = {}, at = new Date()): Record<string, unknown> {
  return { deviceTime: at.toISOString(), chargeNow: 800, chargeFull: 1200, chargeRate: -15.5, ambientTemp: 21, waterTemp: 60, waterLevel: 1.2, ...overrides };
}

export function post(baseUrl: string, path: string, token: string | undefined, body: unknown, contentType = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  return fetch(`${baseUrl}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** The API as its own process (`node dist/src/main.js`), for signals and exit codes. */
export async function spawnApi(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string; stdout: () => string; stderr: () => string; exited: Promise<number | null> }> {
  const port = env.PORT ?? String(await freePort());
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, TOKEN_SECRET, PORT: port, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // stdout holds the JSON logs, stderr the start-up errors; both go into one transcript, and
  // stdout alone is kept too for the tests that read the logs.
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    stderr += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  return { child, url, stdout: () => stdout, stderr: () => stderr, exited };
}

export async function waitUntilReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`API at ${url} not ready within ${timeoutMs} ms`);
}
