import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '@loadlab/sandbox/postgres';
import { ManagedProcess } from './processes.js';
import { Lifeline } from './lifeline.js';
import { requireBinary } from './binaries.js';

export const PROMETHEUS_HOW_TO = 'run npm run setup (installs the Debian package prometheus), or apt-get install prometheus';

export interface ScrapeJob {
  job: string;
  targets: string[]; // host:port
  /** Labels of these targets only, on top of the settings' labels (e.g. the __meta_* labels discovery would give). */
  labels?: Record<string, string>;
  /**
   * A file_sd file (JSON: [{targets, labels}]) Prometheus watches for more targets of this job, for
   * targets that appear while it runs, as service discovery would add them. Its targets carry only
   * the labels written in the file.
   */
  targetsFile?: string;
  /** Prometheus relabel_configs of the job, as written in prometheus.yml. */
  relabelConfigs?: Record<string, unknown>[];
  /** Prometheus metric_relabel_configs of the job, as written in prometheus.yml. */
  metricRelabelConfigs?: Record<string, unknown>[];
}

export interface PrometheusSettings {
  jobs: ScrapeJob[];
  /** Added to every scraped series, as the operator's PodMonitors add them in a cluster. */
  labels: Record<string, string>;
  scrapeIntervalS: number;
  /**
   * PROMETHEUS_URL's remote-write endpoint: when set, this Prometheus runs in agent mode (scrapes,
   * keeps nothing, forwards every sample there) and the run is analysed from that Prometheus.
   */
  remoteWriteUrl?: string;
}

/** The generated configuration: one job per kind of process, the experiment's labels on every target. */
export function prometheusConfig(settings: PrometheusSettings): string {
  const interval = `${settings.scrapeIntervalS}s`;
  return stringify({
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: `${Math.round(Math.max(1, settings.scrapeIntervalS - 0.5) * 1000)}ms` },
    scrape_configs: settings.jobs
      .filter((job) => job.targets.length > 0 || job.targetsFile)
      .map((job) => ({
        job_name: job.job,
        ...(job.targets.length > 0 ? { static_configs: [{ targets: job.targets, labels: { ...settings.labels, ...job.labels } }] } : {}),
        ...(job.targetsFile ? { file_sd_configs: [{ files: [job.targetsFile] }] } : {}),
        ...(job.relabelConfigs ? { relabel_configs: job.relabelConfigs } : {}),
        ...(job.metricRelabelConfigs ? { metric_relabel_configs: job.metricRelabelConfigs } : {}),
      })),
    // Sent within a second: the analysis waits for the run's last samples to arrive there.
    ...(settings.remoteWriteUrl ? { remote_write: [{ url: settings.remoteWriteUrl, queue_config: { batch_send_deadline: '1s' } }] } : {}),
  });
}

/**
 * Checks that PROMETHEUS_URL answers queries and accepts remote write (the local Prometheus
 * forwards the run's samples there), with a message a person can act on when it does not.
 */
export async function checkRemotePrometheus(url: string): Promise<{ queryUrl: string; remoteWriteUrl: string }> {
  const base = url.replace(/\/+$/, '');
  const problem = (why: string) => new Error(`PROMETHEUS_URL ${base}: ${why}`);
  const ready = await fetch(`${base}/api/v1/status/buildinfo`, { signal: AbortSignal.timeout(5000) }).then(
    (response) => response.ok,
    (error: Error) => {
      throw problem(`cannot reach it (${error.cause instanceof Error ? error.cause.message : error.message}); unset PROMETHEUS_URL to use a Prometheus of loadlab's own`);
    },
  );
  if (!ready) throw problem('does not answer the Prometheus HTTP API (GET /api/v1/status/buildinfo)');
  // An empty body: a receiver answers 400 (nothing to decode); without one the path is 404.
  const write = await fetch(`${base}/api/v1/write`, { method: 'POST', body: '', signal: AbortSignal.timeout(5000) }).then((response) => response.status, () => 0);
  if (write === 404 || write === 0) throw problem('does not accept remote write: start it with --web.enable-remote-write-receiver');
  return { queryUrl: base, remoteWriteUrl: `${base}/api/v1/write` };
}

/**
 * A Prometheus of our own on a free loopback port: the generated scrape configuration, the
 * remote-write receiver on (k6's output format, the same as in a cluster) and native histograms.
 * With `remoteWriteUrl` it is an agent instead: it scrapes and forwards, and stores nothing.
 */
export class LocalPrometheus {
  private constructor(
    readonly url: string,
    private process: ManagedProcess,
    private readonly dir: string,
    private readonly args: readonly string[],
  ) {}

  static async start(settings: PrometheusSettings): Promise<LocalPrometheus> {
    requireBinary('prometheus', PROMETHEUS_HOW_TO); // before anything is made
    const dir = await mkdtemp(join(tmpdir(), 'loadlab-prometheus-'));
    Lifeline.current?.trackDir(dir);
    const port = await freePort();
    await writeFile(join(dir, 'prometheus.yml'), prometheusConfig(settings));
    const storage = settings.remoteWriteUrl
      ? ['--enable-feature=agent', `--storage.agent.path=${join(dir, 'data')}`]
      : [`--storage.tsdb.path=${join(dir, 'data')}`, '--web.enable-remote-write-receiver', '--enable-feature=native-histograms', '--storage.tsdb.retention.time=1d'];
    const args = [`--config.file=${join(dir, 'prometheus.yml')}`, `--web.listen-address=127.0.0.1:${port}`, ...storage, '--log.level=warn'];
    const prometheus = new LocalPrometheus(`http://127.0.0.1:${port}`, LocalPrometheus.spawn(args), dir, args);
    try {
      await prometheus.ready();
    } catch (error) {
      await prometheus.stop();
      throw error;
    }
    return prometheus;
  }

  private static spawn(args: readonly string[]): ManagedProcess {
    return ManagedProcess.start('prometheus', requireBinary('prometheus', PROMETHEUS_HOW_TO), [...args]);
  }

  private ready(): Promise<void> {
    return this.process.waitForHttp(`${this.url}/-/ready`, 30_000);
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get isRunning(): boolean {
    return this.process.isRunning;
  }

  /**
   * Starts it again after it died (killed, crashed), on the same port and data directory: what
   * it had stored comes back from its write-ahead log, and it scrapes again from there on.
   */
  async restart(): Promise<void> {
    await this.process.stop();
    this.process = LocalPrometheus.spawn(this.args);
    await this.ready();
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
