import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { requireBinary } from './binaries.js';

/*
 * `loadlab run --api-cpus`: the API processes on CPUs of their own, everything else loadlab starts
 * (the driver in this process, PostgreSQL, Prometheus, the exporters) on the others. It is what the
 * host-cpu verdict advises, made one flag away: a run where the API has a core to itself tells
 * "the API is too slow" from "the API did not get the CPU". Affinity is set with util-linux's
 * taskset (Node has no sched_setaffinity).
 */

/** "0", "0-1", "0,2-3" → the CPU numbers, sorted; throws with a message for anything else. */
export function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!match) throw new Error(`"${text}" is not a CPU list (e.g. 0, 0-1 or 0,2)`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (to < from) throw new Error(`"${part.trim()}" in "${text}" is an empty range`);
    for (let cpu = from; cpu <= to; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

export function formatCpuList(cpus: readonly number[]): string {
  return cpus.join(',');
}

/** The CPUs a process (this one by default) may run on: Cpus_allowed_list of its /proc status. */
export function allowedCpus(pid: number | 'self' = 'self'): number[] {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    throw new Error(`no process ${pid}`);
  }
  const line = status.split('\n').find((entry) => entry.startsWith('Cpus_allowed_list:'));
  if (!line) throw new Error(`cannot read the CPU affinity of process ${pid} from /proc`);
  return parseCpuList(line.slice('Cpus_allowed_list:'.length).trim());
}

export interface CpuSplit {
  api: number[];
  rest: number[];
  /** The affinity this process had before, to restore when the run ends. */
  original: number[];
}

/** Checks the API's CPUs against the allowed ones and leaves the rest the others. */
export function splitCpus(api: readonly number[], allowed: readonly number[] = allowedCpus()): CpuSplit {
  const unknown = api.filter((cpu) => !allowed.includes(cpu));
  if (unknown.length > 0) throw new Error(`--api-cpus: CPU ${unknown.join(', ')} is not available here (this process may use ${formatCpuList(allowed)})`);
  const rest = allowed.filter((cpu) => !api.includes(cpu));
  if (rest.length === 0) throw new Error(`--api-cpus ${formatCpuList(api)} leaves no CPU for the load generator and the database: give the API fewer than ${allowed.length}`);
  return { api: [...api], rest, original: [...allowed] };
}

/** The command that starts `command` on `cpus` (taskset -c), for a child whose threads all inherit it. */
export function onCpus(cpus: readonly number[], command: string, args: readonly string[]): { command: string; args: string[] } {
  return { command: requireBinary('taskset', TASKSET_HOW_TO), args: ['-c', formatCpuList(cpus), command, ...args] };
}

/** Moves a running process, every thread of it, to `cpus`; checked afterwards (taskset -a succeeds on a pid that is gone). */
export function pinProcess(pid: number, cpus: readonly number[]): void {
  const result = spawnSync(requireBinary('taskset', TASKSET_HOW_TO), ['-a', '-p', '-c', formatCpuList(cpus), String(pid)], { encoding: 'utf8' });
  let now: string;
  try {
    now = formatCpuList(allowedCpus(pid));
  } catch (error) {
    now = (error as Error).message;
  }
  if (result.status !== 0 || now !== formatCpuList(cpus)) {
    throw new Error(`taskset could not move process ${pid} to CPUs ${formatCpuList(cpus)}: ${(result.stderr || result.error?.message || now).trim()}`);
  }
}

const TASKSET_HOW_TO = 'taskset is part of util-linux (apt-get install util-linux)';
