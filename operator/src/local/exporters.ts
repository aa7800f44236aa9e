import { findBinary } from './binaries.js';
import { freePort } from './postgres.js';
import { ManagedProcess } from './processes.js';

export interface Exporter {
  job: 'postgres' | 'node';
  address: string; // host:port
  process: ManagedProcess;
}

/**
 * postgres_exporter and node_exporter when they are installed (Debian packages); without them the
 * analysis has no database or host signals, and says so, but the run still works. `kinds` picks
 * which of the two to start (default both).
 */
export async function startExporters(databaseUrl: string, warn: (line: string) => void, kinds: readonly Exporter['job'][] = ['postgres', 'node']): Promise<Exporter[]> {
  const exporters: Exporter[] = [];
  if (kinds.includes('postgres')) {
    const postgres = findBinary('prometheus-postgres-exporter') ?? findBinary('postgres_exporter');
    if (postgres) {
      const port = await freePort();
      const dsn = databaseUrl.includes('sslmode=') ? databaseUrl : `${databaseUrl}${databaseUrl.includes('?') ? '&' : '?'}sslmode=disable`;
      const process = ManagedProcess.start('postgres_exporter', postgres, [`--web.listen-address=127.0.0.1:${port}`], { ...globalThis.process.env, DATA_SOURCE_NAME: dsn });
      exporters.push({ job: 'postgres', address: `127.0.0.1:${port}`, process });
    } else {
      warn('postgres_exporter is not installed: no database signals (apt-get install prometheus-postgres-exporter)');
    }
  }
  if (kinds.includes('node')) {
    const node = findBinary('prometheus-node-exporter') ?? findBinary('node_exporter');
    if (node) {
      const port = await freePort();
      // Only the collectors the analysis reads: a full node_exporter costs more CPU than we want to steal.
      const process = ManagedProcess.start('node_exporter', node, [`--web.listen-address=127.0.0.1:${port}`, '--collector.disable-defaults', '--collector.cpu', '--collector.meminfo', '--collector.loadavg']);
      exporters.push({ job: 'node', address: `127.0.0.1:${port}`, process });
    } else {
      warn('node_exporter is not installed: no host CPU signal (apt-get install prometheus-node-exporter)');
    }
  }
  await Promise.all(exporters.map((e) => e.process.waitForHttp(`http://${e.address}/metrics`, 15_000)));
  return exporters;
}
