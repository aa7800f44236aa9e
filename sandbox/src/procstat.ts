/**
 * CPU accounting from /proc (Linux): who used the machine's cores during a run or a benchmark step.
 * Figures are in percent of ONE core (a 2-core machine tops out at 200 %).
 */
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ; `getconf CLK_TCK` is 100 on Linux x86-64

export interface CpuSnapshot {
  at: number; // ms, Date.now()
  /** CLOCK_MONOTONIC in µs: the clock of V8's .cpuprofile timestamps, comparable across processes */
  monotonicUs: number;
  machineBusy: number; // ticks, all cores
  machineTotal: number;
  machineSteal: number; // ticks the hypervisor gave to someone else
  groups: Record<string, number>; // ticks
}

/** utime + stime of a process (all threads), plus its reaped children's when asked; 0 if gone. */
export function processTicks(pid: number, withChildren = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17
    const own = Number(fields[11]) + Number(fields[12]);
    return withChildren ? own + Number(fields[13]) + Number(fields[14]) : own;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system, all threads) a live process has used; 0 when it is gone or not on Linux. */
export function cpuSeconds(pid: number | undefined): number {
  return pid === undefined ? 0 : processTicks(pid) / CLOCK_TICKS;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The pids whose parent is `pid` (e.g. PostgreSQL's backends under the postmaster). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (parentOf(Number(entry)) === pid) out.push(Number(entry));
  }
  return out;
}

function machineTicks(): { busy: number; total: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [, ...values] = line.trim().split(/\s+/);
  const n = values.map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, steal: n[7] ?? 0 };
}

export function snapshot(groups: Record<string, () => number>): CpuSnapshot {
  const machine = machineTicks();
  const values: Record<string, number> = {};
  for (const [name, read] of Object.entries(groups)) values[name] = read();
  return { at: Date.now(), monotonicUs: Number(process.hrtime.bigint() / 1000n), machineBusy: machine.busy, machineTotal: machine.total, machineSteal: machine.steal, groups: values };
}

export interface CpuUsage {
  seconds: number;
  fromUs: number;
  toUs: number;
  /** percent of one core, per group, plus `machine` (all busy time) and `other` (machine − groups) */
  percent: Record<string, number>;
}

export function usageBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  const seconds = (b.at - a.at) / 1000;
  const pct = (ticks: number) => (seconds > 0 ? (ticks / CLOCK_TICKS / seconds) * 100 : 0);
  const percent: Record<string, number> = {};
  let sum = 0;
  for (const name of Object.keys(b.groups)) {
    const d = Math.max(0, b.groups[name]! - (a.groups[name] ?? 0));
    percent[name] = pct(d);
    sum += d;
  }
  const machine = b.machineBusy - a.machineBusy;
  percent.machine = pct(machine);
  percent.other = Math.max(0, pct(machine - sum));
  percent.steal = pct(b.machineSteal - a.machineSteal);
  return { seconds, fromUs: a.monotonicUs, toUs: b.monotonicUs, percent };
}

export function formatUsage(usage: CpuUsage, order: string[]): string {
  const steal = (usage.percent.steal ?? 0) >= 1 ? ['steal'] : [];
  return [...order, 'other', 'machine', ...steal].map((name) => `${name} ${Math.round(usage.percent[name] ?? 0)}%`).join(' ');
}
