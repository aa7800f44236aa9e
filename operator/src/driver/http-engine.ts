import { performance } from 'node:perf_hooks';
import { errors, Pool, type Dispatcher } from 'undici';

/*
 * The driver's HTTP engine: undici (MIT, the Node.js project's HTTP/1.1 client) in this process,
 * one keep-alive Pool per API origin. Requests go out the moment the pacer hands them over, and at
 * most `maxInFlight` are unanswered at once (k6's maxVUs: the generator's concurrency cap). No
 * request waits inside the engine: the pacer asks `free` before it sends, so a request's latency
 * is the API's, from the moment it was dispatched to the end of its response.
 *
 * Every request ends in exactly one completion: an HTTP status, or a failure of one of these kinds
 * (no HTTP response came):
 *   timeout   no response headers (or body) within the request timeout, or no connection in time
 *   refused   the connection was refused (nothing listens, or the backlog is full)
 *   reset     the connection broke (reset, closed, broken pipe) before the response ended
 *   protocol  the response was not valid HTTP/1.1
 *   other     anything else (for example the engine was closed under the request)
 */

export type FailureKind = 'timeout' | 'refused' | 'reset' | 'protocol' | 'other';
export const FAILURE_KINDS: readonly FailureKind[] = ['timeout', 'refused', 'reset', 'protocol', 'other'];

/** `status` is the HTTP status, or 0 with `failure` set when no response came. */
export type Completion = (tag: number, status: number, failure: FailureKind | undefined, latencyMs: number) => void;

export interface EngineOptions {
  /** API origins ("http://127.0.0.1:3000"); a request names one by index. */
  origins: readonly string[];
  /** Requests unanswered at most, over all origins. */
  maxInFlight: number;
  /** A request without its whole response after this long fails as a timeout. */
  requestTimeoutS: number;
  /** Called once per request when it ends. */
  onComplete: Completion;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Which kind of failure an error from undici is. */
export function failureKind(error: unknown): FailureKind {
  // llhttp's parse errors carry a code only for some of its checks.
  if (error instanceof errors.HTTPParserError) return 'protocol';
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return 'other';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (code === 'ECONNREFUSED') return 'refused';
  if (RESET_CODES.has(code)) return 'reset';
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return 'protocol';
  return 'other';
}

/** One request's handler: the response body is discarded as it arrives (nothing is buffered). */
class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;

  constructor(
    private readonly engine: HttpEngine,
    private readonly tag: number,
    private readonly startedMs: number,
  ) {}

  onRequestStart(): void {
    // undici requires every handler to have it; nothing to do when the request starts.
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(): void {
    // Discarded: only the status and the timing matter, and nothing is kept per response.
  }

  onResponseEnd(): void {
    this.engine.completed(this.tag, this.status, undefined, performance.now() - this.startedMs);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.engine.completed(this.tag, 0, failureKind(error), performance.now() - this.startedMs);
  }
}

export class HttpEngine {
  private readonly pools: Pool[];
  private readonly timeoutMs: number;
  private unanswered = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: EngineOptions) {
    if (options.origins.length === 0) throw new Error('origins: give at least one API origin, e.g. http://127.0.0.1:3000');
    if (!(Number.isInteger(options.maxInFlight) && options.maxInFlight >= 1)) throw new Error(`maxInFlight: must be a whole number >= 1, got ${options.maxInFlight}`);
    if (!(options.requestTimeoutS > 0)) throw new Error(`requestTimeoutS: must be > 0, got ${options.requestTimeoutS}`);
    this.timeoutMs = Math.round(options.requestTimeoutS * 1000);
    this.pools = options.origins.map(
      (origin) =>
        new Pool(origin, {
          // One request per connection at a time (HTTP/1.1 without pipelining), as k6 and browsers
          // do: so up to maxInFlight connections per origin, opened as the concurrency needs them.
          connections: options.maxInFlight,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
          connectTimeout: this.timeoutMs,
        }),
    );
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.unanswered;
  }

  /** How many more requests may be sent now. */
  get free(): number {
    return this.options.maxInFlight - this.unanswered;
  }

  /**
   * Sends one request now. `headers` is a flat [name, value, ...] list; `tag` comes back in the
   * completion. The caller keeps within `free` (a request beyond the cap throws: that would be a
   * pacing bug, not a load the API should see).
   */
  send(origin: number, method: 'GET' | 'POST', path: string, headers: string[], body: string | null, tag: number): void {
    if (this.unanswered >= this.options.maxInFlight) throw new Error(`engine: ${this.unanswered} requests in flight, the cap is ${this.options.maxInFlight}`);
    const pool = this.pools[origin];
    if (!pool) throw new Error(`engine: no origin ${origin} (have ${this.pools.length})`);
    this.unanswered++;
    pool.dispatch({ path, method, headers, body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs }, new Exchange(this, tag, performance.now()));
  }

  /** Internal: a request ended. */
  completed(tag: number, status: number, failure: FailureKind | undefined, latencyMs: number): void {
    this.unanswered--;
    this.options.onComplete(tag, status, failure, latencyMs);
    if (this.unanswered === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves once nothing is in flight, or after `graceMs` (false then). */
  async settled(graceMs: number): Promise<boolean> {
    if (this.unanswered === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<true>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    const result = await Promise.race([idle, late]);
    clearTimeout(timer);
    return result;
  }

  /** Closes every connection; requests still in flight fail (as 'other'). */
  async close(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}
