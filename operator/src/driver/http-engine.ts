import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Client, errors, type Dispatcher } from 'undici';

/*
 * The driver's HTTP engine: undici (MIT, the Node.js project's HTTP/1.1 client) in this process,
 * keep-alive connections per API origin (Connections below). Requests go out the moment the pacer
 * hands them over, and at most `maxInFlight` are unanswered at once (k6's maxVUs: the generator's
 * concurrency cap). No request waits inside the engine: the pacer asks `free` before it sends, so
 * a request's latency is the API's, from the moment it was dispatched to the end of its response.
 *
 * One request per connection at a time (HTTP/1.1 without pipelining, as k6 and browsers do), so the
 * requests in flight are the connections in use. The engine does not open maxInFlight connections
 * at the first burst, though: it allows `concurrency` requests in flight, starting at 64 (what a
 * fast API needs at 30,000 requests/s paced every millisecond), and raises it, up to maxInFlight,
 * to cover every request waiting (at least doubling), when the pacer finds no room while this
 * process' event loop had time to spare over the last 100 ms: then the API's slow answers hold
 * the connections, and a device fleet would have more requests open. When the loop is busy, the
 * room is short because this process reads its answers late; more connections would only cost
 * more CPU per request (measured: with 1,000 connections open at 30,000/s the same process sent
 * half as much), so the engine keeps its concurrency and the shortfall shows as schedule lag, late
 * and dropped requests, the generator's own evidence. Once a second the concurrency comes back to
 * twice the peak in flight, and to half when the loop was busy (never below 64).
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

/** Requests allowed in flight at the start, and the least the concurrency is trimmed back to. */
export const INITIAL_CONCURRENCY = 64;
/** The event loop's busy share above which more connections would not help (see above). */
const BUSY_LOOP = 0.75;
/** The loop's busy share is judged over the last 100 ms, sampled every 10 ms, from the first request on. */
const LOOP_SAMPLE_MS = 10;
const LOOP_WINDOW_MARKS = 10;
const LOOP_MIN_MARKS = 3;
const TRIM_EVERY_MS = 1000;
/** Growing waits this long after the last growth, so the new room can show its effect first. */
const GROWTH_SPACING_MS = 10;

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

/**
 * One origin's keep-alive connections: undici Clients, each carrying one request at a time, the
 * idle ones on a stack (the most recently used first, so the rest can time out when fewer are
 * needed). undici's Pool finds an idle connection by scanning all of them on every request, a cost
 * that grows with the connections open; here taking one costs the same at 10 or 1,000.
 */
class Connections {
  private readonly all: Client[] = [];
  private readonly idle: Client[] = [];

  constructor(
    private readonly origin: string,
    private readonly clientOptions: Client.Options,
  ) {}

  take(): Client {
    const client = this.idle.pop();
    if (client) return client;
    const opened = new Client(this.origin, this.clientOptions);
    this.all.push(opened);
    return opened;
  }

  give(client: Client): void {
    this.idle.push(client);
  }

  get open(): number {
    return this.all.length;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.all.map((client) => client.destroy().catch(() => undefined)));
  }
}

/** One request's handler: the response body is discarded as it arrives (nothing is buffered). */
class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;

  constructor(
    private readonly engine: HttpEngine,
    private readonly connections: Connections,
    private readonly client: Client,
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
    this.connections.give(this.client);
    this.engine.completed(this.tag, this.status, undefined, performance.now() - this.startedMs);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // The Client reconnects by itself when it is next given a request.
    this.connections.give(this.client);
    this.engine.completed(this.tag, 0, failureKind(error), performance.now() - this.startedMs);
  }
}

export class HttpEngine {
  private readonly pools: Connections[];
  private readonly timeoutMs: number;
  private unanswered = 0;
  private idleWaiters: (() => void)[] = [];
  private allowed: number;
  private peak = 0;
  /** The event loop's busy share over the last LOOP_WINDOW_MARKS samples (1 until there are LOOP_MIN_MARKS of sending). */
  private loopBusy = 1;
  /** Marks of the event loop's use every LOOP_SAMPLE_MS since the first request, the newest last. */
  private loopMarks: EventLoopUtilization[] = [];
  private lastGrowthMs = -Infinity;
  private lastTrimMs = 0;
  private sampler: NodeJS.Timeout | undefined;

