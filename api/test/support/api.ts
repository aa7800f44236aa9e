import { loadConfig, type Config } from '../../src/config/config.js';
import { startApi, type RunningApi } from '../../src/main.js';

export const TEST_SECRET = 'test-secret-0123456789abcdef';

/** The API in this process on a free port, against the given database. */
export async function startTestApi(databaseUrl: string, overrides: Record<string, string> = {}): Promise<RunningApi & { config: Config }> {
  const config = loadConfig({ DATABASE_URL: databaseUrl, TOKEN_SECRET: TEST_SECRET, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...overrides });
  return { ...(await startApi(config)), config };
}

export async function login(baseUrl: string, serial: string): Promise<{ deviceId: number; token: string }> {
  const response = await fetch(`${baseUrl}/v1/devices/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ serial }) });
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
