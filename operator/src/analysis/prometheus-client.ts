import { AnalysisInputError } from './errors.js';
import type { Series } from './series.js';

/*
 * A small client for Prometheus' HTTP API (instant and range queries). It never retries by itself:
 * it says *whether* a failure is worth retrying (RetryableError) or not (TerminalError), and the
 * caller — the reconciler's backoff, or local mode's one-shot run — decides when. An empty result is
 * reported as Missing, never as 0: "the exporter was not scraped" and "the value was zero" lead to
 * different verdicts.
 */

export type FailureKind = 'unreachable' | 'timeout' | 'server' | 'bad-query' | 'malformed' | 'cancelled';

export class PrometheusError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly query: string,
    readonly httpStatus?: number,
    /** Prometheus' errorType (bad_data, execution, timeout, canceled, internal, unavailable, ...). */
    readonly errorType?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Prometheus was unreachable, overloaded, timed out or answered 5xx: try again later. */
export class RetryableError extends PrometheusError {
  override name = 'RetryableError';
}

/** The query itself is wrong (4xx, bad_data, execution): retrying the same query cannot help. */
export class TerminalError extends PrometheusError {
  override name = 'TerminalError';
}

/** No series matched: the metric is absent for this selector and window (not a zero). */
export interface Missing {
  readonly missing: true;
  readonly query: string;
}

export function isMissing(value: unknown): value is Missing {
  return typeof value === 'object' && value !== null && (value as Missing).missing === true;
}

export interface InstantSample {
  labels: Readonly<Record<string, string>>;
  time: number;
  value: number;
}

export interface PrometheusClientOptions {
  /** e.g. http://127.0.0.1:9090 (a path prefix such as /prometheus is kept). */
  baseUrl: string;
  /** Per request, including reading the body. */
  timeoutMs?: number;
  /** Cancels every request of this client (operator shutdown). */
  signal?: AbortSignal;
  /** Extra headers, e.g. an Authorization header for a secured Prometheus. */
  headers?: Record<string, string>;
  /**
   * How requests are sent (default: the global fetch): `loadlab report` passes one that goes through
   * the Kubernetes API's service proxy with the kubeconfig's credentials.
   */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /**
   * Prometheus refuses a range query of more than 11,000 points per series; longer ranges are
   * split into consecutive requests of at most this many points and joined.
   */
  maxPointsPerRequest?: number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
const PROMETHEUS_MAX_POINTS = 11_000;

/** errorTypes that say "the server could not answer now" rather than "the query is wrong". */
const RETRYABLE_ERROR_TYPES = new Set(['timeout', 'canceled', 'internal', 'unavailable']);

export class PrometheusClient {
  /** HTTP requests made so far (each range chunk counts): the figure the performance target bounds. */
  queryCount = 0;
  /** Time spent in requests, milliseconds (summed over concurrent requests). */
  queryTimeMs = 0;

  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly maxPoints: number;

  constructor(private readonly options: PrometheusClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxPoints = Math.min(options.maxPointsPerRequest ?? PROMETHEUS_MAX_POINTS, PROMETHEUS_MAX_POINTS);
  }

  /** The value of `query` at `timeUnixS` (default: now), one sample per series. */
  async instant(query: string, timeUnixS?: number): Promise<InstantSample[] | Missing> {
    const params: Record<string, string> = { query };
    if (timeUnixS !== undefined) params.time = String(timeUnixS);
    const data = await this.request('/api/v1/query', params, query);
    const samples = parseInstant(data, query);
    return samples.length === 0 ? { missing: true, query } : samples;
  }

  /** A single number from an instant query that yields a scalar or exactly one series. */
  async instantValue(query: string, timeUnixS?: number): Promise<number | Missing> {
    const result = await this.instant(query, timeUnixS);
    if (isMissing(result)) return result;
    if (result.length > 1) {
      throw new TerminalError(`expected one series from ${query}, got ${result.length}: aggregate it (e.g. sum(...))`, 'bad-query', query);
    }
    return result[0]!.value;
  }

  /** `query` evaluated every `stepS` seconds from start to end (inclusive), as series. */
  async range(query: string, startUnixS: number, endUnixS: number, stepS: number): Promise<Series[] | Missing> {
    if (!(stepS > 0)) throw new AnalysisInputError(`range query step must be positive, got ${stepS}`);
    if (!(endUnixS >= startUnixS)) throw new AnalysisInputError(`range query end (${endUnixS}) is before its start (${startUnixS})`);
    const bySeries = new Map<string, Series>();
    const chunkS = (this.maxPoints - 1) * stepS;
    for (let chunkStart = startUnixS; chunkStart <= endUnixS; chunkStart += chunkS + stepS) {
      const chunkEnd = Math.min(endUnixS, chunkStart + chunkS);
      const data = await this.request(
        '/api/v1/query_range',
        { query, start: String(chunkStart), end: String(chunkEnd), step: String(stepS) },
        query,
      );
      for (const series of parseMatrix(data, query)) {
        const key = labelKey(series.labels);
        const existing = bySeries.get(key);
        if (existing) existing.samples.push(...series.samples);
        else bySeries.set(key, series);
      }
    }
    return bySeries.size === 0 ? { missing: true, query } : [...bySeries.values()];
  }

