import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian puts the server binaries (the newest installed major version); PG_BIN overrides. */
export function postgresBinDir(root = '/usr/lib/postgresql'): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const versions = existsSync(root) ? readdirSync(root).filter((entry) => /^\d+$/.test(entry)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const dir = join(root, version, 'bin');
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error('PostgreSQL server binaries not found: run `npm run setup` (installs the Debian postgresql package) or set PG_BIN');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A throwaway PostgreSQL cluster: initdb into a temp dir, a free loopback port, no unix socket,
 * and a random password for its superuser (scram-sha-256): other users of the machine can reach
 * the port but not the database. initdb refuses to run as root, so as root the server runs as the
 * Debian `postgres` user.
 */
export class PostgresCluster {
  private readonly password = randomBytes(18).toString('base64url');

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  get url(): string {
    return `postgres://loadlab:${this.password}@127.0.0.1:${this.port}/loadlab`;
  }

  /** `created` is told the cluster's directory as soon as it exists (to clean up after a crash). */
  static async start(settings: Record<string, string> = {}, created?: (dir: string) => void): Promise<PostgresCluster> {
    const bin = postgresBinDir();
    const dir = await mkdtemp(join(tmpdir(), 'loadlab-pg-'));
    created?.(dir);
    await chmod(dir, 0o700);
    const cluster = new PostgresCluster(dir, await freePort(), bin);
    try {
      await cluster.initialise(settings);
    } catch (error) {
      // A cluster that did not come up leaves nothing behind: no server, no temp dir.
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  private async initialise(settings: Record<string, string>): Promise<void> {
    // The password file is read by initdb and removed at once; the data dir is the server's alone.
    const pwfile = join(this.dir, 'pwfile');
    await writeFile(pwfile, `${this.password}\n`, { mode: 0o600 });
    if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', pwfile]);
    try {
      await this.asOwner(['initdb', '-D', this.data, '-U', 'loadlab', '--auth-host=scram-sha-256', '--auth-local=reject', `--pwfile=${pwfile}`, '--no-sync', '-E', 'UTF8', '--locale=C']);
    } finally {
      await rm(pwfile, { force: true });
    }
    const conf = {
      listen_addresses: "'127.0.0.1'",
      port: String(this.port),
      unix_socket_directories: "''",
      fsync: 'on',
      max_connections: '200',
      shared_buffers: '256MB',
      ...settings,
    };
    await writeFile(join(this.data, 'postgresql.auto.conf'), Object.entries(conf).map(([k, v]) => `${k} = ${v}\n`).join(''));
    if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', join(this.data, 'postgresql.auto.conf')]);
    await this.startServer();
    await this.asOwner(['createdb', '-h', '127.0.0.1', '-p', String(this.port), '-U', 'loadlab', 'loadlab']);
  }

  private get data(): string {
    return join(this.dir, 'data');
  }

  async startServer(): Promise<void> {
    try {
      await this.asOwner(['pg_ctl', '-D', this.data, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
    } catch (error) {
      // pg_ctl only says "could not start server": the reason is in the server's log.
      const log = await readFile(join(this.dir, 'server.log'), 'utf8').catch(() => '');
      throw new Error(`${(error as Error).message.trim()}\nserver.log:\n${log.trimEnd().split('\n').slice(-15).join('\n')}`, { cause: error });
    }
  }

  /** Fast shutdown: connections are cut, as when a database host goes away. */
  async stopServer(): Promise<void> {
    await this.asOwner(['pg_ctl', '-D', this.data, '-m', 'fast', '-w', 'stop']);
  }

  /**
   * Sends a signal to the server: the postmaster and every backend. SIGSTOP makes a database that
   * stops answering without refusing (connections stay open, nothing comes back), SIGCONT resumes
   * it, SIGKILL is a crash.
   */
  async signalServer(signal: 'SIGSTOP' | 'SIGCONT' | 'SIGKILL'): Promise<void> {
    const postmaster = Number((await readFile(join(this.data, 'postmaster.pid'), 'utf8')).split('\n', 1)[0]);
    const send = (pid: number, what: NodeJS.Signals) => {
      try {
        process.kill(pid, what);
      } catch {
        // gone meanwhile
      }
    };
    // The postmaster forks backends (and, once a child dies, crash recovery) at any moment: it is
    // stopped first, so the list of its children is complete when they are signalled. Children
    // first for SIGSTOP and SIGKILL (the postmaster would restart or reap them), the postmaster
    // first for SIGCONT.
    if (signal !== 'SIGCONT') send(postmaster, 'SIGSTOP');
    const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(postmaster)]).catch(() => ({ stdout: '' }));
    const children = stdout.split('\n').map((line) => Number(line.trim())).filter((pid) => pid > 0);
    const order = signal === 'SIGCONT' ? [postmaster, ...children] : [...children, postmaster];
    for (const pid of order) send(pid, signal);
    if (signal === 'SIGKILL') {
      // Gone, not only signalled: a new server refuses to start while a process of the old one
      // still holds its shared memory.
      for (let waited = 0; waited < 10_000 && order.some(isAlive); waited += 50) await sleep(50);
      // Its lock file stays, naming a pid that may live on as a zombie where nothing reaps orphans
      // (a container's init): a new postmaster would take it for a running server and refuse to
      // start. The server is gone, so the lock is stale: removed, as after a host crash.
      if (!order.some(isAlive)) await rm(join(this.data, 'postmaster.pid'), { force: true });
    }
  }

  async psql(sql: string): Promise<string> {
    const { stdout } = await run(join(this.bin, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', this.url, '-c', sql]);
    return stdout.trim();
  }

  async destroy(): Promise<void> {
    await this.stopServer().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** For the tools that connect (createdb): the password without putting it on a command line. */
  private get env(): NodeJS.ProcessEnv {
    return { ...process.env, PGPASSWORD: this.password };
  }

  private async asOwner([tool, ...args]: string[]): Promise<void> {
    const path = join(this.bin, tool!);
    if (process.getuid?.() === 0) {
      await chown(this.dir, ...(await postgresIds()));
      await run('runuser', ['-u', 'postgres', '--', path, ...args], { env: this.env });
    } else {
      await run(path, args, { env: this.env });
    }
  }
}

/** A process that has not exited (a zombie waiting for its parent to reap it counts as gone). */
function isAlive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function postgresIds(): Promise<[number, number]> {
  const { stdout } = await run('id', ['postgres']);
  const uid = Number(/uid=(\d+)/.exec(stdout)?.[1]);
  const gid = Number(/gid=(\d+)/.exec(stdout)?.[1]);
  return [uid, gid];
}
