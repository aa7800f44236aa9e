import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EndpointCounts } from './counters.js';
import { FAILURE_KINDS } from './http-engine.js';
import { DRIVER_ENDPOINTS, type DriverEndpoint } from './requests.js';

/*
 * The load driver's metrics, served as Prometheus text on GET /metrics (127.0.0.1 in local mode, every
 * interface in a driver pod).
 * The names are fixed: the analysis queries them. Label `endpoint` is one of measurements
 * (POST /v1/measurements), command (GET /v1/command), login (POST /v1/devices/login).
 *
 *   loadlab_driver_requests_offered_total{endpoint}     counter  arrivals the schedule asked for, counted when due (= sent + dropped
 *                                                                + the few waiting for a free request slot)
 *   loadlab_driver_requests_sent_total{endpoint}        counter  requests handed to the HTTP engine
 *   loadlab_driver_requests_dropped_total{endpoint}     counter  arrivals not sent because the driver was more than
 *                                                                maxLag (default 1 s) behind their time (k6's dropped_iterations)
 *   loadlab_driver_requests_late_total{endpoint}        counter  requests sent more than 50 ms after their scheduled time
 *   loadlab_driver_schedule_lag_seconds                 gauge    how far behind its schedule the driver is now (0 when on time)
 *   loadlab_driver_responses_total{endpoint,code}       counter  completed requests by HTTP status; code="error" when there was
 *                                                                no HTTP response (timeout, refused, reset)
 *   loadlab_driver_request_duration_seconds{endpoint}   histogram client-side latency, from sending the request to the end of the
 *                                                                response (buckets .001 .0025 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10, as the API's)
 *   loadlab_driver_fleet_devices                        gauge    devices online in the schedule now
 *   loadlab_driver_phase_index                          gauge    index of the plan phase running now (-1 before and after)
 *   loadlab_driver_in_flight_requests                   gauge    requests sent and not yet answered
 *   loadlab_driver_max_in_flight_requests               gauge    the engine's concurrency cap (maxVUs); in flight at the cap means
 *                                                                the generator, not the API, is what limits the rate
 *   loadlab_driver_concurrency_requests                 gauge    requests the engine allows in flight now: from 64 up to the cap
 *                                                                while the API holds the connections (http-engine.ts)
 *   loadlab_driver_request_failures_total{endpoint,kind} counter requests that got no HTTP response, by kind: timeout, refused,
 *                                                                reset, protocol, other (http-engine.ts)
 *   process_*, nodejs_*                                          prom-client's default metrics for the driver's own process, which
 *                                                                sends the requests itself: process_cpu_seconds_total is the
 *                                                                generator's whole CPU
 *
 * Optional constant labels (options.labels, e.g. {experiment: "smoke"}) are added to every series.
 */

export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const METRIC_NAMES = [
  'loadlab_driver_requests_offered_total',
  'loadlab_driver_requests_sent_total',
  'loadlab_driver_requests_dropped_total',
  'loadlab_driver_requests_late_total',
  'loadlab_driver_schedule_lag_seconds',
  'loadlab_driver_responses_total',
  'loadlab_driver_request_duration_seconds',
  'loadlab_driver_fleet_devices',
  'loadlab_driver_phase_index',
  'loadlab_driver_in_flight_requests',
  'loadlab_driver_max_in_flight_requests',
  'loadlab_driver_concurrency_requests',
  'loadlab_driver_request_failures_total',
] as const;

type PerEndpoint<T> = Record<DriverEndpoint, T>;
interface Observe {
  observe(value: number): void;
}

/** What the gauges read when Prometheus scrapes: the driver's state at that moment. */
export interface MetricSources {
  counts: PerEndpoint<EndpointCounts>;
  inFlight(): number;
  concurrency(): number;
  /** Seconds the oldest waiting arrival is behind its time (0 when nothing waits). */
  scheduleLagS(): number;
  /** Devices online in the schedule now (0 outside the run). */
  fleet(): number;
  /** The plan phase running now (-1 outside the run). */
  phase(): number;
}

/*
 * Counters are not incremented per request: the driver keeps plain numbers (cheaper at 20,000+
 * requests/s) and each counter catches up with them when it is collected, at scrape time.
 */
export class DriverMetrics {
  readonly registry = new Registry();
  readonly duration: PerEndpoint<Observe>;
  readonly maxInFlight: Gauge;

