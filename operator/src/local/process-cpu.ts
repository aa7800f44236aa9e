import { createServer, type Server } from 'node:http';
import { Counter, Registry } from 'prom-client';
import { childrenByParent, CLOCK_TICKS, cpuSeconds, processTicks, runQueueWaitS } from '@loadlab/sandbox/procstat';

/*
 * Who used the machine's CPUs during a local run. node_exporter tells how busy the machine was;
 * this tells whose the busy time was, so the analysis can say "the API did not get the CPU: the
 * generator and the database took it" instead of blaming the API's event loop. Whatever the roles
 * do not account for (the rest of the machine, the hypervisor's steal) is the analysis' "other".
 */

/** The processes of a local run, by what they are to the experiment. */
export const CPU_ROLES = ['api', 'database', 'generator', 'monitoring'] as const;
export type CpuRole = (typeof CPU_ROLES)[number];

export interface RoleProcesses {
  /** Root processes of the role; their live descendants and the ones they reaped count too. */
  pids: () => readonly number[];
  /** Only the process itself (the loadlab process: the children it reaped belong to other roles). */
  ownOnly?: boolean;
}


/** CPU seconds of a role now: every root, with what it reaped, and its live children. */
function roleSeconds(role: RoleProcesses, children: ReadonlyMap<number, readonly number[]>): number {
  let ticks = 0;
  for (const pid of role.pids()) {
    if (role.ownOnly) {
      ticks += processTicks(pid);
      continue;
    }
    ticks += processTicks(pid, true);
    // PostgreSQL's backends: live ones counted here, exited ones in the postmaster's reaped time.
    for (const child of children.get(pid) ?? []) ticks += processTicks(child, true);
  }
  return ticks / CLOCK_TICKS;
}

/**
 * `loadlab_local_cpu_seconds_total{role}` on a loopback port, read from /proc at scrape time (one
 * pass over /proc per scrape: a few milliseconds). A role whose processes
 * are unknown (a database at DATABASE_URL on another machine) has no series.
 */
export class ProcessCpuExporter {
  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  /**
   * `apis`: each API process with its address. Their CPU and their event-loop thread's run-queue
   * wait are read here, from outside: an API overloaded by the load answers its own /metrics too
   * late for the scrape, exactly when its numbers matter most.
   */
  static async start(roles: Partial<Record<CpuRole, RoleProcesses>>, apis: () => readonly { address: string; pid: number }[] = () => []): Promise<ProcessCpuExporter> {
    const registry = new Registry();
    const lastApi = new Map<string, { cpu: number; wait: number }>();
    // Registered before the wait counter: prom-client collects metrics in order, so this collect
    // fills both before either is read.
    const apiCpu = new Counter({
      name: 'loadlab_local_api_cpu_seconds_total',
      help: 'CPU seconds of each API process (label api: its address), from /proc.',
      labelNames: ['api'] as const,
      registers: [registry],
      collect() {
        for (const { address, pid } of apis()) {
          const cpu = cpuSeconds(pid);
          const wait = runQueueWaitS(pid);
          if (cpu === 0 && wait === undefined) continue; // gone
          const before = lastApi.get(address) ?? { cpu: 0, wait: 0 };
          this.inc({ api: address }, Math.max(0, cpu - before.cpu));
          apiWait.inc({ api: address }, Math.max(0, (wait ?? 0) - before.wait));
          lastApi.set(address, { cpu: Math.max(cpu, before.cpu), wait: Math.max(wait ?? 0, before.wait) });
        }
      },
    });
    const apiWait = new Counter({
      name: 'loadlab_local_api_cpu_wait_seconds_total',
      help: 'Seconds each API process\'s event-loop thread was ready to run but waited for a CPU (/proc/<pid>/schedstat).',
      labelNames: ['api'] as const,
      registers: [registry],
    });
    void apiCpu;
    const last = new Map<CpuRole, number>();
    const counter = new Counter({
      name: 'loadlab_local_cpu_seconds_total',
      help: 'CPU seconds (user + system) used by the processes of each role of a local run, from /proc: api, database, generator (the loadlab process), monitoring (Prometheus and the exporters).',
      labelNames: ['role'] as const,
      registers: [registry],
      collect() {
        const children = childrenByParent();
        for (const role of CPU_ROLES) {
          const processes = roles[role];
          if (!processes) continue;
          const now = roleSeconds(processes, children);
          const before = last.get(role);
          // A counter never goes down: a child that exits between its last sample and its reaping
          // drops out for a moment.
          if (before === undefined) this.inc({ role }, now);
          else if (now > before) this.inc({ role }, now - before);
          last.set(role, Math.max(now, before ?? 0));
        }
      },
    });
    void counter;
    const server = createServer((request, response) => {
      if (request.url !== '/metrics') {
        response.writeHead(404).end();
        return;
      }
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as { port: number };
    return new ProcessCpuExporter(server, `127.0.0.1:${port}`);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
