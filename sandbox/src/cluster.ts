/**
 * The local one-host Kubernetes cluster (scripts/local-cluster/, see its README) for tests: etcd and
 * the control plane as host processes, four kubelets on containerd laid out as kind-config.yaml,
 * kube-proxy, kube-router (NetworkPolicies), CoreDNS, static volumes of the default StorageClass,
 * prometheus-operator and a Prometheus that also scrapes the kubelets' cAdvisor. Real components
 * throughout, built once by `npm run setup` (scripts/local-cluster/build.sh and images.sh).
 *
 *   const cluster = await LocalCluster.start({ onOutput: console.log });   // up.sh
 *   await cluster.kubectl(['get', 'nodes']);
 *   await cluster.stop();                                                // down.sh
 *
 * One cluster per machine (its names and address ranges are fixed), so start() first takes a
 * machine-wide lock: a second test run waits for the first one's stop() instead of tearing its
 * cluster down, and a cluster brought up by hand (`npm run cluster:up -- --provider=local`) is never
 * removed under its user. A lock whose owner is gone is stale; up.sh then removes whatever a killed
 * run left, as it always does. stop() runs down.sh, and so does this process on exit or on SIGINT,
 * SIGTERM or SIGHUP while a cluster is up: a failing test never leaves it running.
 *
 * The scripts need root (network namespaces, cgroups, mounts); so does this harness.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './control-plane.js';
import { runKubectl, type KubectlOptions } from './kubectl.js';

export interface LocalClusterOptions {
  /** Each line up.sh and down.sh print (progress, timings), as it comes. */
  onOutput?: (line: string) => void;
  /** Bound on up.sh (default 10 min: the first start on a machine imports every image). */
  startTimeoutMs?: number;
  /** How long to wait for another run's cluster to go (default 20 min), printed once through onOutput. */
  lockTimeoutMs?: number;
  /** kubectl binary; default $KUBECTL, else /usr/bin/kubectl. */
  kubectlBin?: string;
}

/** What up.sh reported about its own start. */
export interface StartFigures {
  /** The harness' wall time from running up.sh to its exit, ms. */
  upMs: number;
  /** up.sh's "cluster up in": nodes Ready and CoreDNS answering, s. */
  readyS?: number;
  /** up.sh's "add-ons ready in": prometheus-operator and Prometheus ready too, s. */
  addOnsReadyS?: number;
}

const LOCK_PATH = join(tmpdir(), 'loadlab-local-cluster.lock');
const DOWN_TIMEOUT_MS = 120_000;

function cacheDir(): string {
  return process.env.LOADLAB_CACHE || join(homedir(), '.cache', 'loadlab');
}

/** Where up.sh writes the cluster's state (certificates, kubeconfig, logs), as lib.sh decides. */
function stateDir(): string {
  return process.env.LOADLAB_CLUSTER_STATE || join(cacheDir(), 'cluster');
}

function script(name: 'up.sh' | 'down.sh'): string {
  return join(repoRoot(), 'scripts', 'local-cluster', name);
}

// --- the machine-wide lock -------------------------------------------------------------------------
// Line 1: "<pid> <start time in clock ticks>" of the owning process (pid 0: a cluster brought up by
// hand, owned until its `cluster:down`); line 2: who, for the messages. The start time tells a
// live owner from a reused pid. scripts/cluster.sh writes and reads the same format.

/** Field 22 of /proc/<pid>/stat (the process' start time), or undefined when it is gone. */
function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

interface LockOwner {
  pid: number;
  ticks: string;
  who: string;
}

function readLock(): LockOwner | undefined {
  let text: string;
  try {
    text = readFileSync(LOCK_PATH, 'utf8');
  } catch {
    return undefined;
  }
  const [first = '', who = '(unknown)'] = text.split('\n');
  const [pid = '', ticks = ''] = first.trim().split(/\s+/);
  return { pid: Number(pid) || 0, ticks, who };
}

