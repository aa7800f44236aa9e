import type { Server } from 'node:http';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { arrivalsBetween, type Arrival } from '../traffic/arrivals.js';
import { activeDevicesAt, buildTrafficPlan, type TrafficPlan } from '../traffic/plan.js';
import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';
import { loginsBetween } from './logins.js';
import { DRIVER_ENDPOINTS, DriverMetrics, LATE_AFTER_S, serveMetrics, type DriverEndpoint } from './metrics.js';
import { VegetaCsvReader, type VegetaResult } from './results-csv.js';
import { TargetLines } from './targets.js';
import { startEngine, vegetaBinary, type Engine } from './vegeta.js';

/*
 * The local load driver: runs a traffic plan's arrivals (the open model) against the API on this
 * machine, with vegeta as the HTTP engine and this process as the pacer.
 *
 * Pacing. Every `tickMs` the driver takes all arrivals that are due (measurements, commands and
 * logins, merged in time order) and writes their targets to `vegeta attack -rate=0`, whose workers
 * send each one as soon as they read it. The offered rate is therefore the schedule's, whatever
 * the response times, until the engine's concurrency cap (`maxInFlight`, vegeta -max-workers) is
 * reached. The driver never queues targets inside vegeta: it writes a target only while fewer than
 * maxInFlight requests are unanswered (so a worker is free for it), and when the pipe reports
 * backpressure it waits for 'drain'. An arrival that cannot be written on time waits in the
 * schedule, and the waiting is measured, never hidden:
 *   - sent more than 50 ms after its time: counted late;
 *   - more than `maxLagS` (1 s) behind: dropped, not sent, counted (k6's dropped_iterations).
 * So a generator that cannot keep up shows up as late/dropped and schedule lag, not as a slower
 * API. An arrival counts as offered when it falls due; offered = sent + dropped + the arrivals
 * still waiting (none once the run is over).
 *
 * Latency. vegeta's worker takes its timestamp before it waits for the next target on stdin, so
 * its latency includes idle time. The driver keeps the time it wrote each target (keyed by the
 * URL fragment #<slot>, see targets.ts) and takes latency = min(vegeta latency, response end - write
 * time): the request starts at the later of the two, and ends when vegeta says.
 *
 * Devices and tokens. Assumption (local mode's job, not the driver's): before the run the API's
 * database holds the fleet's devices with deterministic ids, device index i -> id deviceId(i)
 * (default i + 1) and serial deviceSerial(experiment, i), and the API's TOKEN_SECRET is
 * `tokenSecret`. The driver then signs each device's token itself (cached in a bounded LRU, never
 * a table of all devices). The login flow is still exercised: each device logs in once when it
 * joins the fleet (logins.ts); its response is checked and counted, its token not used.
 *
 * Replicas: requests are spread over baseUrls by device (device % n), so a device stays on one.
 */

export type { DriverEndpoint } from './metrics.js';

/** Phases [from, to) of the plan to run (like traffic/schedule.ts); the default is the whole plan. */
export interface PhaseRange {
  from: number;
  to: number;
}

