/*
 * What the tests on the local one-host cluster (scripts/local-cluster/) share: starting it and
 * installing loadlab as a user does, kubectl and Prometheus through the API server, polling, and
 * the [figures] lines a run prints.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalCluster } from '@loadlab/sandbox/cluster';
import { repoRoot } from '@loadlab/sandbox/control-plane';

export const root = repoRoot();

/** The in-cluster Prometheus' HTTP API, through the API server's service proxy. */
const PROMETHEUS = '/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/api/v1';

/** The Node version package-lock.json pins (scripts/local-cluster/lib.sh names the Node image after it). */
export function nodeVersion(): string {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  return lock.packages['node_modules/node']?.version ?? assert.fail('no node package in package-lock.json');
}

const figures: string[] = [];
/** A measured figure: printed now and again in the summary at the end. */
export function figure(text: string): void {
  figures.push(text);
  console.log(`[figures] ${text}`);
}
export function figuresSummary(): string {
  return `[figures] summary:\n  ${figures.join('\n  ')}`;
}

/**
 * Polls `check` every `everyMs` until it returns a value (not undefined); fails after `timeoutMs`
 * with the last error seen. An assertion failing inside `check` fails at once (a state that cannot
 * get better); other errors (a kubectl call refused while something restarts) are retried.
 */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 1_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) assert.fail(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? `; last error: ${last}` : ''}`);
    await sleep(everyMs);
  }
}

export interface Condition { type: string; status: string; reason?: string; message?: string }
export interface ObjectMeta { name: string; namespace?: string; labels?: Record<string, string>; uid?: string; ownerReferences?: { uid: string }[]; deletionTimestamp?: string; creationTimestamp?: string }
export interface ContainerSpec { name: string; image: string; securityContext?: { runAsUser?: number; readOnlyRootFilesystem?: boolean } }
export interface Pod {
  metadata: ObjectMeta;
  spec: { nodeName?: string; serviceAccountName?: string; securityContext?: { runAsUser?: number }; containers: ContainerSpec[]; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] };
  status: { phase: string; conditions?: Condition[]; containerStatuses?: { name: string; ready: boolean; imageID: string; restartCount: number }[] };
}
export interface List<T> { items: T[] }
export interface PromSample { metric: Record<string, string>; value: [number, string] }
export interface PromSeries { metric: Record<string, string>; values: [number, string][] }

/** kubectl and Prometheus on a running local cluster. */
export class ClusterClient {
  constructor(readonly cluster: LocalCluster) {}

  kubectl(args: string[], options?: Parameters<LocalCluster['kubectl']>[1]): Promise<string> {
    return this.cluster.kubectl(args, options);
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse(await this.kubectl([...args, '-o', 'json'])) as T;
  }

  /** The pods of a namespace that are not on their way out. */
  async pods(namespace: string, selector?: string): Promise<Pod[]> {
    return (await this.json<List<Pod>>(['-n', namespace, 'get', 'pods', ...(selector ? ['-l', selector] : [])])).items.filter((pod) => !pod.metadata.deletionTimestamp);
  }

  /** Runs a command in a pod's container: its stdout, or a rejection holding its stderr. */
  exec(namespace: string, pod: string, container: string, command: string[], timeoutMs = 30_000): Promise<string> {
    return this.kubectl(['-n', namespace, 'exec', pod, '-c', container, '--', ...command], { timeoutMs });
  }

  private async prometheus<T>(path: string, params: Record<string, string>): Promise<T> {
    const body = JSON.parse(await this.kubectl(['get', '--raw', `${PROMETHEUS}/${path}?${new URLSearchParams(params)}`])) as { status: string; data: { result: T } };
    assert.equal(body.status, 'success', params.query);
    return body.data.result;
  }

  /** An instant query of the cluster's Prometheus. */
  query(expr: string): Promise<PromSample[]> {
    return this.prometheus('query', { query: expr });
  }

  /** A range query of the cluster's Prometheus (times in seconds), as Grafana sends one. */
  queryRange(expr: string, start: number, end: number, step: number): Promise<PromSeries[]> {
    return this.prometheus('query_range', { query: expr, start: String(start), end: String(end), step: String(step) });
  }

  /** The one value of an instant query; fails when it has no data. */
  async value(expr: string): Promise<number> {
    const [first, ...rest] = await this.query(expr);
    assert.ok(first, `Prometheus has no data for ${expr}`);
    assert.equal(rest.length, 0, `one series for ${expr}`);
    return Number(first.value[1]);
  }
}

let running: Promise<ClusterClient> | undefined;

/**
 * The local cluster of this test process: the first suite to ask starts it (and prints how long
 * that took), the others share it; stopCluster() at the end of the file removes it. One start-up
 * (a minute or two) for every suite of the file.
 */
export function startCluster(): Promise<ClusterClient> {
  running ??= bringUp();
  return running;
}

async function bringUp(): Promise<ClusterClient> {
  const cluster = await LocalCluster.start({ onOutput: (line) => console.log(`  ${line}`), lockTimeoutMs: 20 * 60_000 });
  const f = cluster.figures;
  figure(
    `cluster start-up: up.sh ${(f.upMs / 1000).toFixed(0)} s; nodes Ready and DNS answering after ${f.readyS ?? '?'} s, ` +
      `prometheus-operator and Prometheus ready after ${f.addOnsReadyS ?? '?'} s`,
  );
  return new ClusterClient(cluster);
}

/** Removes the cluster, if this process started one; prints how long that took and every figure of the file. */
export async function stopCluster(): Promise<void> {
  const started = running;
  running = undefined;
  const client = await started?.catch(() => undefined);
  if (!client) return;
  const began = performance.now();
  await client.cluster.stop();
  figure(`tear-down (down.sh) ${((performance.now() - began) / 1000).toFixed(1)} s`);
  console.log(figuresSummary());
}

/** `scripts/cluster.sh install --provider=local`, as a user installs loadlab: its exit code and output. */
export function installLoadlab(): Promise<{ code: number | null; text: string }> {
  return new Promise((ok) => {
    const child = spawn('bash', [join(root, 'scripts', 'cluster.sh'), 'install', '--provider=local'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 18 * 60_000 });
    let text = '';
    const take = (chunk: Buffer) => {
      text += chunk.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('close', (code) => ok({ code, text }));
  });
}
