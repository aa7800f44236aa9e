import { cpuSeconds as cpu } from '@loadlab/sandbox/procstat';

/** CPU of the harness while the load ran, in percent of one core. */
export interface HarnessCpu {
  /** Per process (prometheus, postgres_exporter, node_exporter) and the progress view. */
  parts: Record<string, number>;
  total: number;
  /** The wall time measured over, in seconds. */
  seconds: number;
}

/**
 * Measures what loadlab's own machinery costs during the load (issue target: under 10% of one
 * core), so a reader can tell it apart from what is measured: the Prometheus and exporter
 * processes from /proc, the progress view from the CPU time spent drawing it.
 */
export class HarnessMeter {
  private readonly startedAt = performance.now();
  private readonly start: Map<string, number>;
  private readonly viewStart: number;

  constructor(
    private readonly processes: readonly { name: string; pid: number | undefined }[],
    private readonly viewCpuSeconds: () => number,
  ) {
    this.start = new Map(processes.map((p) => [p.name, cpu(p.pid)]));
    this.viewStart = viewCpuSeconds();
  }

  stop(): HarnessCpu {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const percent = (cpuSeconds: number) => (seconds > 0 ? (cpuSeconds / seconds) * 100 : 0);
    const parts: Record<string, number> = {};
    for (const { name, pid } of this.processes) parts[name] = percent(cpu(pid) - (this.start.get(name) ?? 0));
    parts['progress view'] = percent(this.viewCpuSeconds() - this.viewStart);
    return { parts, total: Object.values(parts).reduce((sum, value) => sum + value, 0), seconds };
  }
}

export function formatHarnessCpu(harness: HarnessCpu): string {
  const parts = Object.entries(harness.parts).map(([name, value]) => `${name} ${value.toFixed(1)} %`);
  return `${harness.total.toFixed(1)} % of one core (${parts.join(', ')}; over ${harness.seconds.toFixed(0)} s)`;
}