export interface DriverOptions {
  experiment: LoadExperiment;
  /** The plan to run; default buildTrafficPlan(experiment). */
  plan?: TrafficPlan;
  /** API origins, e.g. ["http://127.0.0.1:3000"]; several for target.replicas. */
  baseUrls: readonly string[];
  /** The API's TOKEN_SECRET, to sign device tokens. */
  tokenSecret: string;
  /** Port for GET /metrics on 127.0.0.1; 0 picks a free port (see onReady / result.metricsUrl). */
  metricsPort: number;
  phaseRange?: PhaseRange;
  /** Called once a second while the run lasts. */
  onProgress?: (snapshot: ProgressSnapshot) => void;
  /** Called when the engine and the metrics server are up, just before the schedule starts. */
  onReady?: (info: { metricsUrl: string; enginePids: readonly number[]; startUnixS: number }) => void;
  /** Aborting stops the schedule; requests in flight are answered (up to a grace), then the result resolves with aborted: true. */
  signal?: AbortSignal;
  /** The API's device id of device index i (default i + 1: local mode registers the fleet in index order). */
  deviceId?: (index: number) => number;
  /** Arrivals further behind than this are dropped (default 1 s). */
  maxLagS?: number;
  /** Concurrency cap: requests in flight at most (vegeta -max-workers; default 1000). */
  maxInFlight?: number;
  /** Per-request timeout (default 10 s); a timeout is a response with code "error". */
  requestTimeoutS?: number;
  /** Pacing granularity (default 2 ms). */
  tickMs?: number;
  /** Over how long a step change's new devices log in (default: the shorter request interval). */
  loginSpreadS?: number;
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
  /** The vegeta binary (default: what scripts/setup.sh builds, or $LOADLAB_VEGETA). */
  vegetaPath?: string;
  /** Extra environment for vegeta (default GOGC=400: fewer GC cycles for a little memory). */
  engineEnv?: Record<string, string>;
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
  /** Totals since the start: non-2xx responses and transport errors, late, dropped. */
  errors: number;
  late: number;
  dropped: number;
  inFlight: number;
  /** How far behind the schedule the driver is now, in seconds. */
  lagS: number;
}

export interface EndpointTotals {
  offered: number;
  sent: number;
  dropped: number;
  late: number;
  /** By HTTP status code, "error" for no response. */
  responses: Record<string, number>;
  /** Non-2xx responses plus transport errors. */
  errors: number;
  latency: LatencySummary;
}

export interface PhaseTimeline {
  index: number;
  kind: 'ramp' | 'hold';
  stage?: number;
  step?: number;
  /** Unix seconds when the driver's schedule entered and left the phase (an abort ends the running phase; later ones stay undefined). */
  startUnixS?: number;
  endUnixS?: number;
}

export interface DriverResult {
  aborted: boolean;
  metricsUrl: string;
  /** Unix seconds: when the schedule started (plan time rangeStartS) and when the last response was read. */
  startUnixS: number;
  endUnixS: number;
  rangeStartS: number;
  rangeEndS: number;
  endpoints: Record<DriverEndpoint, EndpointTotals>;
  totals: Omit<EndpointTotals, 'latency'>;
  timeline: PhaseTimeline[];
  /** The largest schedule lag seen, in seconds. */
  maxLagS: number;
  /** CPU seconds: this process (whole run) and the vegeta processes. */
  cpuSeconds: { driver: number; engine: number };
}

const STREAMS = DRIVER_ENDPOINTS; // measurements, command, login
const START_DELAY_MS = 150; // lets vegeta start its workers before the first arrival

const wallNowMs = () => performance.timeOrigin + performance.now();

