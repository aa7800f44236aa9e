import type { LoadExperiment } from '../schema/load-experiment.js';
import { apiName } from './names.js';

/*
 * What the API (api/src/config/config.ts) is given to run an experiment: the same environment in a
 * pod (the operator's Deployment) and in a local process (local mode), and where it listens.
 */

/** The port of the API container (its PORT default), which the experiment's Service exposes. */
export const API_PORT = 3000;

/** The in-cluster URL of the experiment's API Service, <name>-api in the experiment's namespace. */
export function defaultApiUrl(experiment: LoadExperiment): string {
  const namespace = experiment.metadata.namespace ?? 'default';
  return `http://${apiName(experiment.metadata.name)}.${namespace}.svc:${API_PORT}`;
}

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