  private async request(path: string, params: Record<string, string>, query: string): Promise<unknown> {
    this.queryCount++;
    const started = performance.now();
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = this.options.signal ? AbortSignal.any([timeout, this.options.signal]) : timeout;
    try {
      let response: Response;
      let text: string;
      try {
        // POST keeps long PromQL out of URLs (and out of proxies' URL length limits).
        response = await (this.options.fetch ?? fetch)(this.baseUrl + path, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...this.options.headers },
          body: new URLSearchParams(params),
          signal,
        });
        text = await response.text();
      } catch (error) {
        throw this.transportError(error, query);
      }
      return this.interpret(response.status, text, query);
    } finally {
      this.queryTimeMs += performance.now() - started;
    }
  }

  private transportError(error: unknown, query: string): PrometheusError {
    const name = (error as { name?: string }).name;
    if (name === 'TimeoutError') {
      return new RetryableError(`Prometheus at ${this.baseUrl} did not answer within ${this.timeoutMs} ms`, 'timeout', query, undefined, undefined, { cause: error });
    }
    if (name === 'AbortError') {
      return new TerminalError(`query to Prometheus at ${this.baseUrl} was cancelled`, 'cancelled', query, undefined, undefined, { cause: error });
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (error as Error).message;
    return new RetryableError(
      `Prometheus at ${this.baseUrl} is unreachable (${detail}): check the URL and that it is running`,
      'unreachable', query, undefined, undefined, { cause: error },
    );
  }

  private interpret(status: number, text: string, query: string): unknown {
    let body: { status?: string; data?: unknown; errorType?: string; error?: string } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    if (body?.status === 'success' && status >= 200 && status < 300) return body.data;

    const errorType = body?.errorType;
    const reason = body?.error ?? (text.trim().slice(0, 200) || `HTTP ${status}`);
    const message = `Prometheus refused ${JSON.stringify(query)}: ${reason}` + (errorType ? ` (${errorType})` : '');
    // Prometheus' own errorType is the better signal: it answers 503 for timeouts and 422 for
    // evaluation errors, and a proxy in front may change the status code.
    if (errorType !== undefined) {
      const retryable = RETRYABLE_ERROR_TYPES.has(errorType);
      const kind = errorType === 'timeout' ? 'timeout' : retryable ? 'server' : 'bad-query';
      return this.fail(retryable, message, kind, status, errorType, query);
    }
    // 429 is "slow down", not "bad query": a later attempt will be served.
    if (status >= 500 || status === 429) {
      return this.fail(true, `Prometheus at ${this.baseUrl} answered HTTP ${status}: ${reason}`, 'server', status, undefined, query);
    }
    if (status >= 400) return this.fail(false, message, 'bad-query', status, undefined, query);
    // A 2xx that is not Prometheus' JSON (e.g. a login page from a proxy) will not change by itself.
    return this.fail(false, `Prometheus at ${this.baseUrl} answered HTTP ${status} with something other than its JSON API: ${reason}`, 'malformed', status, undefined, query);
  }

  private fail(retryable: boolean, message: string, kind: FailureKind, status: number, errorType: string | undefined, query: string): never {
    if (retryable) throw new RetryableError(message, kind, query, status, errorType);
    throw new TerminalError(message, kind, query, status, errorType);
  }
}

/** Prometheus writes sample values as strings, with NaN, +Inf and -Inf spelled out. */
export function parseSampleValue(text: unknown): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

function parseMatrix(data: unknown, query: string): Series[] {
  const { resultType, result } = (data ?? {}) as { resultType?: string; result?: unknown };
  if (resultType !== 'matrix' || !Array.isArray(result)) {
    throw new TerminalError(`expected a matrix from the range query ${JSON.stringify(query)}, got ${String(resultType)}`, 'malformed', query);
  }
  return result.map((entry: { metric?: Record<string, string>; values?: [number, string][] }) => ({
    labels: entry.metric ?? {},
    samples: (entry.values ?? []).map(([time, value]) => [Number(time), parseSampleValue(value)] as [number, number]),
  }));
}

function parseInstant(data: unknown, query: string): InstantSample[] {
  const { resultType, result } = (data ?? {}) as { resultType?: string; result?: unknown };
  if (resultType === 'scalar' && Array.isArray(result)) {
    return [{ labels: {}, time: Number(result[0]), value: parseSampleValue(result[1]) }];
  }
  if (resultType === 'vector' && Array.isArray(result)) {
    return result.map((entry: { metric?: Record<string, string>; value?: [number, string] }) => ({
      labels: entry.metric ?? {},
      time: Number(entry.value?.[0]),
      value: parseSampleValue(entry.value?.[1]),
    }));
  }
  throw new TerminalError(`expected a vector or scalar from ${JSON.stringify(query)}, got ${String(resultType)}`, 'malformed', query);
}

export function labelKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
