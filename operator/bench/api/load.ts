import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { formatUsage, processTicks, snapshot, usageBetween, type CpuSnapshot, type CpuUsage } from '@loadlab/sandbox/procstat';
import { LATE_AFTER_S } from '../../src/driver/index.js';
import type { BenchContext } from './context.js';
import { fmt, type Log } from './output.js';
import { GENERATOR_ROLE, type FromGenerator, type GeneratorInit, type LoadFigures, type LoadStepRequest, type ToGenerator } from './generator.js';
import { SERVER_LABEL, type ServerKind, type ServerUnderTest } from './servers.js';
import type { LoadMode } from './step-plan.js';

/*
 * One load step, as the benchmark runs it: the generator process (generator.ts) sends the step's
 * plan to the server while this process samples the CPU of every process from /proc over the
 * measured window (server, PostgreSQL, generator, the benchmark itself, everything else) and what
 * PostgreSQL's backends are doing; then the step is judged.
 */

/** A step passes with p99 below this, no errors, and the generator on schedule. */
export const P99_LIMIT_MS = 100;
/** "Few late": at most this share of the window's requests sent more than LATE_AFTER_S behind schedule. */
export const MAX_LATE_FRACTION = 0.01;
/** The generator's concurrency cap (requests in flight, k6's maxVUs). */
export const MAX_IN_FLIGHT = 2000;
const REQUEST_TIMEOUT_S = 5;
/** Busy time of all cores (% of one core) from which the 2-core machine counts as saturated. */
export const SATURATED_PERCENT = 180;

