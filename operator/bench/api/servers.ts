import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@loadlab/sandbox/postgres';
import { ManagedProcess } from '../../src/local/processes.js';
import { measurementPayload } from '../../src/traffic/index.js';
import { apiFile } from './api-package.js';
import type { Log } from './output.js';
import { benchExperiment } from './step-plan.js';
import { deviceKey } from '../../src/contract/device-token.js';

/*
 * The servers under test, each in its own process on a free loopback port, started from the
 * @loadlab/api package:
 *   nest            the NestJS API as shipped (write batching on);
 *   raw             the baseline, a minimal Fastify + pg server with the API's SQL, one statement
 *                   per request (api/bench/raw-server.ts);
 *   nest-unbatched  the API with write batching and the poll index off (WRITE_BATCH_MAX_ROWS=1,
 *                   COMMAND_INDEX=false): one statement per request as the raw server does, so nest-unbatched/raw compares the frameworks on
 *                   the same statements, while nest/raw shows what the API as shipped gets out of
 *                   the same database.
 */

/** Both servers' TOKEN_SECRET; the generator signs the devices' tokens with it. */
export const TOKEN_SECRET = 'bench-secret-0123456789abcdef';

export const SERVER_KINDS = ['nest', 'raw', 'nest-unbatched'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];
export const SERVER_LABEL: Readonly<Record<ServerKind, string>> = { nest: 'NestJS API', raw: 'raw Fastify + pg', 'nest-unbatched': 'NestJS, no batching' };

export interface ServerUnderTest {
  kind: ServerKind;
  url: string;
  pid: number;
  process: ManagedProcess;
}

export interface ServerSettings {
  databaseUrl: string;
  pool: number;
  /** Node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  log: Log;
}

/** Starts a server and waits for /healthz (both servers have it). The schema must exist. */
export async function startServer(kind: ServerKind, settings: ServerSettings): Promise<ServerUnderTest> {
  const entry = apiFile(kind === 'raw' ? '@loadlab/api/bench/raw-server' : '@loadlab/api');
  const port = await freePort();
  const env = {
    ...process.env,
    DATABASE_URL: settings.databaseUrl,
    TOKEN_SECRET,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DB_POOL_SIZE: String(settings.pool),
    MIGRATE_ON_START: 'false',
    ...(kind === 'nest-unbatched' ? { WRITE_BATCH_MAX_ROWS: '1', COMMAND_INDEX: 'false' } : {}),
  };
  const server = ManagedProcess.start(kind, process.execPath, [...(settings.nodeArgs ?? []), entry], env);
  // The API logs at warn: show its first few lines live (the tail is in errors anyway).
  let shown = 0;
  const show = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() && shown++ < 5) settings.log(`    [${kind} output] ${line.slice(0, 300)}`);
    }
  };
  server.child.stdout?.on('data', show);
  server.child.stderr?.on('data', show);
  const url = `http://127.0.0.1:${port}`;
  await server.waitForHttp(`${url}/healthz`, 60_000);
  return { kind, url, pid: server.pid!, process: server };
}

/** SIGTERM, then SIGKILL after 15 s: the API drains within its 10 s shutdown grace (and writes a --cpu-prof profile). */
export async function stopServer(server: ServerUnderTest): Promise<void> {
  await server.process.stop(15_000);
}

export function serverFailed(server: ServerUnderTest): string | undefined {
  return server.process.isRunning ? undefined : `${SERVER_LABEL[server.kind]} exited during the step:\n${server.process.tail(20)}`;
}

/** One round trip per route through the server, so a broken set-up fails loudly before any load. */
export async function checkRoutes(server: ServerUnderTest): Promise<void> {
  const label = SERVER_LABEL[server.kind];
  const login = await fetch(`${server.url}/v1/devices/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ serial: 'bench-route-check', key: deviceKey(TOKEN_SECRET, 'bench-route-check') }) });
  if (login.status !== 200) throw new Error(`${label}: login answered ${login.status}: ${await login.text()}`);
  const { token } = (await login.json()) as { token: string };
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const body = JSON.stringify(measurementPayload(benchExperiment(1), 0, Date.now() - 60_000));
  const measurement = await fetch(`${server.url}/v1/measurements`, { method: 'POST', headers: auth, body });
  if (measurement.status !== 201) throw new Error(`${label}: measurement answered ${measurement.status}: ${await measurement.text()}`);
  const command = await fetch(`${server.url}/v1/command`, { headers: { authorization: `Bearer ${token}` } });
  if (command.status !== 200) throw new Error(`${label}: command poll answered ${command.status}: ${await command.text()}`);
}

/** Waits (bounded) until the server answers /healthz quickly again: an overloaded step leaves a backlog. */
export async function waitResponsive(server: ServerUnderTest): Promise<void> {
  const deadline = Date.now() + 20_000;
  let fast = 0;
  while (Date.now() < deadline && fast < 3) {
    const start = performance.now();
    const ok = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    fast = ok && performance.now() - start < 20 ? fast + 1 : 0;
    await sleep(200);
  }
}
