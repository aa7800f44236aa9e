import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './postgres.js';
import { ManagedProcess } from './processes.js';
import { requireBinary } from './binaries.js';

export const PROMETHEUS_HOW_TO = 'run npm run setup (installs the Debian package prometheus), or apt-get install prometheus';

export interface ScrapeJob {
  job: string;
  targets: string[]; // host:port
}

export interface PrometheusSettings {
  jobs: ScrapeJob[];
  /** Added to every scraped series, as the operator's PodMonitors add them in a cluster. */
  labels: Record<string, string>;
  scrapeIntervalS: number;
}

/** The generated configuration: one job per kind of process, the experiment's labels on every target. */
export function prometheusConfig(settings: PrometheusSettings): string {
  const interval = `${settings.scrapeIntervalS}s`;
  return stringify({
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: `${Math.round(Math.max(1, settings.scrapeIntervalS - 0.5) * 1000)}ms` },
    scrape_configs: settings.jobs
      .filter((job) => job.targets.length > 0)
      .map((job) => ({ job_name: job.job, static_configs: [{ targets: job.targets, labels: settings.labels }] })),
  });
}

/**
 * A Prometheus of our own on a free loopback port: the generated scrape configuration, the
 * remote-write receiver on (k6's output format, the same as in a cluster) and native histograms.
 */
export class LocalPrometheus {
  private constructor(
    readonly url: string,
    private readonly process: ManagedProcess,
    private readonly dir: string,
  ) {}

  static async start(settings: PrometheusSettings): Promise<LocalPrometheus> {
    const binary = requireBinary('prometheus', PROMETHEUS_HOW_TO);
    const dir = await mkdtemp(join(tmpdir(), 'loadlab-prometheus-'));
    const port = await freePort();
    await writeFile(join(dir, 'prometheus.yml'), prometheusConfig(settings));
    const process = ManagedProcess.start('prometheus', binary, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-remote-write-receiver',
      '--enable-feature=native-histograms',
      '--storage.tsdb.retention.time=1d',
      '--log.level=warn',
    ]);
    const prometheus = new LocalPrometheus(`http://127.0.0.1:${port}`, process, dir);
    try {
      await process.waitForHttp(`${prometheus.url}/-/ready`, 30_000);
    } catch (error) {
      await prometheus.stop();
      throw error;
    }
    return prometheus;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
