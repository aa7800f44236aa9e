import type { Server } from 'node:http';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { loginArrivals, periodicArrivals } from '../traffic/arrivals.js';
import { resolvePhaseRange } from '../traffic/phases.js';
import { buildTrafficPlan, type TrafficPlan } from '../traffic/plan.js';
import { WHOLE_SCHEDULE, type RunnerSlice } from '../traffic/runner-slice.js';
import type { PhaseRange } from '../traffic/schedule.js';
import { DriverCounters, type EndpointTotals } from './counters.js';
import { HttpEngine } from './http-engine.js';
import { DriverMetrics, serveMetrics } from './metrics.js';
import { Pacer } from './pacer.js';
import { PhaseTracker, type PhaseTimeline } from './phase-tracker.js';
import { DRIVER_ENDPOINTS, DeviceRequests } from './requests.js';

/*
 * The load driver: runs a traffic plan's arrivals (the open model, the same schedule the k6 script
 * runs: traffic/arrivals.ts) against the API, sending every request itself (http-engine.ts). Local
 * mode runs it in its own process; the loadlab engine runs it in a Job's pods (`loadlab drive`),
 * each pod its slice of the schedule (traffic/runner-slice.ts) from one common start time.
 *
 *   schedule (traffic model) -> pacer (due queue, lag, drops) -> engine (undici pools, the cap)
 *                                                                   -> counters -> metrics, progress
 *
 * Every tickMs the driver takes all arrivals that are due (measurements, polls and logins, merged
 * in time order) and sends them while fewer than maxInFlight requests are unanswered; when the cap
 * is reached, the next ones wait in the pacer's queue (late, then dropped: pacer.ts) and go out as
 * soon as answers free room. So the offered rate is the schedule's whatever the response times,
 * until the generator itself cannot keep up, which shows as lag, late and dropped requests.
 *
 * Devices and tokens. Assumption (local mode's job, or the operator's, not the driver's): before
 * the run the API's database holds the fleet's devices with deterministic ids, device index i ->
 * id deviceId(i) (default i + 1), and the API's TOKEN_SECRET is `tokenSecret`. The driver then
 * signs each device's token itself (requests.ts). The login flow is still exercised: each device
 * logs in once when the fleet first grows past it; its response is checked and counted, its token
 * not used.
 */

export type { PhaseTimeline } from './phase-tracker.js';

export interface DriverOptions {
  experiment: LoadExperiment;
  /** The plan to run; default buildTrafficPlan(experiment). */
  plan?: TrafficPlan;
  /** API base URLs, e.g. ["http://127.0.0.1:3000"]; several for target.replicas (a device stays on one). */
  baseUrls: readonly string[];
  /** The API's TOKEN_SECRET, to sign device tokens. */
  tokenSecret: string;
  /** Port for GET /metrics; 0 picks a free port (see onReady / result.metricsUrl). */
  metricsPort: number;
  /** Where /metrics listens (default 127.0.0.1; a pod serves its Prometheus on 0.0.0.0). */
  metricsHost?: string;
  /** Phases [from, to) of the plan to run; the default is the whole plan. */
  phaseRange?: PhaseRange;
  /** This runner's share of the schedule when several share it (traffic/runner-slice.ts); default: all of it. */
  slice?: RunnerSlice;
  /**
   * When the range's schedule starts (unix ms), so runners that share a schedule stay in step on
   * their clocks. In the future: the driver waits for it. In the past: it joins the schedule where
   * it is now, and what fell due more than maxLagS ago is counted offered and dropped (the load
   * the experiment asked for and did not get). Default: now (plus a few ms to start up).
   */
  startAtUnixMs?: number;
  /** Called once a second while the run lasts. */
  onProgress?: (snapshot: ProgressSnapshot) => void;
  /** Called when the metrics server is up, just before the schedule starts. */
  onReady?: (info: { metricsUrl: string; startUnixS: number }) => void;
  /** Aborting stops the schedule; requests in flight are answered (up to a grace), then the result resolves with aborted: true. */
  signal?: AbortSignal;
  /** The API's device id of device index i (default i + 1: local mode registers the fleet in index order). */
  deviceId?: (index: number) => number;
  /** Arrivals further behind than this are dropped (default 1 s). */
  maxLagS?: number;
  /** Concurrency cap: requests in flight at most (k6's maxVUs; default 1000). */
  maxInFlight?: number;
  /** Per-request timeout (default 10 s); a timeout is a failure, counted with code "error". */
  requestTimeoutS?: number;
  /** Pacing granularity (default 1 ms). */
  tickMs?: number;
  /** Token lifetime (default: the run's duration + 1 day). */
  tokenTtlS?: number;
  /** Devices whose tokens stay cached (default 100,000). */
  tokenCacheSize?: number;
  /** Constant labels on every metric, e.g. {experiment: "smoke"}. */
  labels?: Record<string, string>;
  /**
   * Keep serving /metrics this long after the run, so a last scrape sees the final counts (default
   * 0). A later run on the same port closes the lingering server first, so runs can follow each other.
   */
  metricsLingerMs?: number;
}

