import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './binaries.js';
import { freePort } from '@loadlab/sandbox/postgres';
import { ManagedProcess } from './processes.js';
import { Lifeline } from './lifeline.js';
import { POSTGRES_EXPORTER_QUERIES } from '../contract/postgres-exporter-queries.js';

export interface Exporter {
  job: 'postgres' | 'node';
  address: string; // host:port
  process: ManagedProcess;
}

/** How to start each exporter, and what is lost without it. */
const EXPORTERS: Record<Exporter['job'], { name: string; binaries: string[]; args: string[]; files?: Record<string, string>; env?: (databaseUrl: string) => NodeJS.ProcessEnv; missing: string }> = {
  postgres: {
    name: 'postgres_exporter',
    binaries: ['prometheus-postgres-exporter', 'postgres_exporter'],
    // Lock waits and the oldest open transaction (contract/postgres-exporter-queries.ts).
    args: ['--extend.query-path={dir}/queries.yaml'],
    files: { 'queries.yaml': POSTGRES_EXPORTER_QUERIES },
    env: (databaseUrl) => ({ DATA_SOURCE_NAME: databaseUrl.includes('sslmode=') ? databaseUrl : `${databaseUrl}${databaseUrl.includes('?') ? '&' : '?'}sslmode=disable` }),
    missing: 'postgres_exporter is not installed: no database signals (apt-get install prometheus-postgres-exporter)',
  },
  node: {
    name: 'node_exporter',
    binaries: ['prometheus-node-exporter', 'node_exporter'],
    // Only the collectors the analysis reads: a full node_exporter costs more CPU than we want to steal.
    // pressure: CPU pressure stall information (the host-cpu row's "some task waiting"), where the kernel has it.
    args: ['--collector.disable-defaults', '--collector.cpu', '--collector.meminfo', '--collector.loadavg', '--collector.pressure'],
    missing: 'node_exporter is not installed: no host CPU signal (apt-get install prometheus-node-exporter)',
  },
};

/**
 * postgres_exporter and node_exporter when they are installed (Debian packages); without them the
 * analysis has no database or host signals, and says so, but the run still works. `kinds` picks
 * which of the two to start (default both).
 */
export async function startExporters(databaseUrl: string, warn: (line: string) => void, kinds: readonly Exporter['job'][] = ['postgres', 'node']): Promise<Exporter[]> {
  const exporters: Exporter[] = [];
  for (const job of kinds) {
    const { name, binaries, args, files, env, missing } = EXPORTERS[job];
    const binary = binaries.map(findBinary).find((path) => path !== undefined);
    if (!binary) {
      warn(missing);
      continue;
    }
    const port = await freePort();
    // Files it reads live in a dir of its own, removed when it exits (the run's watchdog removes
    // it if this process is killed first).
    const dir = files ? mkdtempSync(join(tmpdir(), 'loadlab-exporter-')) : undefined;
    if (dir) {
      Lifeline.current?.trackDir(dir);
      for (const [file, text] of Object.entries(files!)) writeFileSync(join(dir, file), text);
    }
    const process = ManagedProcess.start(name, binary, [`--web.listen-address=127.0.0.1:${port}`, ...args.map((arg) => arg.replace('{dir}', dir ?? ''))], { ...globalThis.process.env, ...env?.(databaseUrl) });
    if (dir) process.child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    exporters.push({ job, address: `127.0.0.1:${port}`, process });
  }
  await Promise.all(exporters.map((e) => e.process.waitForHttp(`http://${e.address}/metrics`, 15_000)));
  return exporters;
}