  constructor(sources: MetricSources, labels: Record<string, string> = {}) {
    const registers = [this.registry];
    if (Object.keys(labels).length > 0) this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });
    const counter = (name: string, help: string, field: 'offered' | 'sent' | 'dropped' | 'late') => {
      const reported = { measurements: 0, command: 0, login: 0 };
      const metric: Counter<'endpoint'> = new Counter({
        name,
        help,
        labelNames: ['endpoint'],
        registers,
        collect() {
          for (const endpoint of DRIVER_ENDPOINTS) {
            const now = sources.counts[endpoint][field];
            if (now > reported[endpoint]) metric.inc({ endpoint }, now - reported[endpoint]);
            reported[endpoint] = now;
          }
        },
      });
      // Every series exists from the first scrape, so rate() and absent() see it.
      for (const endpoint of DRIVER_ENDPOINTS) metric.inc({ endpoint }, 0);
    };
    counter('loadlab_driver_requests_offered_total', 'Arrivals the schedule asked for, counted when due (sent + dropped + waiting).', 'offered');
    counter('loadlab_driver_requests_sent_total', 'Requests handed to the HTTP engine.', 'sent');
    counter('loadlab_driver_requests_dropped_total', 'Arrivals not sent: the driver was more than maxLag behind their scheduled time.', 'dropped');
    counter('loadlab_driver_requests_late_total', 'Requests sent more than 50 ms after their scheduled time.', 'late');
    const reportedResponses = new Map<string, number>();
    const responses: Counter<'endpoint' | 'code'> = new Counter({
      name: 'loadlab_driver_responses_total',
      help: 'Completed requests by endpoint and HTTP status; code="error" when no HTTP response came (timeout, refused, reset).',
      labelNames: ['endpoint', 'code'],
      registers,
      collect() {
        for (const endpoint of DRIVER_ENDPOINTS) {
          for (const [code, now] of Object.entries(sources.counts[endpoint].responses)) {
            const key = `${endpoint} ${code}`;
            const before = reportedResponses.get(key) ?? 0;
            if (now > before) responses.inc({ endpoint, code }, now - before);
            reportedResponses.set(key, now);
          }
        }
      },
    });
    const histogram = new Histogram({
      name: 'loadlab_driver_request_duration_seconds',
      help: 'Client-side latency from sending the request to the end of the response.',
      labelNames: ['endpoint'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const perEndpoint = <T>(make: (endpoint: DriverEndpoint) => T): PerEndpoint<T> =>
      ({ measurements: make('measurements'), command: make('command'), login: make('login') });
    this.duration = perEndpoint((endpoint) => {
      histogram.zero({ endpoint });
      return histogram.labels({ endpoint });
    });
    // Read at scrape time rather than set on every pacing tick (a thousand times a second).
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('loadlab_driver_schedule_lag_seconds', 'How far behind its schedule the driver is now.', sources.scheduleLagS);
    gauge('loadlab_driver_fleet_devices', 'Devices online in the schedule now.', sources.fleet);
    gauge('loadlab_driver_phase_index', 'Index of the plan phase running now (-1 outside the plan).', sources.phase);
    gauge('loadlab_driver_in_flight_requests', 'Requests sent and not yet answered.', sources.inFlight);
    gauge('loadlab_driver_concurrency_requests', 'Requests the engine allows in flight now: from 64 up to the cap while the API holds the connections.', sources.concurrency);
    this.maxInFlight = new Gauge({ name: 'loadlab_driver_max_in_flight_requests', help: 'The engine\'s concurrency cap (maxVUs).', registers });
    const reportedFailures = new Map<string, number>();
    const failures: Counter<'endpoint' | 'kind'> = new Counter({
      name: 'loadlab_driver_request_failures_total',
      help: 'Requests that got no HTTP response, by kind: timeout, refused, reset, protocol, other.',
      labelNames: ['endpoint', 'kind'],
      registers,
      collect() {
        for (const endpoint of DRIVER_ENDPOINTS) {
          for (const kind of FAILURE_KINDS) {
            const key = `${endpoint} ${kind}`;
            const now = sources.counts[endpoint].failures[kind];
            const before = reportedFailures.get(key) ?? 0;
            if (now > before) failures.inc({ endpoint, kind }, now - before);
            reportedFailures.set(key, now);
          }
        }
      },
    });
    for (const endpoint of DRIVER_ENDPOINTS) for (const kind of FAILURE_KINDS) failures.inc({ endpoint, kind }, 0);
  }
}

/** GET /metrics on 127.0.0.1:port (0: any free port); resolves with the server and its URL. */
export async function serveMetrics(registry: Registry, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the driver serves GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`metricsPort ${port}: ${host}:${port} is already in use; pick another port or 0 for any free port`) : error),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  // A server on every interface is reached locally through loopback.
  const reach = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return { server, url: `http://${reach}:${bound}/metrics` };
}
