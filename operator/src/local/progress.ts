import type { ProgressSnapshot } from '../driver/index.js';
import type { TrafficPlan } from '../traffic/index.js';

/** Where progress goes: a terminal (isTTY) gets the live view, anything else plain lines. */
export interface TextOut {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** What the live view knows besides the driver's snapshot. */
export interface ProgressContext {
  experiment: string;
  totalS: number;
  phaseName: (phase: number) => string;
}

/**
 * What the progress view calls a plan phase: "stage 2/3 hold" or "step 1 ramp". The driver's phase
 * is -1 once its schedule is over: what is left then is the requests still in flight, each given
 * its timeout to be answered (tens of seconds on an overloaded API).
 */
export function phaseLabel(plan: TrafficPlan, phase: number): string {
  const p = plan.phases[phase];
  if (!p) return 'load done, answering the requests in flight';
  if (p.step !== undefined) return `step ${p.step + 1} ${p.kind}`;
  const stages = new Set(plan.phases.map((entry) => entry.stage ?? entry.index)).size;
  return `stage ${(p.stage ?? p.index) + 1}/${stages} ${p.kind}`;
}

const clock = (seconds: number) => `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;
const rps = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : '—');

export function progressLine(s: ProgressSnapshot, context: ProgressContext): string {
  return (
    `[${clock(s.elapsedS)}/${clock(context.totalS)}] ${context.phaseName(s.phase)}: fleet ${s.fleet.toLocaleString('en')}, ` +
    `offered ${rps(s.offeredRps)} rps, achieved ${rps(s.achievedRps)} rps, p95 ${ms(s.p95Ms)}, errors ${s.errors}, late ${s.late}, dropped ${s.dropped}`
  );
}

/**
 * A terminal gets a compact view redrawn in place once a second; anything else (CI logs) gets a
 * plain line every `plainEveryS` seconds, so logs stay readable.
 */
export class ProgressView {
  private drawnLines = 0;
  private lastPlainS = -Infinity;
  private cpuMicros = 0;

  constructor(
    private readonly out: TextOut,
    private readonly context: ProgressContext,
    private readonly plainEveryS = 5,
  ) {}

  get live(): boolean {
    return this.out.isTTY === true;
  }

  /** CPU time spent formatting and writing the view, in seconds (part of the harness' cost). */
  get cpuSeconds(): number {
    return this.cpuMicros / 1e6;
  }

  update(s: ProgressSnapshot): void {
    const before = process.cpuUsage();
    this.draw(s);
    const spent = process.cpuUsage(before);
    this.cpuMicros += spent.user + spent.system;
  }

  private draw(s: ProgressSnapshot): void {
    if (!this.live) {
      if (s.elapsedS - this.lastPlainS >= this.plainEveryS) {
        this.lastPlainS = s.elapsedS;
        this.out.write(`${progressLine(s, this.context)}\n`);
      }
      return;
    }
    const width = 30;
    const done = Math.min(width, Math.round((s.elapsedS / Math.max(1, this.context.totalS)) * width));
    const lines = [
      `${this.context.experiment}  ${'█'.repeat(done)}${'░'.repeat(width - done)}  ${clock(s.elapsedS)} / ${clock(this.context.totalS)}  ${this.context.phaseName(s.phase)}`,
      `  fleet ${s.fleet.toLocaleString('en')} devices   offered ${rps(s.offeredRps)} rps   achieved ${rps(s.achievedRps)} rps   p95 ${ms(s.p95Ms)}`,
      `  errors ${s.errors}   late ${s.late}   dropped ${s.dropped}   in flight ${s.inFlight} of ${s.concurrency}   behind schedule ${s.lagS.toFixed(2)} s`,
    ];
    this.out.write(`${this.drawnLines > 0 ? `\x1b[${this.drawnLines}F` : ''}${lines.map((line) => `\x1b[2K${line}`).join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  /** Leaves the last view on screen; later output starts below it. */
  finish(): void {
    this.drawnLines = 0;
  }
}