/** Whether the lock's owner still holds the cluster: a live process, or a hand-made cluster that is still there. */
function ownerHolds(owner: LockOwner): boolean {
  if (owner.pid === 0) return existsSync(stateDir());
  return processStartTicks(owner.pid) === owner.ticks;
}

function tryLock(who: string): boolean {
  let fd: number;
  try {
    fd = openSync(LOCK_PATH, 'wx', 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  writeSync(fd, `${process.pid} ${processStartTicks(process.pid) ?? ''}\n${who}\n`);
  closeSync(fd);
  return true;
}

async function acquireLock(who: string, timeoutMs: number, say: (line: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    if (tryLock(who)) return;
    const owner = readLock();
    if (owner && owner.pid === process.pid) throw new Error('this process already runs the local cluster: stop() it before starting another');
    if (!owner || !ownerHolds(owner)) {
      // Stale (its owner died, or a hand-made cluster is gone): take it over. rm + 'wx' again, so
      // of two runs that both found it stale only one wins.
      rmSync(LOCK_PATH, { force: true });
      continue;
    }
    if (owner.pid === 0) {
      throw new Error(
        `the local cluster is in use: ${owner.who}. Only one can run on a machine; bring it down with \`npm run cluster:down -- --provider=local\` first`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(`the local cluster is still in use after ${Math.round(timeoutMs / 1000)} s: ${owner.who} (pid ${owner.pid}). Only one can run on a machine`);
    }
    if (!told) say(`cluster: waiting for the local cluster, in use by ${owner.who} (pid ${owner.pid})`);
    told = true;
    await sleep(2_000);
  }
}

function releaseLock(): void {
  const owner = readLock();
  if (owner?.pid === process.pid) rmSync(LOCK_PATH, { force: true });
}

// --- tear-down on exit -------------------------------------------------------------------------------
const running = new Set<LocalCluster>();
/** up.sh while start() waits for it: a process that ends then must not leave its cluster behind. */
let starting: ChildProcess | undefined;
let exitHooksInstalled = false;

function downSync(): void {
  spawnSync('bash', [script('down.sh')], { stdio: 'inherit', timeout: DOWN_TIMEOUT_MS });
}

function tearDownAll(): void {
  if (starting) {
    // up.sh's daemons run in sessions of their own: they outlive it, and down.sh removes them.
    starting.kill('SIGKILL');
    starting = undefined;
    downSync();
    releaseLock();
  }
  for (const cluster of running) cluster.stopSync();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', tearDownAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      tearDownAll();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Runs a script, each output line to `onLine`; resolves to its exit code (null when killed). */
function runScript(path: string, args: readonly string[], timeoutMs: number, onLine: (line: string) => void, onSpawn?: (child: ChildProcess) => void): Promise<number | null> {
  return new Promise((ok) => {
    const child = spawn('bash', [path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let pending = { out: '', err: '' };
    const feed = (key: 'out' | 'err') => (chunk: string) => {
      const lines = (pending[key] + chunk).split('\n');
      pending = { ...pending, [key]: lines.pop() ?? '' };
      for (const line of lines) onLine(line);
    };
    child.stdout.setEncoding('utf8').on('data', feed('out'));
    child.stderr.setEncoding('utf8').on('data', feed('err'));
    // SIGINT first: up.sh then removes what it started; SIGKILL if it does not end in 60 s.
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      onLine(`cluster: ${path} did not finish within ${Math.round(timeoutMs / 1000)} s: interrupting it`);
      child.kill('SIGINT');
      killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    }, timeoutMs);
    child.once('error', (error) => onLine(`cluster: could not run ${path}: ${error.message}`));
    child.once('close', (code) => {
      clearTimeout(timer);
      clearTimeout(killer);
      for (const rest of [pending.out, pending.err]) if (rest) onLine(rest);
      ok(code);
    });
  });
}

export class LocalCluster {
  /** The admin kubeconfig up.sh wrote (client certificate of group system:masters). */
  readonly kubeconfigPath: string;
  readonly figures: StartFigures;

  private readonly kubectlBin: string;
  private readonly kubectlCache: string;
  private readonly onOutput: (line: string) => void;
  private stopped: Promise<void> | undefined;

  private constructor(init: { kubectlBin: string; onOutput: (line: string) => void; figures: StartFigures }) {
    this.kubeconfigPath = join(stateDir(), 'kubeconfig');
    this.kubectlBin = init.kubectlBin;
    this.onOutput = init.onOutput;
    this.figures = init.figures;
    this.kubectlCache = mkdtempSync(join(tmpdir(), 'loadlab-cluster-kubectl-'));
  }

  /**
   * Brings the cluster up (scripts/local-cluster/up.sh) and resolves once its nodes are Ready, DNS
   * answers and Prometheus runs. A failed or timed-out start leaves nothing behind (up.sh removes
   * what it started; down.sh runs anyway) and rejects with the end of up.sh's output.
   */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const say = options.onOutput ?? (() => {});
    if (process.getuid?.() !== 0) {
      throw new Error('the local cluster needs root (its scripts create network namespaces, cgroups and mounts and run kubelets): run the tests as root');
    }
    await acquireLock(`a test run in ${process.cwd()} (node pid ${process.pid})`, options.lockTimeoutMs ?? 20 * 60_000, say);
    installExitHooks();
    const lines: string[] = [];
    const began = performance.now();
    let code: number | null;
    try {
      code = await runScript(script('up.sh'), [], options.startTimeoutMs ?? 10 * 60_000, (line) => {
        lines.push(line);
        say(line);
      }, (child) => (starting = child));
    } catch (error) {
      releaseLock();
      throw error;
    } finally {
      starting = undefined;
    }
    const upMs = Math.round(performance.now() - began);
    if (code !== 0) {
      // up.sh removes what it started when it fails; make sure, then give the lock back.
      await runScript(script('down.sh'), [], DOWN_TIMEOUT_MS, say);
      releaseLock();
      throw new Error(`scripts/local-cluster/up.sh failed (exit ${code}) after ${Math.round(upMs / 1000)} s; its last lines:\n${lines.slice(-30).join('\n')}`);
    }
    const summary = lines.find((line) => / cluster up in \d+s/.test(line)) ?? '';
    const readyS = Number(/cluster up in (\d+)s/.exec(summary)?.[1]);
    const addOnsReadyS = Number(/add-ons ready in (\d+)s/.exec(summary)?.[1]);
    const cluster = new LocalCluster({
      kubectlBin: options.kubectlBin || process.env.KUBECTL || '/usr/bin/kubectl',
      onOutput: say,
      figures: { upMs, ...(Number.isFinite(readyS) ? { readyS } : {}), ...(Number.isFinite(addOnsReadyS) ? { addOnsReadyS } : {}) },
    });
    running.add(cluster);
    return cluster;
  }

  /** Runs kubectl against the cluster as its admin; resolves to stdout, rejects with a KubectlError holding stderr. */
  kubectl(args: readonly string[], options: KubectlOptions = {}): Promise<string> {
    return runKubectl(this.kubectlBin, this.kubeconfigPath, this.kubectlCache, args, options);
  }

  /** Removes the cluster (scripts/local-cluster/down.sh) and gives the machine-wide lock back. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      const code = await runScript(script('down.sh'), [], DOWN_TIMEOUT_MS, this.onOutput);
      running.delete(this);
      rmSync(this.kubectlCache, { recursive: true, force: true });
      releaseLock();
      if (code !== 0) throw new Error(`scripts/local-cluster/down.sh failed (exit ${code}): run it by hand (as root) to remove the cluster`);
    })();
    return this.stopped;
  }

  /** For process exit: down.sh synchronously. */
  stopSync(): void {
    running.delete(this);
    downSync();
    rmSync(this.kubectlCache, { recursive: true, force: true });
    releaseLock();
  }
}
