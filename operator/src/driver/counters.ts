import { FAILURE_KINDS, type FailureKind } from './http-engine.js';
import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';
import { DRIVER_ENDPOINTS, type DriverEndpoint } from './requests.js';

/*
 * The driver's running totals: plain numbers updated per request (the Prometheus counters catch up
 * with them at scrape time, see metrics.ts), and a window that the progress view reads and resets
 * once a second.
 */

/** Sent more than this long after its scheduled time: late. */
export const LATE_AFTER_S = 0.05;

export class EndpointCounts {
  offered = 0;
  sent = 0;
  dropped = 0;
  late = 0;
  /** Non-2xx responses plus failures (no response). */
  errors = 0;
  /** By HTTP status ("201"), and "error" for a failure. */
  readonly responses: Record<string, number> = {};
  readonly failures: Record<FailureKind, number> = { timeout: 0, refused: 0, reset: 0, protocol: 0, other: 0 };
  readonly latency = new LatencyHistogram();
}

export interface EndpointTotals {
  offered: number;
  sent: number;
  dropped: number;
  late: number;
  responses: Record<string, number>;
  failures: Record<FailureKind, number>;
  errors: number;
  latency: LatencySummary;
}

export class DriverCounters {
  readonly endpoints: Record<DriverEndpoint, EndpointCounts> = { measurements: new EndpointCounts(), command: new EndpointCounts(), login: new EndpointCounts() };
  /** The last second's counts, latency and send lag, for the progress view. */
  readonly window = { offered: 0, sent: 0, responses: 0, latency: new LatencyHistogram(), sendLag: new LatencyHistogram() };
  /** How late requests were sent (ms after their scheduled time), over the whole run. */
  readonly sendLag = new LatencyHistogram();
  maxLagS = 0;

  offered(endpoint: DriverEndpoint): void {
    this.endpoints[endpoint].offered++;
    this.window.offered++;
  }

  dropped(endpoint: DriverEndpoint): void {
    this.endpoints[endpoint].dropped++;
  }

  sent(endpoint: DriverEndpoint, lagS: number): void {
    const counts = this.endpoints[endpoint];
    counts.sent++;
    this.window.sent++;
    if (lagS > LATE_AFTER_S) counts.late++;
    if (lagS > this.maxLagS) this.maxLagS = lagS;
    this.sendLag.record(Math.max(0, lagS) * 1000);
    this.window.sendLag.record(Math.max(0, lagS) * 1000);
  }

  /** A request ended: an HTTP status, or 0 with the failure. */
  completed(endpoint: DriverEndpoint, status: number, failure: FailureKind | undefined, latencyMs: number): void {
    const counts = this.endpoints[endpoint];
    const code = failure ? 'error' : String(status);
    counts.responses[code] = (counts.responses[code] ?? 0) + 1;
    if (failure) counts.failures[failure]++;
    if (failure || status < 200 || status >= 300) counts.errors++;
    if (!failure) {
      // A failure has no response time worth a histogram (a timeout would only echo the timeout).
      counts.latency.record(latencyMs);
      this.window.latency.record(latencyMs);
    }
    this.window.responses++;
  }

  resetWindow(): void {
    this.window.offered = this.window.sent = this.window.responses = 0;
    this.window.latency.reset();
    this.window.sendLag.reset();
  }

  totals(): Omit<EndpointTotals, 'latency'> {
    const totals = { offered: 0, sent: 0, dropped: 0, late: 0, errors: 0, responses: {} as Record<string, number>, failures: { timeout: 0, refused: 0, reset: 0, protocol: 0, other: 0 } as Record<FailureKind, number> };
    for (const endpoint of DRIVER_ENDPOINTS) {
      const c = this.endpoints[endpoint];
      totals.offered += c.offered;
      totals.sent += c.sent;
      totals.dropped += c.dropped;
      totals.late += c.late;
      totals.errors += c.errors;
      for (const [code, n] of Object.entries(c.responses)) totals.responses[code] = (totals.responses[code] ?? 0) + n;
      for (const kind of FAILURE_KINDS) totals.failures[kind] += c.failures[kind];
    }
    return totals;
  }

  endpointTotals(): Record<DriverEndpoint, EndpointTotals> {
    const of = (c: EndpointCounts): EndpointTotals => ({
      offered: c.offered,
      sent: c.sent,
      dropped: c.dropped,
      late: c.late,
      errors: c.errors,
      responses: { ...c.responses },
      failures: { ...c.failures },
      latency: c.latency.summary(),
    });
    return { measurements: of(this.endpoints.measurements), command: of(this.endpoints.command), login: of(this.endpoints.login) };
  }
}