export async function runDriver(options: DriverOptions): Promise<DriverResult> {
  const { experiment } = options;
  const plan = options.plan ?? buildTrafficPlan(experiment);
  const range = options.phaseRange ?? { from: 0, to: plan.phases.length };
  if (!(Number.isInteger(range.from) && Number.isInteger(range.to) && range.from >= 0 && range.from < range.to && range.to <= plan.phases.length)) {
    throw new Error(`phaseRange {from: ${range.from}, to: ${range.to}}: must be whole phase indices with 0 <= from < to <= ${plan.phases.length} (the plan's phase count)`);
  }
  const maxLagS = options.maxLagS ?? 1;
  const maxInFlight = options.maxInFlight ?? 1000;
  const requestTimeoutS = options.requestTimeoutS ?? 10;
  const tickMs = options.tickMs ?? 2;
  if (!(maxInFlight >= 1 && Number.isInteger(maxInFlight))) throw new Error(`maxInFlight: must be a whole number >= 1, got ${maxInFlight}`);
  if (!(maxLagS > 0)) throw new Error(`maxLagS: must be > 0 seconds, got ${maxLagS}`);
  const rangeStartS = plan.phases[range.from]!.startS;
  const rangeEndS = plan.phases[range.to - 1]!.endS;
  const binary = vegetaBinary(options.vegetaPath);
  const cpuAtStart = process.cpuUsage();

  // Requests in flight, by slot: when the target was written, and for which endpoint. A slot is
  // taken when a target is written and freed when its result comes back; at most maxInFlight are
  // taken, so the slot number (the URL fragment) names one request in flight, however long it takes.
  const writtenAt = new Float64Array(maxInFlight);
  const slotEndpoint = new Uint8Array(maxInFlight);
  const slotBusy = new Uint8Array(maxInFlight);
  const freeSlots = new Int32Array(maxInFlight).map((_, i) => maxInFlight - 1 - i); // a stack
  let freeCount = maxInFlight;
  let inFlight = 0;
  const refillAt = Math.max(1, Math.min(64, maxInFlight >> 3));

  const counts = Object.fromEntries(
    STREAMS.map((endpoint) => [endpoint, { offered: 0, sent: 0, dropped: 0, late: 0, errors: 0, responses: {} as Record<string, number>, latency: new LatencyHistogram() }]),
  ) as Record<DriverEndpoint, { offered: number; sent: number; dropped: number; late: number; errors: number; responses: Record<string, number>; latency: LatencyHistogram }>;
  const windowLatency = new LatencyHistogram();
  const windowCounts = { offered: 0, sent: 0, responses: 0 };
  let maxLagSeen = 0;
  let lagNowS = 0;
  let unmatchedResults = 0;

  const started: { engine?: Engine } = {}; // the metrics are made before the engine starts
  const metrics = new DriverMetrics({ counts, engineCpuSeconds: () => started.engine?.cpuSeconds() ?? 0, inFlight: () => inFlight }, options.labels);
  metrics.maxInFlight.set(maxInFlight);

  const onResult = (result: VegetaResult) => {
    if (!result.url) return; // an idle worker's "no targets to attack" when the input ends
    const hash = result.url.lastIndexOf('#');
    const slot = Number(result.url.slice(hash + 1));
    if (hash < 0 || !(slot >= 0 && slot < maxInFlight) || slotBusy[slot] !== 1) {
      unmatchedResults++;
      return;
    }
    slotBusy[slot] = 0;
    freeSlots[freeCount++] = slot;
    inFlight--;
    const endpoint = STREAMS[slotEndpoint[slot]!]!;
    const endMs = result.timestampMs + result.latencyMs;
    const latencyMs = Math.max(0, Math.min(result.latencyMs, endMs - writtenAt[slot]!));
    const code = result.code === 0 ? 'error' : String(result.code);
    const c = counts[endpoint];
    c.responses[code] = (c.responses[code] ?? 0) + 1;
    if (!(result.code >= 200 && result.code < 300)) c.errors++;
    if (result.code !== 0) {
      // Transport errors (timeouts, refused) have no response time worth a histogram.
      metrics.duration[endpoint].observe(latencyMs / 1000);
      c.latency.record(latencyMs);
      windowLatency.record(latencyMs);
    }
    windowCounts.responses++;
    // Refill at once when enough slots are free; single slots wait for the next tick (cheaper).
    if (blockedOnInFlight && maxInFlight - inFlight >= refillAt) schedulePump();
  };
  const csv = new VegetaCsvReader(onResult);

  const targets = new TargetLines({
    experiment,
    baseUrls: options.baseUrls,
    tokenSecret: options.tokenSecret,
    deviceId: options.deviceId ?? ((index) => index + 1),
    tokenExpiresAtS: Math.floor(Date.now() / 1000) + Math.ceil(options.tokenTtlS ?? rangeEndS - rangeStartS + 86_400),
    tokenCacheSize: options.tokenCacheSize ?? 100_000,
  });

  await closeLingering(options.metricsPort);
  const { server, url: metricsUrl } = await serveMetrics(metrics.registry, options.metricsPort);
  let csvError: Error | undefined;
  const engine = startEngine({
    binary,
    maxWorkers: maxInFlight,
    timeoutS: requestTimeoutS,
    env: { GOGC: '400', ...options.engineEnv },
    onCsv: (text) => {
      if (csvError) return;
      try {
        csv.push(text);
      } catch (error) {
        csvError = error as Error;
        started.engine?.kill();
      }
    },
  });
  started.engine = engine;
  const killOnExit = () => engine.kill();
  process.once('exit', killOnExit);

  // The schedule: one time-ordered stream per endpoint, each with its next arrival peeked.
  const streams: Generator<Arrival, void, undefined>[] = [
    arrivalsBetween(plan, 'measurements', rangeStartS, rangeEndS),
    arrivalsBetween(plan, 'command', rangeStartS, rangeEndS),
    loginsBetween(plan, rangeStartS, rangeEndS, options.loginSpreadS),
  ];
  const heads: (Arrival | undefined)[] = streams.map((stream) => stream.next().value ?? undefined);
  const advance = (s: number) => {
    heads[s] = streams[s]!.next().value ?? undefined;
  };
  // Arrivals that are due and not yet sent: at most maxLagS worth of the schedule (older ones are dropped).
  const due = new DueQueue();

  let startMs = 0;
  let stopping = false;
  let paused = false; // waiting for 'drain'
  let blockedOnInFlight = false;
  let pumpScheduled = false;
  let inputEnded = false;
  let aborted = false;
  const timeline: PhaseTimeline[] = plan.phases.slice(range.from, range.to).map((phase) => ({
    index: phase.index,
    kind: phase.kind,
    ...(phase.stage !== undefined ? { stage: phase.stage } : {}),
    ...(phase.step !== undefined ? { step: phase.step } : {}),
  }));
  let phaseCursor = 0; // index into timeline of the phase the schedule is in (or will enter)

  const planTimeAt = (nowMs: number) => rangeStartS + (nowMs - startMs) / 1000;
  const followPhases = (planTimeS: number, nowMs: number) => {
    while (phaseCursor < timeline.length) {
      const phase = plan.phases[timeline[phaseCursor]!.index]!;
      if (timeline[phaseCursor]!.startUnixS === undefined && planTimeS >= phase.startS) timeline[phaseCursor]!.startUnixS = nowMs / 1000;
      if (planTimeS < phase.endS) break;
      timeline[phaseCursor]!.endUnixS = nowMs / 1000;
      phaseCursor++;
    }
    metrics.phase.set(phaseCursor < timeline.length ? timeline[phaseCursor]!.index : -1);
    metrics.fleet.set(activeDevicesAt(plan, Math.min(planTimeS, rangeEndS - 1e-9)));
  };

  let finishInput: () => void = () => undefined;
  const inputDone = new Promise<void>((resolve) => (finishInput = resolve));

  const pump = () => {
    pumpScheduled = false;
    if (stopping || inputEnded) return;
    const nowMs = wallNowMs();
    const planTimeS = planTimeAt(nowMs);
    followPhases(planTimeS, nowMs);
    // 1. Everything the schedule has made due joins the queue (in time order): that is "offered".
    for (;;) {
      let s = -1;
      for (let i = 0; i < 3; i++) {
        const head = heads[i];
        if (head && head.timeS <= planTimeS && (s < 0 || head.timeS < heads[s]!.timeS)) s = i;
      }
      if (s < 0) break;
      const arrival = heads[s]!;
      due.push(arrival.timeS, arrival.device, s);
      counts[STREAMS[s]!].offered++;
      windowCounts.offered++;
      advance(s);
    }
    // 2. What waited longer than maxLag is dropped.
    while (due.length > 0 && planTimeS - due.timeAt(0) > maxLagS) {
      counts[STREAMS[due.endpointAt(0)]!].dropped++;
      due.shift();
    }
    // 3. Send from the queue while a request slot is free and the pipe takes more.
    let batch = '';
    blockedOnInFlight = false;
    while (due.length > 0 && !paused) {
      if (inFlight >= maxInFlight) {
        blockedOnInFlight = true;
        break;
      }
      const timeS = due.timeAt(0);
      const stream = due.endpointAt(0);
      const device = due.deviceAt(0);
      due.shift();
      const endpoint = STREAMS[stream]!;
      const lagS = planTimeS - timeS;
      const slot = freeSlots[--freeCount]!;
      slotBusy[slot] = 1;
      writtenAt[slot] = nowMs;
      slotEndpoint[slot] = stream;
      inFlight++;
      const c = counts[endpoint];
      c.sent++;
      windowCounts.sent++;
      if (lagS > LATE_AFTER_S) c.late++;
      if (lagS > maxLagSeen) maxLagSeen = lagS;
      batch += targets.line(endpoint, slot, device, startMs + (timeS - rangeStartS) * 1000);
      if (batch.length >= 256 * 1024) {
        if (!engine.write(batch)) pauseForDrain();
        batch = '';
      }
    }
    if (batch.length > 0 && !engine.write(batch)) pauseForDrain();
    // Lag now: how late the oldest arrival still waiting is (0 when everything due was sent).
    lagNowS = due.length > 0 ? planTimeS - due.timeAt(0) : 0;
    if (lagNowS > maxLagSeen) maxLagSeen = lagNowS;
    metrics.scheduleLag.set(lagNowS);
    if (planTimeS >= rangeEndS && due.length === 0 && heads.every((head) => head === undefined)) {
      inputEnded = true;
      followPhases(Math.max(planTimeS, rangeEndS), nowMs);
      engine.endInput();
      finishInput();
    }
  };
  const pauseForDrain = () => {
    if (paused) return;
    paused = true;
    engine.onDrain(() => {
      paused = false;
      schedulePump();
    });
  };
  const schedulePump = () => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(pump);
  };

  // Progress, once a second.
  let lastProgressMs = 0;
  const progress = () => {
    const nowMs = wallNowMs();
    const seconds = Math.max(1e-3, (nowMs - lastProgressMs) / 1000);
    lastProgressMs = nowMs;
    const totals = sumTotals();
    const planTimeS = planTimeAt(nowMs);
    const snapshot: ProgressSnapshot = {
      elapsedS: (nowMs - startMs) / 1000,
      phase: phaseCursor < timeline.length ? timeline[phaseCursor]!.index : -1,
      fleet: planTimeS < rangeEndS ? activeDevicesAt(plan, planTimeS) : 0,
      offeredRps: windowCounts.offered / seconds,
      sentRps: windowCounts.sent / seconds,
      achievedRps: windowCounts.responses / seconds,
      p95Ms: windowLatency.quantile(0.95),
      p99Ms: windowLatency.quantile(0.99),
      errors: totals.errors,
      late: totals.late,
      dropped: totals.dropped,
      inFlight,
      lagS: lagNowS,
    };
    windowCounts.offered = windowCounts.sent = windowCounts.responses = 0;
    windowLatency.reset();
    engine?.cpuSeconds(); // keeps the last reading before vegeta exits
    try {
      options.onProgress?.(snapshot);
    } catch {
      // A caller's progress callback must not stop the run.
    }
  };
  const sumTotals = () => {
    const totals = { offered: 0, sent: 0, dropped: 0, late: 0, errors: 0, responses: {} as Record<string, number> };
    for (const endpoint of STREAMS) {
      const c = counts[endpoint];
      totals.offered += c.offered;
      totals.sent += c.sent;
      totals.dropped += c.dropped;
      totals.late += c.late;
      totals.errors += c.errors;
      for (const [code, n] of Object.entries(c.responses)) totals.responses[code] = (totals.responses[code] ?? 0) + n;
    }
    return totals;
  };

  let ticker: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    if (inputEnded) return;
    aborted = true;
    inputEnded = true;
    // The phase running now ends here; later phases never started.
    const current = timeline[phaseCursor];
    if (current?.startUnixS !== undefined) current.endUnixS = wallNowMs() / 1000;
    engine.endInput();
    finishInput();
  };

  const startUnixS = (() => {
    startMs = wallNowMs() + START_DELAY_MS;
    lastProgressMs = startMs;
    return startMs / 1000;
  })();
  try {
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    options.onReady?.({ metricsUrl, enginePids: engine.pids, startUnixS });
    // The first pump runs at the schedule's start; then every tickMs (setTimeout, not setInterval: a
    // slow pump must not queue up more pumps).
    const tick = () => {
      progressTimer ??= setInterval(progress, 1000);
      pump();
      if (!inputEnded && !stopping) ticker = setTimeout(tick, tickMs);
    };
    ticker = setTimeout(tick, START_DELAY_MS);

    // Wait for the end of the schedule (or an abort), or for the engine to fail first.
    await Promise.race([inputDone, engine.done]);
    if (!inputEnded) throw new Error(`vegeta stopped before the schedule ended${csvError ? `: ${csvError.message}` : ''}`);
    // Requests in flight get their timeout plus a grace (an abort: a shorter grace) to be answered.
    const graceMs = aborted ? Math.min(requestTimeoutS * 1000, 5000) + 1000 : requestTimeoutS * 1000 + 5000;
    let timer: NodeJS.Timeout | undefined;
    const outOfTime = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
    const settled = await Promise.race([engine.done.then(() => 'done' as const), outOfTime]);
    clearTimeout(timer);
    if (settled === 'timeout') {
      engine.kill();
      await engine.done.catch(() => undefined);
    }
    if (csvError) throw csvError;
    if (csv.pending.trim()) throw new Error(`vegeta encode's output ended inside a record: ${JSON.stringify(csv.pending.slice(0, 200))}`);
  } catch (error) {
    stopping = true;
    engine.kill();
    await engine.done.catch(() => undefined);
    throw error;
  } finally {
    stopping = true;
    clearTimeout(ticker);
    clearInterval(progressTimer);
    options.signal?.removeEventListener('abort', onAbort);
    process.removeListener('exit', killOnExit);
    engine.kill();
    const linger = options.metricsLingerMs ?? 0;
    if (linger > 0) lingerOn(options.metricsPort, server, linger);
    else await closeServer(server);
  }
  progress();
  metrics.scheduleLag.set(0);
  metrics.fleet.set(0);
  metrics.phase.set(-1);

  const endpoints = Object.fromEntries(
    STREAMS.map((endpoint) => {
      const c = counts[endpoint];
      return [endpoint, { offered: c.offered, sent: c.sent, dropped: c.dropped, late: c.late, errors: c.errors, responses: c.responses, latency: c.latency.summary() }];
    }),
  ) as Record<DriverEndpoint, EndpointTotals>;
  const cpu = process.cpuUsage(cpuAtStart);
  if (unmatchedResults > 0) process.emitWarning(`loadlab driver: ${unmatchedResults} vegeta results matched no request sent`);
  return {
    aborted,
    metricsUrl,
    startUnixS,
    endUnixS: wallNowMs() / 1000,
    rangeStartS,
    rangeEndS,
    endpoints,
    totals: sumTotals(),
    timeline,
    maxLagS: maxLagSeen,
    cpuSeconds: { driver: (cpu.user + cpu.system) / 1e6, engine: engine.cpuSeconds() },
  };
}

