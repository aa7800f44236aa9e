import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LoadExperiment } from '../schema/index.js';
import { freePort } from './postgres.js';
import { ManagedProcess } from './processes.js';

/** The API as built in this repository (npm run build). */
export const API_MAIN = fileURLToPath(new URL('../../../../api/dist/src/main.js', import.meta.url));

/** The API's environment for an experiment: the spec's typed knobs, then its extra env. */
export function apiEnvironment(experiment: LoadExperiment, databaseUrl: string, tokenSecret: string): Record<string, string> {
  const target = experiment.spec.target;
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    TOKEN_SECRET: tokenSecret,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DB_POOL_SIZE: String(target.dbPoolSize),
  };
  if (target.writeBatchMaxRows !== undefined) env.WRITE_BATCH_MAX_ROWS = String(target.writeBatchMaxRows);
  if (target.cpuCostMs !== undefined) env.CPU_COST_MS = String(target.cpuCostMs);
  if (target.queryDelayMs !== undefined) env.QUERY_DELAY_MS = String(target.queryDelayMs);
  for (const { name, value } of target.env ?? []) env[name] = value;
  return env;
}

export interface ApiProcess {
  url: string;
  port: number;
  process: ManagedProcess;
}

/**
 * `target.replicas` API processes on free ports. The first one applies the migrations; the others
 * start after it is ready, so they find the schema current.
 */
export async function startApiProcesses(experiment: LoadExperiment, databaseUrl: string, tokenSecret: string): Promise<ApiProcess[]> {
  if (!existsSync(API_MAIN)) throw new Error(`the API is not built (${API_MAIN} is missing): run npm run build`);
  const env = { ...process.env, ...apiEnvironment(experiment, databaseUrl, tokenSecret) };
  const start = async (index: number): Promise<ApiProcess> => {
    const port = await freePort();
    const api = ManagedProcess.start(`api-${index}`, process.execPath, [API_MAIN], { ...env, PORT: String(port) });
    const url = `http://127.0.0.1:${port}`;
    await api.waitForHttp(`${url}/readyz`, 60_000);
    return { url, port, process: api };
  };
  const first = await start(0);
  const rest = await Promise.all(Array.from({ length: experiment.spec.target.replicas - 1 }, (_, i) => start(i + 1)));
  return [first, ...rest];
}