export interface ProgressSnapshot {
  /** Seconds since the schedule started. */
  elapsedS: number;
  /** Plan phase running (-1 outside the range). */
  phase: number;
  fleet: number;
  /** Rates over the last second: the schedule's arrivals, requests sent, responses received. */
  offeredRps: number;
  sentRps: number;
  achievedRps: number;
  /** p95 and p99 latency of the responses received in the last second (NaN when none). */
  p95Ms: number;
  p99Ms: number;
  /** Totals since the start: non-2xx responses and failures, late, dropped. */
  errors: number;
  late: number;
  dropped: number;
  inFlight: number;
  /** How far behind the schedule the driver is now, in seconds. */
  lagS: number;
  /** 99th percentile of how late the last second's requests were sent, ms (NaN when none was sent). */
  sendLagP99Ms: number;
  /** Requests the engine allows in flight now (its concurrency, up to maxInFlight: http-engine.ts). */
  concurrency: number;
}

export type { EndpointTotals } from './counters.js';

export interface DriverResult {
  aborted: boolean;
  metricsUrl: string;
  /** Unix seconds: when the schedule started (plan time rangeStartS) and when the last response was read. */
  startUnixS: number;
  endUnixS: number;
  rangeStartS: number;
  rangeEndS: number;
  endpoints: Record<(typeof DRIVER_ENDPOINTS)[number], EndpointTotals>;
  totals: Omit<EndpointTotals, 'latency'>;
  timeline: PhaseTimeline[];
  /** The largest schedule lag seen, in seconds. */
  maxLagS: number;
  /** How late requests were sent after their scheduled time: 99th percentile, in ms. */
  sendLagP99Ms: number;
  /** CPU seconds of this process over the run: the whole generator (it sends the requests itself). */
  cpuSeconds: number;
}

/** Lets the first pump find the metrics server up and the pools' first connections under way. */
const START_DELAY_MS = 50;
/** After the schedule, in-flight requests get their timeout plus this to be answered. */
const END_GRACE_MS = 5000;

const wallNowMs = () => performance.timeOrigin + performance.now();

