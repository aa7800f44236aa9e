import { apiMain } from '../../src/local/api-processes.js';
import { freePort } from '@loadlab/sandbox/postgres';
import { ManagedProcess } from '../../src/local/processes.js';
import type { KubeClient, KubeObject } from '../../src/controller/index.js';
import { resolveEnv, type EnvEntry } from './pod-env.js';

/*
 * The kubelet's part for the API Deployment the operator builds: the real API (api/dist, what the
 * image runs) started as the pod's container would be, with the container's own environment. Only
 * HOST and PORT differ: a pod has its own network namespace, processes here share the loopback.
 */

export interface ApiDeployment extends KubeObject {
  spec: {
    replicas: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: { containers: { name: string; env?: EnvEntry[] }[] } & Record<string, unknown>;
    };
  };
  status?: Record<string, unknown>;
}

export interface ApiPod {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  process: ManagedProcess;
}

/** The environment of the Deployment's (first) container, as the kubelet hands it to the process (its Secret read through `client`). */
export function containerEnv(deployment: ApiDeployment, client: KubeClient): Promise<Record<string, string>> {
  return resolveEnv(client, deployment.metadata.namespace ?? 'default', deployment.spec.template.spec.containers[0]?.env ?? []);
}

/** Starts the real API with the Deployment's container environment and waits until /readyz answers (its migrations have run). */
export async function runApiPod(deployment: ApiDeployment, client: KubeClient, timeoutMs = 30_000): Promise<ApiPod> {
  const port = await freePort();
  const env = { ...process.env, ...(await containerEnv(deployment, client)), HOST: '127.0.0.1', PORT: String(port) };
  const api = ManagedProcess.start(`api pod of ${deployment.metadata.name}`, process.execPath, [apiMain()], env);
  const url = `http://127.0.0.1:${port}`;
  try {
    await api.waitForHttp(`${url}/readyz`, timeoutMs);
  } catch (error) {
    await api.stop();
    throw error;
  }
  return { url, port, process: api };
}
