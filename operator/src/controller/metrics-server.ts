import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/*
 * The operator's own HTTP endpoint: /metrics for the PodMonitor (process and event-loop metrics,
 * whether this replica leads), /healthz for the liveness probe and /readyz for readiness (ready
 * once started; a standby is ready too: it is healthy, just not leading).
 */

/** What the gauges read at scrape time: the leader's cached experiments. */
export interface ExperimentOutcome {
  namespace: string;
  name: string;
  runId?: string | undefined;
  devicesAtBreak?: number | undefined;
  breakingPointRps?: number | undefined;
}

export interface MetricsServerOptions {
  port: number;
  host?: string;
  isLeader: () => boolean;
  isStarted: () => boolean;
  /** Only the leader has a cache; a standby reports none. */
  experiments?: () => readonly ExperimentOutcome[];
}

export class MetricsServer {
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    new Gauge({
      name: 'loadlab_operator_leader',
      help: '1 while this replica holds the leader Lease and reconciles, else 0.',
      registers: [registry],
      collect() {
        this.set(options.isLeader() ? 1 : 0);
      },
    });
    // The breaking point of each experiment's current run, labelled as the run's other series
    // (experiment="<namespace>/<name>", run), so the dashboard can mark it; the PodMonitor keeps
    // these labels (honorLabels).
    const labels = ['experiment', 'run'] as const;
    const experiments = options.experiments ?? (() => []);
    const outcome = (name: string, help: string, pick: (e: ExperimentOutcome) => number | undefined) =>
      new Gauge({
        name, help, labelNames: labels, registers: [registry],
        collect() {
          this.reset();
          for (const experiment of experiments()) {
            const value = pick(experiment);
            if (value !== undefined && experiment.runId) this.set({ experiment: `${experiment.namespace}/${experiment.name}`, run: experiment.runId }, value);
          }
        },
      });
    outcome('loadlab_experiment_breaking_point_devices', 'Fleet size at which the run first broke its SLO (absent: it held, or not analysed yet).', (e) => e.devicesAtBreak);
    outcome('loadlab_experiment_breaking_point_rps', 'Requests per second served when the run first broke its SLO.', (e) => e.breakingPointRps);
    const server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        registry.metrics().then(
          (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (error: unknown) => response.writeHead(500).end(String(error)),
        );
      } else if (path === '/healthz') {
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const ready = options.isStarted();
        response.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'starting\n');
      } else {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
    });
    const address = server.address();
    return new MetricsServer(server, typeof address === 'object' && address ? address.port : options.port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