export async function runDriver(options: DriverOptions): Promise<DriverResult> {
  const { experiment } = options;
  const plan = options.plan ?? buildTrafficPlan(experiment);
  const range = resolvePhaseRange(plan, options.phaseRange);
  const maxInFlight = options.maxInFlight ?? 1000;
  const requestTimeoutS = options.requestTimeoutS ?? 10;
  const tickMs = options.tickMs ?? 1;
  const rangeStartS = plan.phases[range.from]!.startS;
  const rangeEndS = plan.phases[range.to - 1]!.endS;
  const cpuAtStart = process.cpuUsage();

  const requests = new DeviceRequests({
    experiment,
    baseUrls: options.baseUrls,
    tokenSecret: options.tokenSecret,
    deviceId: options.deviceId ?? ((index) => index + 1),
    tokenExpiresAtS: Math.floor(Date.now() / 1000) + Math.ceil(options.tokenTtlS ?? rangeEndS - rangeStartS + 86_400),
    tokenCacheSize: options.tokenCacheSize ?? 100_000,
  });
  const counters = new DriverCounters();
  // Refill at once when enough room is free; single free slots wait for the next tick (cheaper).
  const refillAt = () => Math.max(1, engine.concurrency >> 3);
  let blocked = false;
  const engine: HttpEngine = new HttpEngine({
    origins: requests.origins,
    maxInFlight,
    requestTimeoutS,
    onComplete: (tag, status, failure, latencyMs) => {
      const endpoint = DRIVER_ENDPOINTS[tag]!;
      counters.completed(endpoint, status, failure, latencyMs);
      if (!failure) metrics.duration[endpoint].observe(latencyMs / 1000);
      if (blocked && engine.free >= refillAt()) schedulePump();
    },
  });
  let lagNowS = 0;
  let running = false;
  const metrics = new DriverMetrics(
    {
      counts: counters.endpoints,
      inFlight: () => engine.inFlight,
      concurrency: () => engine.concurrency,
      scheduleLagS: () => (running ? lagNowS : 0),
      fleet: () => (running ? phases.fleetAt(planTimeAt(wallNowMs())) : 0),
      phase: () => (running ? phases.phase : -1),
    },
    options.labels,
  );
  metrics.maxInFlight.set(maxInFlight);
  const slice = options.slice ?? WHOLE_SCHEDULE;
  const streams = [periodicArrivals(plan, 'measurements', range, undefined, slice), periodicArrivals(plan, 'command', range, undefined, slice), loginArrivals(plan, range, slice)];
  const pacer = new Pacer(streams, options.maxLagS ?? 1, {
    offered: (stream) => counters.offered(DRIVER_ENDPOINTS[stream]!),
    dropped: (stream) => counters.dropped(DRIVER_ENDPOINTS[stream]!),
  });
  const phases = new PhaseTracker(plan, range);
  let startMs = 0;
  const planTimeAt = (nowMs: number) => rangeStartS + (nowMs - startMs) / 1000;
  const unixAt = (planS: number) => (startMs + (planS - rangeStartS) * 1000) / 1000;

  await closeLingering(options.metricsPort);
  const { server, url: metricsUrl } = await serveMetrics(metrics.registry, options.metricsPort, options.metricsHost);

  startMs = options.startAtUnixMs ?? wallNowMs() + START_DELAY_MS;
  running = true;
  let ended: 'schedule' | 'aborted' | undefined;
  let endSchedule: () => void = () => undefined;
  const scheduleDone = new Promise<void>((resolve) => (endSchedule = resolve));
  const finish = (why: 'schedule' | 'aborted') => {
    if (ended) return;
    ended = why;
    endSchedule();
  };

  let pumpScheduled = false;
  const pump = () => {
    pumpScheduled = false;
    if (ended) return;
    const nowMs = wallNowMs();
    const planTimeS = planTimeAt(nowMs);
    phases.follow(planTimeS, unixAt);
    pacer.advance(planTimeS);
    const due = pacer.due;
    blocked = false;
    while (due.length > 0) {
      if (engine.free <= 0) {
        engine.noRoom(due.length);
        if (engine.free > 0) continue;
        blocked = true;
        break;
      }
      const stream = due.stream;
      const device = due.device;
      const timeS = due.time;
      due.shift();
      const endpoint = DRIVER_ENDPOINTS[stream]!;
      const request = requests.build(endpoint, device, startMs + (timeS - rangeStartS) * 1000);
      counters.sent(endpoint, planTimeS - timeS);
      engine.send(request.origin, request.method, request.path, request.headers, request.body, stream);
    }
    lagNowS = pacer.lagS(planTimeS);
    if (lagNowS > counters.maxLagS) counters.maxLagS = lagNowS;
    if (planTimeS >= rangeEndS && pacer.exhausted) {
      phases.follow(Math.max(planTimeS, rangeEndS), unixAt);
      finish('schedule');
    }
  };
  const schedulePump = () => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(pump);
  };

  let lastProgressMs = startMs;
  const progress = () => {
    const nowMs = wallNowMs();
    const seconds = Math.max(1e-3, (nowMs - lastProgressMs) / 1000);
    lastProgressMs = nowMs;
    const totals = counters.totals();
    const { window } = counters;
    const snapshot: ProgressSnapshot = {
      elapsedS: (nowMs - startMs) / 1000,
      phase: phases.phase,
      fleet: phases.fleetAt(planTimeAt(nowMs)),
      offeredRps: window.offered / seconds,
      sentRps: window.sent / seconds,
      achievedRps: window.responses / seconds,
      p95Ms: window.latency.quantile(0.95),
      p99Ms: window.latency.quantile(0.99),
      errors: totals.errors,
      late: totals.late,
      dropped: totals.dropped,
      inFlight: engine.inFlight,
      lagS: lagNowS,
      sendLagP99Ms: window.sent > 0 ? window.sendLag.quantile(0.99) : NaN,
      concurrency: engine.concurrency,
    };
    counters.resetWindow();
    try {
      options.onProgress?.(snapshot);
    } catch {
      // A caller's progress callback must not stop the run.
    }
  };

  const onAbort = () => {
    if (ended) return;
    phases.cut(wallNowMs() / 1000);
    finish('aborted');
  };
  let ticker: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  try {
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    options.onReady?.({ metricsUrl, startUnixS: startMs / 1000 });
    // setTimeout, not setInterval: a slow pump must not queue up more pumps.
    const tick = () => {
      progressTimer ??= setInterval(progress, 1000);
      pump();
      if (ended) return;
      // Nothing waiting: sleep until the next arrival (up to 100 ms, so the phase timeline keeps
      // its resolution), instead of waking every tick of a quiet schedule for nothing.
      const untilNextMs = pacer.due.length > 0 ? 0 : (pacer.nextTimeS - planTimeAt(wallNowMs())) * 1000;
      ticker = setTimeout(tick, Math.min(100, Math.max(tickMs, untilNextMs)));
    };
    if (!ended) ticker = setTimeout(tick, Math.max(0, startMs - wallNowMs()));
    await scheduleDone;
    clearTimeout(ticker);
    // Requests in flight get their timeout plus a grace (an abort: a shorter one) to be answered;
    // what is still unanswered then is cut off and counted as a failure.
    const graceMs = ended === 'aborted' ? Math.min(requestTimeoutS * 1000, 5000) + 1000 : requestTimeoutS * 1000 + END_GRACE_MS;
    await engine.settled(graceMs);
  } finally {
    clearTimeout(ticker);
    clearInterval(progressTimer);
    options.signal?.removeEventListener('abort', onAbort);
    await engine.close();
    const linger = options.metricsLingerMs ?? 0;
    if (linger > 0) lingerOn(options.metricsPort, server, linger);
    else await closeServer(server);
  }
  running = false;
  progress();
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    aborted: ended === 'aborted',
    metricsUrl,
    startUnixS: startMs / 1000,
    endUnixS: wallNowMs() / 1000,
    rangeStartS,
    rangeEndS,
    endpoints: counters.endpointTotals(),
    totals: counters.totals(),
    timeline: phases.timeline,
    maxLagS: counters.maxLagS,
    sendLagP99Ms: counters.sendLag.count > 0 ? counters.sendLag.quantile(0.99) : 0,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** Metrics servers kept up after their run, by port: the next run on that port replaces them. */
const lingering = new Map<number, Server>();

function lingerOn(port: number, server: Server, ms: number): void {
  if (port !== 0) lingering.set(port, server);
  setTimeout(() => {
    if (lingering.get(port) === server) lingering.delete(port);
    void closeServer(server);
  }, ms).unref();
}

async function closeLingering(port: number): Promise<void> {
  const server = lingering.get(port);
  if (!server) return;
  lingering.delete(port);
  await closeServer(server);
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
