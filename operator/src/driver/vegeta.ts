import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/*
 * vegeta (MIT, github.com/tsenart/vegeta) as the driver's HTTP engine, in two processes:
 *
 *   driver --JSON targets--> vegeta attack -rate=0 -lazy --gob results--> vegeta encode -to csv --CSV--> driver
 *
 * With -rate=0 vegeta paces nothing: it starts -max-workers workers at once, each of which reads
 * the next target from stdin and sends it as soon as it has one. The driver writes each arrival's
 * target at its scheduled time, so the schedule (the open model) is the driver's, and vegeta's
 * workers are only the concurrency cap. Checked on v12.13.0 (lib/attack.go Attack/hit): a worker
 * takes its result timestamp BEFORE it blocks reading stdin, so vegeta's own latency includes the
 * time the worker waited for the driver's next line; the driver corrects for that (driver.ts).
 * Closing stdin ends the attack once the requests in flight are answered; every idle worker then
 * reports one result "no targets to attack" with an empty URL, which the driver ignores.
 */

export const VEGETA_VERSION = 'v12.13.0';

/** The binary scripts/setup.sh builds (${LOADLAB_CACHE:-~/.cache/loadlab}/bin/vegeta-v12.13.0). */
export function vegetaBinary(override?: string): string {
  const path = override ?? process.env.LOADLAB_VEGETA ?? join(process.env.LOADLAB_CACHE || join(homedir(), '.cache', 'loadlab'), 'bin', `vegeta-${VEGETA_VERSION}`);
  if (!existsSync(path)) {
    throw new Error(`vegeta ${VEGETA_VERSION} not found at ${path}: run \`npm run setup\` (it builds vegeta from the Go module proxy), or set LOADLAB_VEGETA to a vegeta ${VEGETA_VERSION} binary`);
  }
  return path;
}

export interface EngineOptions {
  binary: string;
  /** The concurrency cap: requests in flight at most (vegeta -max-workers). */
  maxWorkers: number;
  /** Per-request timeout in seconds (vegeta -timeout). */
  timeoutS: number;
  /** Extra environment for the vegeta processes (e.g. GOGC, GOMAXPROCS). */
  env?: Record<string, string>;
  /** Decoded CSV text from `vegeta encode`, as it arrives. */
  onCsv(text: string): void;
}

export interface Engine {
  /** Writes target lines; false when the pipe is full (wait for onDrain). */
  write(text: string): boolean;
  onDrain(listener: () => void): void;
  /** No more targets: vegeta finishes the requests in flight and exits. */
  endInput(): void;
  /** SIGKILL both processes (idempotent). */
  kill(): void;
  /** CPU seconds used by both processes so far (the last reading once they have exited). */
  cpuSeconds(): number;
  readonly pids: readonly number[];
  /** Resolves when both processes have exited and every result was read; rejects when either failed. */
  readonly done: Promise<void>;
}

export function startEngine(options: EngineOptions): Engine {
  const env = { ...process.env, ...options.env };
  const encode = spawn(options.binary, ['encode', '-to', 'csv'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  // attack writes straight into encode's stdin (the pipe's fd is handed to it): the binary results
  // never pass through this process.
  const attack = spawn(
    options.binary,
    [
      'attack',
      '-format=json',
      '-lazy',
      '-rate=0',
      `-max-workers=${options.maxWorkers}`,
      `-workers=${Math.min(options.maxWorkers, 10)}`,
      `-timeout=${Math.max(0.001, options.timeoutS)}s`,
      '-http2=false',
      '-max-body=0',
      '-keepalive=true',
    ],
    { stdio: ['pipe', encode.stdin, 'pipe'], env },
  );
  // Our copy of encode's stdin must go, or encode never sees EOF when attack exits.
  encode.stdin.destroy();
  const children: ChildProcess[] = [attack, encode];
  const stderr = { attack: '', encode: '' };
  attack.stderr!.on('data', (chunk: Buffer) => (stderr.attack = (stderr.attack + chunk.toString()).slice(-2000)));
  encode.stderr!.on('data', (chunk: Buffer) => (stderr.encode = (stderr.encode + chunk.toString()).slice(-2000)));
  attack.stdin!.on('error', () => undefined); // EPIPE when attack died: its exit is reported below
  encode.stdout!.setEncoding('utf8');
  encode.stdout!.on('data', options.onCsv);

  const exited = (child: ChildProcess, name: 'attack' | 'encode') =>
    new Promise<void>((resolve, reject) => {
      child.once('error', (error) => reject(new Error(`vegeta ${name}: ${error.message}`)));
      child.once('exit', (code, signal) => {
        lastCpu[name] = Math.max(lastCpu[name], cpu(child.pid));
        if (code === 0 || killed) resolve();
        else reject(new Error(`vegeta ${name} exited with ${code ?? signal}: ${stderr[name].trim() || '(no output)'}`));
      });
    });
  const lastCpu = { attack: 0, encode: 0 };
  let killed = false;
  const outputEnded = new Promise<void>((resolve) => encode.stdout!.once('close', () => resolve()));
  const done = Promise.all([exited(attack, 'attack'), exited(encode, 'encode'), outputEnded]).then(() => undefined);
  done.catch(() => undefined); // observed by the caller; never an unhandled rejection

  return {
    // Target lines are ASCII: latin1 skips the UTF-8 scan.
    write: (text) => attack.stdin!.write(text, 'latin1'),
    onDrain: (listener) => attack.stdin!.once('drain', listener),
    endInput: () => {
      if (!attack.stdin!.writableEnded) attack.stdin!.end();
    },
    kill: () => {
      killed = true;
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    cpuSeconds: () => {
      lastCpu.attack = Math.max(lastCpu.attack, cpu(attack.pid));
      lastCpu.encode = Math.max(lastCpu.encode, cpu(encode.pid));
      return lastCpu.attack + lastCpu.encode;
    },
    pids: children.map((child) => child.pid).filter((pid): pid is number => pid !== undefined),
    done,
  };
}

/** USER_HZ: 100 on Linux x86-64 and arm64. */
const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of a live process in seconds (all threads); 0 when it is gone or not on Linux. */
export function cpu(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}
