/**
 * A real Kubernetes control plane for the operator's tests, like controller-runtime's envtest:
 * etcd + kube-apiserver on loopback, no kubelet, no controllers (so no pods run, namespaces get no
 * default service account, nothing garbage-collects). Objects are stored and validated for real:
 * CRD schemas, server-side apply, RBAC, admission (except ServiceAccount).
 *
 * The binaries are built once by `scripts/build-control-plane.sh` (run by `npm run setup`) into
 * `${LOADLAB_CACHE:-~/.cache/loadlab}/bin/{kube-apiserver,etcd}-<version>`; KUBE_APISERVER_BIN and
 * ETCD_BIN override them. kubectl is the machine's (`KUBECTL`, default /usr/bin/kubectl).
 *
 *   const cp = await ControlPlane.start();
 *   await cp.installVendoredCrds();
 *   await cp.kubectl(['get', 'crds']);
 *   await cp.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runKubectl, type KubectlOptions } from './kubectl.js';

export { KubectlError, type KubectlOptions } from './kubectl.js';

export interface ControlPlaneOptions {
  /** kube-apiserver binary; default $KUBE_APISERVER_BIN, else the cached build of the pinned version. */
  apiserverBin?: string;
  /** etcd binary; default $ETCD_BIN, else the cached build of the pinned version. */
  etcdBin?: string;
  /** kubectl binary; default $KUBECTL, else /usr/bin/kubectl. */
  kubectlBin?: string;
  /** How long etcd + kube-apiserver may take to become ready (default 90 s; a few seconds is usual). */
  startTimeoutMs?: number;
  /** Extra kube-apiserver flags (e.g. `--feature-gates=...`), appended after envtest's defaults. */
  apiserverFlags?: string[];
  /** Keep the temp dir (data, certs, logs, kubeconfig) after stop(); also LOADLAB_KEEP_CONTROL_PLANE=1. */
  keepTempDir?: boolean;
}

const SUPPORT_DIR = dirname(fileURLToPath(import.meta.url));
const BUILD_SCRIPT = join('scripts', 'build-control-plane.sh');

/**
 * The repository root: the nearest folder above this file holding scripts/build-control-plane.sh
 * (two levels up from sandbox/src/, three from the compiled sandbox/dist/src/).
 */
export function repoRoot(): string {
  for (let dir = SUPPORT_DIR; ; dir = dirname(dir)) {
    if (existsSync(join(dir, BUILD_SCRIPT))) return dir;
    if (dirname(dir) === dir) return resolve(SUPPORT_DIR, '..', '..', '..');
  }
}

/** Where the vendored third-party CRDs are read from: $LOADLAB_VENDOR_DIR, default <repo>/../shared/vendor. */
export function vendorDir(): string {
  return process.env.LOADLAB_VENDOR_DIR || resolve(repoRoot(), '..', 'shared', 'vendor');
}

/** The vendored CRD files installVendoredCrds() applies, by path (never copied into the repo). */
export function vendoredCrdPaths(): string[] {
  const dir = vendorDir();
  return [
    join(dir, 'k6-operator-v1.6.0', 'k6.io_testruns.yaml'),
    join(dir, 'prometheus-operator-v0.93.0', 'monitoring.coreos.com_podmonitors.yaml'),
    join(dir, 'prometheus-operator-v0.93.0', 'monitoring.coreos.com_servicemonitors.yaml'),
  ];
}

/** The versions pinned at the top of scripts/build-control-plane.sh (the one place they are set). */
export function pinnedVersions(): { kubeApiserver: string; etcd: string } {
  const script = join(repoRoot(), BUILD_SCRIPT);
  const text = readFileSync(script, 'utf8');
  const kube = /^KUBE_VERSION=(\S+)/m.exec(text)?.[1];
  const etcd = /^ETCD_VERSION=(\S+)/m.exec(text)?.[1];
  if (!kube || !etcd) throw new Error(`no KUBE_VERSION=/ETCD_VERSION= pins found in ${script}`);
  return { kubeApiserver: kube, etcd };
}

function cacheBinDir(): string {
  return join(process.env.LOADLAB_CACHE || join(homedir(), '.cache', 'loadlab'), 'bin');
}

