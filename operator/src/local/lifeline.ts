import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * What a local run started, written down as it starts it, so that it can be taken back when the
 * run cannot do it itself (SIGKILL, an out-of-memory kill, a crash): the processes (each the
 * leader of its own process group), the throwaway PostgreSQL data directories and the temp dirs.
 *
 * Two things read it: the run's watchdog (a small process of its own, started first, which holds
 * the read end of a pipe whose write end only the run has; the kernel closes it however the run
 * ends, and the watchdog then takes everything back), and the next run, which takes back what a
 * run left whose watchdog died with it.
 *
 * A process is named by its pid and its start time (field 22 of /proc/<pid>/stat), so a pid the
 * kernel has given to another process since is never signalled.
 */
export interface Leftovers {
  owner: ProcessRef;
  watchdog?: ProcessRef;
  /** Process-group leaders: the whole group is killed. */
  processes: ProcessRef[];
  /** Throwaway PostgreSQL clusters: the dir holds `data/postmaster.pid`; the dir is removed. */
  postgres: string[];
  dirs: string[];
}

interface ProcessRef {
  pid: number;
  start: string;
}

/** Where runs keep their lists: one file per run, private to this user. */
export function leftoversDir(): string {
  return join(tmpdir(), `loadlab-runs-${process.getuid?.() ?? 'user'}`);
}

const WATCHDOG = fileURLToPath(new URL('./lifeline-watchdog.js', import.meta.url));

/**
 * The run's side: the list of what it started, kept on disk, and the watchdog holding its pipe.
 * One per process at a time (`current`), as a run is process-wide anyway (signals, CPU pinning):
 * whatever starts a child or makes a temp dir while a run goes adds it there.
 */
export class Lifeline {
  static current: Lifeline | undefined;
  private readonly leftovers: Leftovers;
  private watchdog: ChildProcess | undefined;

  private constructor(readonly file: string) {
    this.leftovers = { owner: ref(process.pid)!, processes: [], postgres: [], dirs: [] };
  }

  /** Takes back what earlier killed runs left, then starts this run's watchdog. */
  static async start(): Promise<{ lifeline: Lifeline; reclaimed: number }> {
    const reclaimed = await reclaimLeftovers();
    const dir = leftoversDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // One file per run, not per process: a scaling study runs one after another in this process,
    // and the last run's watchdog, reading its list when that run's pipe closes, must not find
    // the next run's there (it did: it removed the next run's new database directory).
    const lifeline = new Lifeline(join(dir, `${process.pid}-${randomBytes(4).toString('hex')}.json`));
    lifeline.save();
    // Detached: a terminal's SIGHUP or SIGINT for the run's process group does not reach it. Its
    // stdin is the pipe; stdout and stderr go nowhere (it has nothing to say to a terminal that may be gone).
    const watchdog = spawn(process.execPath, [WATCHDOG, lifeline.file], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    watchdog.once('error', () => undefined);
    // Neither the watchdog nor its pipe keeps this process alive.
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    watchdog.stdin?.on('error', () => undefined);
    lifeline.watchdog = watchdog;
    const watchdogRef = watchdog.pid !== undefined ? ref(watchdog.pid) : undefined;
    if (watchdogRef) lifeline.leftovers.watchdog = watchdogRef;
    lifeline.save();
    Lifeline.current = lifeline;
    return { lifeline, reclaimed };
  }

  trackProcess(pid: number | undefined): void {
    const process = pid !== undefined ? ref(pid) : undefined;
    if (!process) return;
    this.leftovers.processes.push(process);
    this.save();
  }

  trackPostgres(dir: string): void {
    this.leftovers.postgres.push(dir);
    this.save();
  }

  trackDir(dir: string): void {
    this.leftovers.dirs.push(dir);
    this.save();
  }

  /** The run took everything back itself: nothing for the watchdog to do. */
  end(): void {
    if (Lifeline.current === this) Lifeline.current = undefined;
    rmSync(this.file, { force: true });
    this.watchdog?.stdin?.end();
  }

  private save(): void {
    // Whole or not at all: a run killed mid-write must not leave a list the watchdog cannot read.
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.leftovers));
    renameSync(`${this.file}.tmp`, this.file);
  }
}

/** The start time of a live process, or undefined when there is none with that pid. */
function ref(pid: number): ProcessRef | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    // A zombie (state Z) has exited: where nothing reaps orphans it stays, but it holds nothing.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = fields[19];
    return start && fields[0] !== 'Z' ? { pid, start } : undefined;
  } catch {
    return undefined;
  }
}

function alive(process: ProcessRef): boolean {
  return ref(process.pid)?.start === process.start;
}

function signal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

/** Takes back everything one list names; resolves once it is gone. */
export async function reclaim(leftovers: Leftovers): Promise<void> {
  const live = leftovers.processes.filter(alive);
  // Each was started as the leader of its own group: the group goes, children included.
  for (const process of live) signal(-process.pid, 'SIGKILL');
  const postmasters = leftovers.postgres.flatMap((dir) => {
    try {
      const pid = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
      const process = pid > 0 ? ref(pid) : undefined;
      return process ? [process] : [];
    } catch {
      return [];
    }
  });
  // SIGQUIT is PostgreSQL's immediate shutdown: the postmaster ends its backends and removes its
  // shared memory; SIGKILL only if it has not gone within 5 s.
  for (const postmaster of postmasters) signal(postmaster.pid, 'SIGQUIT');
  for (let waited = 0; waited < 5000 && postmasters.some(alive); waited += 100) await sleep(100);
  for (const postmaster of postmasters.filter(alive)) signal(postmaster.pid, 'SIGKILL');
  for (let waited = 0; waited < 2000 && [...live, ...postmasters].some(alive); waited += 50) await sleep(50);
  for (const dir of [...leftovers.postgres, ...leftovers.dirs]) rmSync(dir, { recursive: true, force: true });
}

/**
 * Takes back what runs that are gone left (their owner no longer runs and their watchdog did not
 * finish the job). Resolves to how many runs' leftovers were taken back.
 */
export async function reclaimLeftovers(dir = leftoversDir()): Promise<number> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return 0;
  }
  let reclaimed = 0;
  for (const name of files) {
    const file = join(dir, name);
    let leftovers: Leftovers;
    try {
      leftovers = JSON.parse(readFileSync(file, 'utf8')) as Leftovers;
    } catch {
      rmSync(file, { force: true });
      continue;
    }
    // A run still going, or its watchdog at work: not ours to touch.
    if (alive(leftovers.owner) || (leftovers.watchdog && alive(leftovers.watchdog))) continue;
    await reclaim(leftovers);
    rmSync(file, { force: true });
    reclaimed++;
  }
  return reclaimed;
}
