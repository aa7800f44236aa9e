import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@loadlab/sandbox/postgres';
import { DRIVER_ENV } from '../../src/driver-job/index.js';
import { DRIVER_CONTAINER } from '../../src/contract/names.js';
import type { KubeClient } from '../../src/controller/index.js';
import { resolveEnv, type EnvEntry } from './pod-env.js';

/*
 * Stands in for the Job controller and the kubelet with a loadlab driver Job: one `loadlab drive`
 * process (the compiled bin, as the image's entry point runs it) per completion index, started
 * from the Job's own container arguments and environment. Only what a cluster provides and this
 * machine cannot is supplied, the way a pod would see it:
 *   - the ConfigMap volume: its data written to a directory, whose path replaces the mount path in
 *     the arguments (there is no kubelet to mount it);
 *   - JOB_COMPLETION_INDEX, which the Job controller sets in each pod of an Indexed Job;
 *   - the pod network: each pod's metrics port becomes a free loopback port (pods have their own
 *     addresses; these processes share one), and the API's Service name in LOADLAB_API_URL becomes
 *     the API's address, as cluster DNS and kube-proxy would resolve it.
 */

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

interface JobLike {
  metadata: { name: string; namespace?: string };
  spec: {
    completions?: number;
    template: {
      spec: {
        containers: { name: string; args?: string[]; env?: EnvEntry[]; volumeMounts?: { name: string; mountPath: string }[] }[];
        volumes?: { name: string; configMap?: { name: string } }[];
      };
    };
  };
}

export interface DriverPod {
  index: number;
  /** Where this pod's /metrics is (the port the stand-in gave it). */
  metricsUrl: string;
  metricsPort: number;
  args: string[];
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => { stdout: string; stderr: string };
}

export async function startDriverPods(
  job: JobLike,
  configMap: { data?: Record<string, string> },
  options: { apiUrl: string; workDir: string; env?: Record<string, string>; client?: KubeClient },
): Promise<DriverPod[]> {
  const pod = job.spec.template.spec;
  const container = pod.containers.find((entry) => entry.name === DRIVER_CONTAINER);
  if (!container) throw new Error(`Job ${job.metadata.name} has no container named ${DRIVER_CONTAINER}`);
  const configVolume = pod.volumes?.find((volume) => volume.configMap);
  const mount = container.volumeMounts?.find((entry) => entry.name === configVolume?.name);
  if (!configVolume || !mount) throw new Error(`Job ${job.metadata.name} mounts no ConfigMap`);
  const configDir = join(options.workDir, `${job.metadata.name}-config`);
  mkdirSync(configDir, { recursive: true });
  for (const [file, text] of Object.entries(configMap.data ?? {})) writeFileSync(join(configDir, file), text);

  const env = await resolveEnv(options.client, job.metadata.namespace ?? 'default', container.env ?? []);
  const pods: DriverPod[] = [];
  for (let index = 0; index < (job.spec.completions ?? 1); index++) {
    const metricsPort = await freePort();
    const args = (container.args ?? []).map((arg, position, all) => {
      if (all[position - 1] === '--metrics-port') return String(metricsPort);
      return arg.startsWith(`${mount.mountPath}/`) ? join(configDir, arg.slice(mount.mountPath.length + 1)) : arg;
    });
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env, [DRIVER_ENV.apiUrl]: options.apiUrl, [DRIVER_ENV.runnerIndex]: String(index), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
    pods.push({ index, metricsPort, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, args, process: child, exited, output: () => ({ stdout, stderr }) });
  }
  return pods;
}