function findBinaries(options: ControlPlaneOptions): { apiserver: string; etcd: string } {
  let apiserver = options.apiserverBin || process.env.KUBE_APISERVER_BIN;
  let etcd = options.etcdBin || process.env.ETCD_BIN;
  if (!apiserver || !etcd) {
    const versions = pinnedVersions();
    apiserver ||= join(cacheBinDir(), `kube-apiserver-${versions.kubeApiserver}`);
    etcd ||= join(cacheBinDir(), `etcd-${versions.etcd}`);
  }
  const missing = [apiserver, etcd].filter((bin) => !existsSync(bin));
  if (missing.length > 0) {
    throw new Error(
      `control plane binaries not found: ${missing.join(', ')}. Run \`npm run setup\` (or \`bash scripts/build-control-plane.sh\`) ` +
        'to build kube-apiserver and etcd from the Go module proxy once, or point KUBE_APISERVER_BIN / ETCD_BIN at existing binaries.',
    );
  }
  return { apiserver, etcd };
}

/** `count` distinct free TCP ports on 127.0.0.1 (held open together so they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((ok, fail) => {
        const server = createServer();
        server.once('error', fail);
        server.listen(0, '127.0.0.1', () => ok(server));
      }),
    ),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((ok) => server.close(() => ok()))));
  return ports;
}

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
  exitCode: number | null | undefined; // undefined while running
}

function startProcess(name: string, bin: string, args: string[], logPath: string, append = false): Proc {
  const out: WriteStream = createWriteStream(logPath, { flags: append ? 'a' : 'w' });
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const proc: Proc = { name, child, log: logPath, exitCode: undefined, exited: Promise.resolve(null) };
  proc.exited = new Promise<number | null>((ok) => {
    child.once('error', (error) => {
      out.write(`\nspawn ${bin}: ${error.message}\n`);
      proc.exitCode = null;
      ok(null);
    });
    child.once('exit', (code, signal) => {
      proc.exitCode = code ?? (signal ? -1 : null);
      // The pipes may still hold output: close the log once both have ended.
      let open = 2;
      const done = (): void => {
        if (--open === 0) out.end();
      };
      if (child.stdout!.readableEnded) done();
      else child.stdout!.once('end', done);
      if (child.stderr!.readableEnded) done();
      else child.stderr!.once('end', done);
      ok(proc.exitCode);
    });
  });
  return proc;
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface HttpResult {
  status: number;
  body: string;
}

function get(url: string, headers: Record<string, string> = {}, ca?: string): Promise<HttpResult> {
  return new Promise((ok, fail) => {
    const secure = url.startsWith('https:');
    const req = (secure ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', headers, timeout: 5_000, ...(secure ? (ca ? { ca } : { rejectUnauthorized: false }) : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', fail);
    req.end();
  });
}

/** Every control plane still running in this process, stopped synchronously on exit. */
const running = new Set<ControlPlane>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const plane of running) plane.killSync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const plane of running) plane.killSync();
      // Then die of the signal as if nobody had listened, unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

