/**
 * CPU accounting from /proc (Linux): who used the machine's cores during a run or a benchmark step.
 * Figures are in percent of ONE core (a 2-core machine tops out at 200 %).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const CLOCK_TICKS = 100; // USER_HZ; `getconf CLK_TCK` is 100 on Linux x86-64

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

/**
 * Seconds a process's main thread (for Node.js: its event loop) has been runnable but waiting on a
 * run queue: field 2 of /proc/<pid>/schedstat. Undefined when the process is gone or the kernel
 * keeps no scheduler statistics.
 */
export function runQueueWaitS(pid: number): number | undefined {
  try {
    const waitNs = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
    return Number.isFinite(waitNs) ? waitNs / 1e9 : undefined;
  } catch {
    return undefined;
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

/** Every process' children, from one pass over /proc (e.g. PostgreSQL's backends under the postmaster). */
export function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentOf(Number(entry));
    if (parent === undefined) continue;
    const list = children.get(parent);
    if (list) list.push(Number(entry));
    else children.set(parent, [Number(entry)]);
  }
  return children;
}

/** The pids whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  return childrenByParent().get(pid) ?? [];
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

/**
 * The process listening on a local TCP port (e.g. the postmaster of a PostgreSQL on 127.0.0.1), from
 * /proc/net/tcp{,6} and the processes' open sockets; undefined when nothing listens there or its
 * descriptors cannot be read (another user's process, without root).
 */
export function listeningPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; field 9 is the socket's inode
      if (fields.length < 10 || fields[3] !== '0A') continue;
      if (Number.parseInt(fields[1]!.split(':')[1]!, 16) === port) inodes.add(fields[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  // Children forked after listen() may hold the socket too: the listener is the holder whose parent is not one.
  const holders = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) {
        holders.add(Number(entry));
        break;
      }
    }
  }
  return [...holders].find((pid) => !holders.has(parentOf(pid) ?? -1));
}