  constructor(private readonly options: EngineOptions) {
    if (options.origins.length === 0) throw new Error('origins: give at least one API origin, e.g. http://127.0.0.1:3000');
    if (!(Number.isInteger(options.maxInFlight) && options.maxInFlight >= 1)) throw new Error(`maxInFlight: must be a whole number >= 1, got ${options.maxInFlight}`);
    if (!(options.requestTimeoutS > 0)) throw new Error(`requestTimeoutS: must be > 0, got ${options.requestTimeoutS}`);
    this.timeoutMs = Math.round(options.requestTimeoutS * 1000);
    const clientOptions: Client.Options = {
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
    };
    this.pools = options.origins.map((origin) => new Connections(origin, clientOptions));
    this.allowed = Math.min(options.maxInFlight, INITIAL_CONCURRENCY);
  }

  /** Requests allowed in flight now (between 64, or maxInFlight when lower, and maxInFlight). */
  get concurrency(): number {
    return this.allowed;
  }

  /** Connections opened so far, over all origins (each stays until the engine closes; idle ones drop their socket after 30 s). */
  get connectionsOpened(): number {
    return this.pools.reduce((sum, pool) => sum + pool.open, 0);
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.unanswered;
  }

  /** How many more requests may be sent now. */
  get free(): number {
    return this.allowed - this.unanswered;
  }

  /**
   * The pacer has `waiting` requests due and no room: when this process' loop had time to spare
   * (the API holds the connections), allow enough for them at once, at least double, up to the cap
   * (a fleet would have them open: k6 starts a VU per arrival that finds none free); else keep the
   * concurrency (this process is the limit).
   */
  noRoom(waiting = 1): void {
    if (this.allowed >= this.options.maxInFlight || this.loopBusy >= BUSY_LOOP) return;
    const now = performance.now();
    if (now - this.lastGrowthMs < GROWTH_SPACING_MS) return;
    this.lastGrowthMs = now;
    this.allowed = Math.min(this.options.maxInFlight, Math.max(this.allowed * 2, this.unanswered + waiting));
  }

  private sample(): void {
    const marks = this.loopMarks;
    marks.push(performance.eventLoopUtilization());
    if (marks.length > LOOP_WINDOW_MARKS + 1) marks.shift();
    // Until the marks cover a few samples of sending, the loop counts as busy: the time before the
    // first request (idle) says nothing about whether this process has time to spare under load.
    this.loopBusy = marks.length > LOOP_MIN_MARKS ? performance.eventLoopUtilization(marks[marks.length - 1], marks[0]).utilization : 1;
    const now = performance.now();
    if (now - this.lastTrimMs >= TRIM_EVERY_MS) {
      this.lastTrimMs = now;
      const floor = Math.min(this.options.maxInFlight, INITIAL_CONCURRENCY);
      // A busy loop halves it: the room it had was not used for want of the API but of this
      // process, and fewer connections cost less per request.
      const cap = this.loopBusy >= BUSY_LOOP ? this.allowed >> 1 : this.allowed;
      this.allowed = Math.max(floor, Math.min(cap, 2 * this.peak));
      this.peak = this.unanswered;
    }
  }

  /**
   * Sends one request now. `headers` is a flat [name, value, ...] list; `tag` comes back in the
   * completion. The caller keeps within `free` (a request beyond the cap throws: that would be a
   * pacing bug, not a load the API should see).
   */
  send(origin: number, method: 'GET' | 'POST', path: string, headers: string[], body: string | null, tag: number): void {
    if (this.unanswered >= this.allowed) throw new Error(`engine: ${this.unanswered} requests in flight, the concurrency is ${this.allowed} (cap ${this.options.maxInFlight})`);
    const pool = this.pools[origin];
    if (!pool) throw new Error(`engine: no origin ${origin} (have ${this.pools.length})`);
    if (++this.unanswered > this.peak) this.peak = this.unanswered;
    if (!this.sampler) {
      this.lastTrimMs = performance.now();
      this.sample();
      this.sampler = setInterval(() => this.sample(), LOOP_SAMPLE_MS).unref();
    }
    const client = pool.take();
    client.dispatch({ path, method, headers, body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs }, new Exchange(this, pool, client, tag, performance.now()));
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
    clearInterval(this.sampler);
    await Promise.all(this.pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}