export class ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** Bearer token of the admin user (`loadlab-admin`, group system:masters). */
  readonly token: string;
  /** A kubeconfig for the admin user (current context `loadlab-test`). */
  readonly kubeconfigPath: string;
  /** PEM of the CA that signed the apiserver's serving certificate (the kubeconfig trusts it). */
  readonly caFile: string;
  /** The temp dir holding etcd's data, certs, logs and the kubeconfig (removed by stop()). */
  readonly dir: string;
  /** Logs of the two processes (inside `dir`). */
  readonly logs: { etcd: string; apiserver: string };
  /** etcd's client URL. */
  readonly etcdUrl: string;
  /** How long start() took, in ms. */
  startupMs = 0;

  private readonly kubectlBin: string;
  private readonly keepTempDir: boolean;
  private readonly procs: Proc[] = [];
  private apiserverCommand: { bin: string; args: string[] } | undefined;
  private stopped: Promise<void> | undefined;

  private constructor(init: {
    dir: string;
    server: string;
    token: string;
    etcdUrl: string;
    kubectlBin: string;
    keepTempDir: boolean;
  }) {
    this.dir = init.dir;
    this.server = init.server;
    this.token = init.token;
    this.etcdUrl = init.etcdUrl;
    this.kubectlBin = init.kubectlBin;
    this.keepTempDir = init.keepTempDir;
    this.kubeconfigPath = join(init.dir, 'kubeconfig');
    this.caFile = join(init.dir, 'certs', 'apiserver.crt');
    this.logs = { etcd: join(init.dir, 'etcd.log'), apiserver: join(init.dir, 'kube-apiserver.log') };
  }

  /**
   * Starts etcd and kube-apiserver on free loopback ports and waits until the apiserver is ready.
   * Retries twice when a port was taken between choosing it and binding it.
   */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const bins = findBinaries(options);
    let lastError: unknown;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        return await ControlPlane.startOnce(bins, options);
      } catch (error) {
        lastError = error;
        if (!(error instanceof Error && /address already in use/i.test(error.message))) throw error;
      }
    }
    throw lastError;
  }

  private static async startOnce(bins: { apiserver: string; etcd: string }, options: ControlPlaneOptions): Promise<ControlPlane> {
    const began = performance.now();
    const timeoutMs = options.startTimeoutMs ?? 90_000;
    const deadline = Date.now() + timeoutMs;
    const dir = mkdtempSync(join(tmpdir(), 'loadlab-control-plane-'));
    const [etcdClientPort, etcdPeerPort, apiserverPort] = (await freePorts(3)) as [number, number, number];
    const plane = new ControlPlane({
      dir,
      server: `https://127.0.0.1:${apiserverPort}`,
      token: randomBytes(24).toString('hex'),
      etcdUrl: `http://127.0.0.1:${etcdClientPort}`,
      kubectlBin: options.kubectlBin || process.env.KUBECTL || '/usr/bin/kubectl',
      keepTempDir: options.keepTempDir ?? process.env.LOADLAB_KEEP_CONTROL_PLANE === '1',
    });
    installExitHooks();
    running.add(plane);
    try {
      // --- etcd ---------------------------------------------------------------------------------
      const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
      plane.procs.push(
        startProcess(
          'etcd',
          bins.etcd,
          [
            `--name=loadlab`,
            `--data-dir=${join(dir, 'etcd')}`,
            `--listen-client-urls=${plane.etcdUrl}`,
            `--advertise-client-urls=${plane.etcdUrl}`,
            `--listen-peer-urls=${peerUrl}`,
            `--initial-advertise-peer-urls=${peerUrl}`,
            `--initial-cluster=loadlab=${peerUrl}`,
            '--unsafe-no-fsync=true', // throwaway data: as envtest does
            '--log-level=warn',
          ],
          plane.logs.etcd,
        ),
      );
      await plane.waitFor('etcd', deadline, async () => {
        const res = await get(`${plane.etcdUrl}/health`);
        return res.status === 200 && /"health":\s*"true"/.test(res.body);
      });

      // --- credentials ----------------------------------------------------------------------------
      const certDir = join(dir, 'certs');
      mkdirSync(certDir);
      const serviceAccountKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const saKey = join(dir, 'sa.key');
      const saPub = join(dir, 'sa.pub');
      writeFileSync(saKey, serviceAccountKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(saPub, serviceAccountKey.publicKey.export({ type: 'spki', format: 'pem' }));
      const tokenFile = join(dir, 'tokens.csv');
      writeFileSync(tokenFile, `${plane.token},loadlab-admin,loadlab-admin,"system:masters"\n`, { mode: 0o600 });

      // --- kube-apiserver (flags as controller-runtime's envtest) ---------------------------------
      plane.apiserverCommand = {
        bin: bins.apiserver,
        args: [
          `--etcd-servers=${plane.etcdUrl}`,
          `--cert-dir=${certDir}`, // it writes a self-signed serving cert (and its CA) there
          `--secure-port=${apiserverPort}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          '--endpoint-reconciler-type=none', // the `kubernetes` Service may not point at loopback
          '--service-cluster-ip-range=10.0.0.0/24',
          '--allow-privileged=true',
          '--disable-admission-plugins=ServiceAccount',
          '--authorization-mode=RBAC',
          `--token-auth-file=${tokenFile}`,
          `--service-account-issuer=${plane.server}`,
          `--service-account-key-file=${saPub}`,
          `--service-account-signing-key-file=${saKey}`,
          ...(options.apiserverFlags ?? []),
        ],
      };
      plane.procs.push(startProcess('kube-apiserver', plane.apiserverCommand.bin, plane.apiserverCommand.args, plane.logs.apiserver));
      await plane.apiserverReady(deadline);
      plane.writeKubeconfig();
      plane.startupMs = Math.round(performance.now() - began);
      return plane;
    } catch (error) {
      await plane.stop();
      throw error;
    }
  }

  private apiserverReady(deadline: number): Promise<void> {
    return this.waitFor('kube-apiserver', deadline, async () => {
      const res = await get(`${this.server}/readyz`, { authorization: `Bearer ${this.token}` });
      return res.status === 200;
    });
  }

  /**
   * Stops kube-apiserver and starts it again with the same flags, certificates and port (a control
   * plane upgrade or crash, as clients see it: connections drop, watches end). With `compactEtcd`,
   * etcd is compacted to its current revision while the apiserver is down, so every watch resumed
   * from a resource version seen before is answered 410 Gone and has to list again.
   */
  async restartApiserver(options: { compactEtcd?: boolean } = {}): Promise<{ compactedRevision?: number }> {
    const index = this.procs.findIndex((proc) => proc.name === 'kube-apiserver');
    const old = this.procs[index];
    if (!old || !this.apiserverCommand) throw new Error('no kube-apiserver to restart');
    if (old.exitCode === undefined) {
      old.child.kill('SIGTERM');
      if (!(await Promise.race([old.exited.then(() => true), sleep(5_000).then(() => false)]))) {
        old.child.kill('SIGKILL');
        await old.exited;
      }
    }
    const compactedRevision = options.compactEtcd ? await this.compactEtcd() : undefined;
    this.procs[index] = startProcess('kube-apiserver', this.apiserverCommand.bin, this.apiserverCommand.args, this.logs.apiserver, true);
    await this.apiserverReady(Date.now() + 90_000);
    return compactedRevision === undefined ? {} : { compactedRevision };
  }

  /** Compacts etcd's history up to its current revision (etcd's JSON gateway); resolves to that revision. */
  async compactEtcd(): Promise<number> {
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${this.etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { header?: { revision?: string } };
    };
    const revision = Number((await post('/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 })).header?.revision);
    if (!(revision > 0)) throw new Error('etcd did not say its revision');
    await post('/v3/kv/compaction', { revision: String(revision), physical: true });
    return revision;
  }

  /** Polls `ready` until it is true; fails early, with the log's tail, when a process exits. */
  private async waitFor(what: string, deadline: number, ready: () => Promise<boolean>): Promise<void> {
    for (;;) {
      const dead = this.procs.find((proc) => proc.exitCode !== undefined);
      if (dead) {
        await Promise.race([dead.exited, sleep(500)]);
        throw new Error(`${dead.name} exited (code ${dead.exitCode}) while waiting for ${what}; its log (${dead.log}):\n${tail(dead.log)}`);
      }
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) {
        const last = this.procs.at(-1)!;
        throw new Error(`${what} not ready in time; ${last.name}'s log (${last.log}):\n${tail(last.log)}`);
      }
      await sleep(100);
    }
  }

  private writeKubeconfig(): void {
    // The apiserver's self-generated apiserver.crt holds the serving cert and the CA that signed it
    // (for 127.0.0.1 and localhost), so it doubles as the CA bundle.
    const trust = existsSync(this.caFile) ? `certificate-authority: ${this.caFile}` : 'insecure-skip-tls-verify: true';
    writeFileSync(
      this.kubeconfigPath,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: loadlab-test',
        '  cluster:',
        `    server: ${this.server}`,
        `    ${trust}`,
        'users:',
        '- name: loadlab-admin',
        '  user:',
        `    token: ${this.token}`,
        'contexts:',
        '- name: loadlab-test',
        '  context:',
        '    cluster: loadlab-test',
        '    user: loadlab-admin',
        '    namespace: default',
        'current-context: loadlab-test',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  }

  /** Runs kubectl against this control plane; resolves to its stdout, rejects with a KubectlError holding stderr. */
  kubectl(args: readonly string[], options: KubectlOptions = {}): Promise<string> {
    return runKubectl(this.kubectlBin, this.kubeconfigPath, join(this.dir, 'kube-cache'), args, options);
  }

  /** GET a path of the apiserver as the admin user (e.g. `/apis/k6.io/v1alpha1`). */
  async getRaw(path: string): Promise<HttpResult> {
    return get(`${this.server}${path}`, { authorization: `Bearer ${this.token}` }, readFileSync(this.caFile, 'utf8'));
  }

  /**
   * Applies CRD files (server-side: the big ones exceed client-side apply's annotation limit),
   * waits until each is Established and its resources are served; resolves to the CRD names.
   */
  async installCrds(paths: readonly string[], timeoutMs = 60_000): Promise<string[]> {
    if (paths.length === 0) return [];
    for (const path of paths) {
      if (!existsSync(path)) throw new Error(`CRD file not found: ${path} (vendored CRDs are read from $LOADLAB_VENDOR_DIR, default <repo>/../shared/vendor)`);
    }
    const applied = await this.kubectl(
      ['apply', '--server-side', '--force-conflicts', '--field-manager=loadlab-test', '-o', 'name', ...paths.flatMap((path) => ['-f', path])],
      { timeoutMs },
    );
    const names = applied
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .map((line) => line.replace(/^customresourcedefinition\.apiextensions\.k8s\.io\//, ''));
    await this.kubectl(['wait', '--for=condition=Established', `--timeout=${Math.ceil(timeoutMs / 1000)}s`, ...names.map((name) => `crd/${name}`)], {
      timeoutMs: timeoutMs + 5_000,
    });
    // Established means the apiserver accepted the CRD; wait until discovery serves it too.
    const deadline = Date.now() + timeoutMs;
    for (const name of names) {
      const crd = JSON.parse(await this.kubectl(['get', `crd/${name}`, '-o', 'json'])) as {
        spec: { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] };
      };
      for (const version of crd.spec.versions.filter((v) => v.served)) {
        for (;;) {
          const res = await this.getRaw(`/apis/${crd.spec.group}/${version.name}`).catch(() => undefined);
          if (res?.status === 200 && (JSON.parse(res.body) as { resources: { name: string }[] }).resources.some((r) => r.name === crd.spec.names.plural)) break;
          if (Date.now() > deadline) throw new Error(`CRD ${name}: ${crd.spec.group}/${version.name} not served within ${timeoutMs} ms`);
          await sleep(100);
        }
      }
    }
    return names;
  }

  /**
   * Installs k6-operator's TestRun CRD (v1.6.0) and prometheus-operator's PodMonitor and
   * ServiceMonitor CRDs (v0.93.0), read by path from $LOADLAB_VENDOR_DIR (default <repo>/../shared/vendor).
   */
  installVendoredCrds(): Promise<string[]> {
    return this.installCrds(vendoredCrdPaths());
  }

  /** Creates a namespace (no controllers run: it gets no default service account). */
  async createNamespace(name: string): Promise<string> {
    await this.kubectl(['create', 'namespace', name]);
    return name;
  }

  /** Stops kube-apiserver, then etcd (SIGTERM, SIGKILL after 3 s), and removes the temp dir. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      for (const proc of [...this.procs].reverse()) {
        if (proc.exitCode !== undefined) continue;
        proc.child.kill('SIGTERM');
        const exited = await Promise.race([proc.exited.then(() => true), sleep(3_000).then(() => false)]);
        if (!exited) {
          proc.child.kill('SIGKILL');
          await proc.exited;
        }
      }
      running.delete(this);
      if (!this.keepTempDir) rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }

  /** For process exit: kill at once and remove the temp dir, synchronously. */
  killSync(): void {
    for (const proc of this.procs) {
      if (proc.exitCode === undefined) proc.child.kill('SIGKILL');
    }
    running.delete(this);
    if (!this.keepTempDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