/** A FIFO of due arrivals in three typed arrays (time, device, stream), growing by doubling. */
class DueQueue {
  private times = new Float64Array(1024);
  private devices = new Int32Array(1024);
  private streams = new Uint8Array(1024);
  private head = 0;
  length = 0;

  push(timeS: number, device: number, stream: number): void {
    if (this.length === this.times.length) this.grow();
    const index = (this.head + this.length) & (this.times.length - 1);
    this.times[index] = timeS;
    this.devices[index] = device;
    this.streams[index] = stream;
    this.length++;
  }

  shift(): void {
    this.head = (this.head + 1) & (this.times.length - 1);
    this.length--;
  }

  timeAt(offset: number): number {
    return this.times[(this.head + offset) & (this.times.length - 1)]!;
  }

  deviceAt(offset: number): number {
    return this.devices[(this.head + offset) & (this.times.length - 1)]!;
  }

  endpointAt(offset: number): number {
    return this.streams[(this.head + offset) & (this.times.length - 1)]!;
  }

  private grow(): void {
    const size = this.times.length;
    const times = new Float64Array(size * 2);
    const devices = new Int32Array(size * 2);
    const streams = new Uint8Array(size * 2);
    for (let i = 0; i < this.length; i++) {
      const from = (this.head + i) & (size - 1);
      times[i] = this.times[from]!;
      devices[i] = this.devices[from]!;
      streams[i] = this.streams[from]!;
    }
    this.times = times;
    this.devices = devices;
    this.streams = streams;
    this.head = 0;
  }
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