export interface Step {
  kind: ServerKind;
  mode: LoadMode;
  /** The rate asked for, req/s (the plan offers it to within rounding). */
  rate: number;
  load: LoadFigures;
  cpu: CpuUsage;
  pass: boolean;
  reasons: string[];
  /** What PostgreSQL's backends did during the measured window. */
  db: string;
  /**
   * Of the step's polls (warm-up included), the share the NestJS API sent to the database, from its
   * loadlab_api_command_polls_total; undefined for the raw server (every poll is a statement).
   */
  pollsToDatabase?: number;
}

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** The generator process of one server's steps, with the fleet's tokens minted once. */
export class Generator {
  private static readonly running = new Set<Generator>();
  private handler: ((message: FromGenerator) => void) | undefined;
  private exitReason: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    Generator.running.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        Generator.running.delete(this);
        this.exitReason = `the generator process exited (${signal ?? `code ${code}`})`;
        this.handler?.({ type: 'error', message: this.exitReason });
        resolve();
      }),
    );
    child.on('message', (message: FromGenerator) => this.handler?.(message));
  }

  /** Forks main.js in the generator role and waits until it holds every device's token. */
  static async start(init: GeneratorInit, log: Log): Promise<Generator> {
    // 'advanced' serialization: figures may be NaN (no response in a window), which JSON would turn into null.
    const child = fork(MAIN, [GENERATOR_ROLE], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const generator = new Generator(child);
    const ready = await generator.exchange({ type: 'init', init }, 'ready');
    log(`  generator process ${child.pid}: ${fmt(init.devices)} device tokens minted in ${fmt(ready.mintSeconds, 1)} s`);
    return generator;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Runs one step; `onStarted` gets the wall time (unix ms) the step's schedule starts at. */
  async run(step: LoadStepRequest, onStarted: (startUnixMs: number) => void): Promise<LoadFigures> {
    const result = await this.exchange({ type: 'step', step }, 'result', (message) => {
      if (message.type === 'started') onStarted(message.startUnixMs);
    });
    return result.figures;
  }

  private exchange<T extends FromGenerator['type']>(request: ToGenerator, until: T, each?: (message: FromGenerator) => void): Promise<Extract<FromGenerator, { type: T }>> {
    if (this.exitReason) return Promise.reject(new Error(this.exitReason));
    return new Promise((resolve, reject) => {
      this.handler = (message) => {
        if (message.type === 'error') {
          this.handler = undefined;
          reject(new Error(`generator: ${message.message}`));
        } else if (message.type === until) {
          this.handler = undefined;
          resolve(message as Extract<FromGenerator, { type: T }>);
        } else each?.(message);
      };
      this.child.send(request);
    });
  }

  /** Closing the IPC channel ends the process (generator.ts); SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.child.connected) this.child.disconnect();
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
  }

  static async stopAll(): Promise<void> {
    await Promise.all([...Generator.running].map((generator) => generator.stop()));
  }
}

let stepNo = 0;

/** One step at `rate` req/s against `server`: the generator's figures, the CPU per process, the verdict. */
export async function runStep(ctx: BenchContext, server: ServerUnderTest, generator: Generator, rate: number, label = SERVER_LABEL[server.kind], mode: LoadMode = 'mix'): Promise<Step> {
  const { options, db, log } = ctx;
  const groups = {
    [server.kind]: () => processTicks(server.pid),
    postgres: db.ticks,
    generator: () => processTicks(generator.pid),
    bench: () => processTicks(process.pid),
  };
  await ctx.quiet.wait(groups);
  stepNo++;
  const totalS = options.warmupS + options.measureS;
  const what = mode === 'polls' ? 'GET /v1/command only, ' : mode === 'ingest' ? 'POST /v1/measurements only, ' : '';
  log(`${label}: step ${stepNo}, ${what}${fmt(rate)} req/s for ${options.warmupS} s warm-up + ${options.measureS} s measured`);

  let first: CpuSnapshot | undefined;
  let last: CpuSnapshot | undefined;
  const waits = db.waitSampler();
  let dbSummary = 'n/a';
  const timers: NodeJS.Timeout[] = [];
  let load: LoadFigures;
  const pollsBefore = server.kind === 'raw' ? undefined : await commandPolls(server.url);
  try {
    load = await generator.run({ mode, rate, warmupS: options.warmupS, measureS: options.measureS, maxInFlight: MAX_IN_FLIGHT, requestTimeoutS: REQUEST_TIMEOUT_S }, (startUnixMs) => {
      const at = (unixMs: number, action: () => void) => timers.push(setTimeout(action, Math.max(0, unixMs - Date.now())));
      at(startUnixMs + options.warmupS * 1000, () => {
        first = snapshot(groups);
        waits.start();
      });
      at(startUnixMs + totalS * 1000 - 200, () => {
        last = snapshot(groups);
        dbSummary = waits.stop();
      });
    });
  } finally {
    for (const timer of timers) clearTimeout(timer);
    if (dbSummary === 'n/a') waits.stop();
  }
  const cpu = first && last ? usageBetween(first, last) : { seconds: 0, fromUs: 0, toUs: 0, percent: {} };
  const pollsToDatabase = pollsBefore && shareToDatabase(pollsBefore, await commandPolls(server.url));
  const reasons = judge(load, cpu);
  const pass = reasons.length === 0;
  const routes = Object.entries(load.endpoints)
    .map(([endpoint, totals]) => `/v1/${endpoint} p99 ${fmt(totals.latency.p99Ms, 1)}`)
    .join(', ');
  log(
    `  -> offered ${fmt(load.offered / load.seconds)}/s, sent ${fmt(load.sent / load.seconds)}/s, 2xx ${fmt(load.ok / load.seconds)}/s, p50 ${fmt(load.latencyMs.p50, 1)} p99 ${fmt(load.latencyMs.p99, 1)} max ${fmt(load.latencyMs.max, 0)} ms (${routes}), ` +
      `errors ${load.errors}, late ${load.late}, dropped ${load.dropped}, peak in flight ${load.peakInFlight} | CPU % of one core: ${formatUsage(cpu, cpuOrder(server.kind))}; ` +
      `µs per request: ${perRequest(cpu, server.kind, rate)}` +
      (pollsToDatabase === undefined ? '' : ` | polls to the database ${fmt(pollsToDatabase * 100, 1)} %`) +
      ` | postgres: ${dbSummary} -> ${pass ? 'PASS' : `FAIL: ${reasons.join('; ')}`}`,
  );
  return { kind: server.kind, mode, rate, load, cpu, pass, reasons, db: dbSummary, ...(pollsToDatabase === undefined ? {} : { pollsToDatabase }) };
}

type PollCounts = { memory: number; database: number };

/** The API's loadlab_api_command_polls_total by where polls were answered. */
async function commandPolls(url: string): Promise<PollCounts> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (answered: string) => Number(new RegExp(`^loadlab_api_command_polls_total\\{answered="${answered}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { memory: count('memory'), database: count('database') };
}

/** The share of the polls between two readings that went to the database; undefined when none. */
function shareToDatabase(before: PollCounts, after: PollCounts): number | undefined {
  const database = after.database - before.database;
  const total = database + after.memory - before.memory;
  return total > 0 ? database / total : undefined;
}

/** Why a step fails: p99 too high, errors, or arrivals the generator did not send on time. */
function judge(load: LoadFigures, cpu: CpuUsage): string[] {
  const reasons: string[] = [];
  if (load.sent === 0) return ['nothing was sent'];
  if (!(load.latencyMs.p99 < P99_LIMIT_MS)) reasons.push(`p99 ${fmt(load.latencyMs.p99, 1)} ms >= ${P99_LIMIT_MS} ms`);
  if (load.errors > 0) reasons.push(`${load.errors} errors (${errorText(load)})`);
  if (load.dropped > 0 || load.late > MAX_LATE_FRACTION * load.sent) {
    // The open model falls behind in two ways: at the cap (every connection waits on the server:
    // the server's limit), or short of CPU, on a saturated machine or in the generator itself (a
    // limit of the measurement). Late sends without either, in a step whose p99 failed anyway, come
    // with the server's backlog (connections opened for it): so state the facts, not a culprit.
    const cause = load.capReached
      ? `: all ${MAX_IN_FLIGHT} requests of the cap were waiting for answers (the server fell behind)`
      : (cpu.percent.machine ?? 0) >= SATURATED_PERCENT
        ? `: the machine's cores were saturated (${fmt(cpu.percent.machine ?? 0)} %, other processes ${fmt(cpu.percent.other ?? 0)} %)`
        : `, the generator using ${fmt(cpu.percent.generator ?? 0)} % of a core`;
    reasons.push(`${load.dropped} dropped, ${load.late} late (> ${LATE_AFTER_S * 1000} ms behind schedule) of ${load.sent} sent${cause}`);
  }
  return reasons;
}

/** "measurements 12x503 3xtimeout; command 2xreset": what went wrong, by endpoint. */
function errorText(load: LoadFigures): string {
  return Object.entries(load.endpoints)
    .filter(([, totals]) => totals.errors > 0)
    .map(([endpoint, totals]) => {
      const codes = Object.entries(totals.responses).filter(([code]) => !code.startsWith('2') && code !== 'error');
      const failures = Object.entries(totals.failures).filter(([, n]) => n > 0);
      return `${endpoint} ${[...codes, ...failures].map(([what, n]) => `${n}x${what}`).join(' ')}`;
    })
    .join('; ');
}

/** CPU time per request (µs) of the server, PostgreSQL and the generator: what one request costs each. */
export function perRequest(cpu: CpuUsage, kind: ServerKind, rate: number): string {
  return [kind, 'postgres', 'generator'].map((name) => `${name} ${fmt(((cpu.percent[name] ?? 0) * 10_000) / rate)}`).join(' ');
}

/** The CPU groups' order in printed lines. */
export const cpuOrder = (kind: ServerKind): string[] => [kind, 'postgres', 'generator', 'bench'];
