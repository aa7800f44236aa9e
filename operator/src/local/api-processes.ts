import { existsSync } from 'node:fs';
import { apiEnvironment } from '../contract/api-environment.js';
import { fileURLToPath } from 'node:url';
import type { LoadExperiment } from '../schema/index.js';
import { freePort } from '@loadlab/sandbox/postgres';
import { ManagedProcess } from './processes.js';
import { onCpus } from './cpu-affinity.js';

/**
 * The API's entry point, from the @loadlab/api package this one depends on (built by npm run build).
 * Resolved when asked: the operator's image runs without the API package.
 */
export function apiMain(): string {
  let main: string;
  try {
    main = fileURLToPath(import.meta.resolve('@loadlab/api'));
  } catch {
    throw new Error('the API package (@loadlab/api) is not installed here: run npm ci and npm run build in the repository');
  }
  if (!existsSync(main)) throw new Error(`the API is not built (${main} is missing): run npm run build`);
  return main;
}


export interface ApiProcess {
  url: string;
  port: number;
  process: ManagedProcess;
}

/**
 * `target.replicas` API processes on free ports (on `cpus` when given). The first one applies the migrations; the others
 * start after it is ready, so they find the schema current.
 */
export async function startApiProcesses(experiment: LoadExperiment, databaseUrl: string, tokenSecret: string, cpus?: readonly number[]): Promise<ApiProcess[]> {
  const main = apiMain();
  const env = { ...process.env, ...apiEnvironment(experiment, databaseUrl, tokenSecret) };
  // With CPUs of their own, taskset starts the process on them (it execs node: the same pid).
  const { command, args } = cpus ? onCpus(cpus, process.execPath, [main]) : { command: process.execPath, args: [main] };
  const start = async (index: number): Promise<ApiProcess> => {
    const port = await freePort();
    const api = ManagedProcess.start(`api-${index}`, command, args, { ...env, PORT: String(port) });
    const url = `http://127.0.0.1:${port}`;
    await api.waitForHttp(`${url}/readyz`, 60_000);
    return { url, port, process: api };
  };
  const first = await start(0);
  const rest = await Promise.all(Array.from({ length: experiment.spec.target.replicas - 1 }, (_, i) => start(i + 1)));
  return [first, ...rest];
}
