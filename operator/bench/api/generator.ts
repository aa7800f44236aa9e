import { performance } from 'node:perf_hooks';
import { DeviceRequests, DriverCounters, HttpEngine, LatencyHistogram, Pacer, type EndpointTotals } from '../../src/driver/index.js';
import { arrivalCounts, periodicArrivals, type Endpoint } from '../../src/traffic/index.js';
import { benchExperiment, MODE_ENDPOINTS, stepPlan, type LoadMode } from './step-plan.js';

/*
 * The load generator of the benchmark: the local driver's units (driver/: undici pools with the
 * concurrency cap, device requests with signed tokens, the pacer that counts late and dropped
 * arrivals, the counters) running a step's plan (step-plan.ts), in a process of its own, so /proc
 * gives the generator's CPU apart from the server's, PostgreSQL's and the benchmark's.
 *
 * Why not runDriver itself: it reports totals over its whole phase range, and a step needs the
 * figures of its measured window alone while the traffic goes on across the warm-up's end (a
 * second runDriver call would stop the traffic, drain the server's backlog and reconnect in
 * between). So the loop below is runDriver's pump on the same units, with a second set of counters
 * for the requests scheduled in the measured window, and no metrics server or progress view.
 *
 * Device tokens are minted once per process for the whole fleet before the first step (the
 * devices hold their tokens already; minting them during a step would bill the benchmark's setup
 * to the generator's CPU per request).
 */

/** The role argument main.ts recognises to run this process as the generator. */
export const GENERATOR_ROLE = 'generator';

export interface GeneratorInit {
  baseUrl: string;
  devices: number;
  tokenSecret: string;
}

export interface LoadStepRequest {
  mode: LoadMode;
  rate: number;
  warmupS: number;
  measureS: number;
  /** The engine's concurrency cap (k6's maxVUs). */
  maxInFlight: number;
  requestTimeoutS: number;
}

/** A step's figures over its measured window (requests scheduled in it), unless said otherwise. */
export interface LoadFigures {
  seconds: number;
  /** Arrivals the plan schedules in the window. */
  offered: number;
  sent: number;
  /** 2xx responses. */
  ok: number;
  /** Non-2xx responses and requests without a response. */
  errors: number;
  /** Sent more than 50 ms after their scheduled time. */
  late: number;
  /** Not sent: more than MAX_LAG_S behind their time. */
  dropped: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  endpoints: Partial<Record<Endpoint, EndpointTotals>>;
  /** 2xx responses over the whole step, warm-up included (to compare with what was stored). */
  acknowledged: Partial<Record<Endpoint, number>>;
  /** The most requests in flight at once, and whether arrivals had to wait for the cap. */
  peakInFlight: number;
  capReached: boolean;
  sendLagP99Ms: number;
}

/** Messages between the benchmark and the generator process (IPC, structured clone: NaN survives). */
export type ToGenerator = { type: 'init'; init: GeneratorInit } | { type: 'step'; step: LoadStepRequest };
export type FromGenerator =
  | { type: 'ready'; mintSeconds: number }
  | { type: 'started'; startUnixMs: number }
  | { type: 'result'; figures: LoadFigures }
  | { type: 'error'; message: string };

/** Arrivals further behind than this are dropped (the driver's default). */
const MAX_LAG_S = 1;
/** Lets the first pump find the pools' first connections under way. */
const START_DELAY_MS = 50;
const TICK_MS = 1;

const wallNowMs = () => performance.timeOrigin + performance.now();

/** The child's side: answers the benchmark's messages until the IPC channel closes. */
export function serveGenerator(): void {
  const reply = (message: FromGenerator) => process.send!(message);
  let fleet: { requests: DeviceRequests; devices: number } | undefined;
  // Whatever ends the benchmark (an error, a signal, a kill), this process must not outlive it.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ToGenerator) => {
    void (async () => {
      if (message.type === 'init') {
        const started = performance.now();
        fleet = { requests: fleetRequests(message.init), devices: message.init.devices };
        reply({ type: 'ready', mintSeconds: (performance.now() - started) / 1000 });
      } else {
        if (!fleet) throw new Error('generator: a step before init');
        const figures = await runLoadStep(fleet.requests, fleet.devices, message.step, (startUnixMs) => reply({ type: 'started', startUnixMs }));
        reply({ type: 'result', figures });
      }
    })().catch((error: unknown) => reply({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }));
  });
}

/** The fleet's request builder with every device's token minted (device index i is API id i + 1). */
function fleetRequests(init: GeneratorInit): DeviceRequests {
  const requests = new DeviceRequests({
    experiment: benchExperiment(init.devices),
    baseUrls: [init.baseUrl],
    tokenSecret: init.tokenSecret,
    deviceId: (index) => index + 1,
    tokenExpiresAtS: Math.floor(Date.now() / 1000) + 86_400,
    tokenCacheSize: init.devices,
  });
  for (let device = 0; device < init.devices; device++) requests.authorization(device);
  return requests;
}

/** Runs one step's plan for a fleet of `devices` against the server; `onStarted` gets the wall time its schedule starts at. */
async function runLoadStep(requests: DeviceRequests, devices: number, step: LoadStepRequest, onStarted: (startUnixMs: number) => void): Promise<LoadFigures> {
  const plan = stepPlan(devices, step.mode, step.rate, step.warmupS, step.measureS);
  const endpoints = MODE_ENDPOINTS[step.mode];
  const measureFromS = plan.phases[1]!.startS;
  const endS = plan.durationS;
  // [warm-up, measured window]: a request counts in the window its scheduled time falls in.
  const windows = [new DriverCounters(), new DriverCounters()] as const;
  const windowOf = (planTimeS: number): 0 | 1 => (planTimeS >= measureFromS ? 1 : 0);
  const latency = new LatencyHistogram();
  let peakInFlight = 0;
  let capReached = false;
  let blocked = false;
  let pumpWindow: 0 | 1 = 0;

  const engine: HttpEngine = new HttpEngine({
    origins: requests.origins,
    maxInFlight: step.maxInFlight,
    requestTimeoutS: step.requestTimeoutS,
    // The tag carries the stream and the window: stream + window * streams.
    onComplete: (tag, status, failure, latencyMs) => {
      const window = tag >= endpoints.length ? 1 : 0;
      windows[window].completed(endpoints[tag % endpoints.length]!, status, failure, latencyMs);
      if (window === 1 && !failure) latency.record(latencyMs);
      if (blocked) schedulePump();
    },
  });
  // A drop counts in the window the schedule is in when it happens. What the window offered is the
  // plan's count of its arrivals (below): the pacer reports an arrival when a pump gets to it, and
  // a pump delayed across the warm-up's end would move warm-up arrivals into the window.
  const pacer = new Pacer(
    endpoints.map((endpoint) => periodicArrivals(plan, endpoint)),
    MAX_LAG_S,
    {
      offered: () => undefined,
      dropped: (stream) => windows[pumpWindow].dropped(endpoints[stream]!),
    },
  );

  const startMs = wallNowMs() + START_DELAY_MS;
  let finished = false;
  let endSchedule: () => void = () => undefined;
  const scheduleDone = new Promise<void>((resolve) => (endSchedule = resolve));
  let pumpScheduled = false;
  const pump = () => {
    pumpScheduled = false;
    if (finished) return;
    const planTimeS = (wallNowMs() - startMs) / 1000;
    pumpWindow = windowOf(planTimeS);
    pacer.advance(planTimeS);
    const due = pacer.due;
    blocked = false;
    while (due.length > 0) {
      const window = windowOf(due.time);
      if (engine.free <= 0) {
        engine.noRoom(due.length);
        if (engine.free > 0) continue;
        blocked = true;
        // At maxInFlight: the cap. Below it the engine kept its concurrency because this process
        // was busy, which shows as the generator's lag instead.
        if (window === 1 && engine.concurrency >= step.maxInFlight) capReached = true;
        break;
      }
      const stream = due.stream;
      const device = due.device;
      const timeS = due.time;
      due.shift();
      const endpoint = endpoints[stream]!;
      const request = requests.build(endpoint, device, startMs + timeS * 1000);
      windows[window].sent(endpoint, planTimeS - timeS);
      engine.send(request.origin, request.method, request.path, request.headers, request.body, stream + window * endpoints.length);
      if (window === 1 && engine.inFlight > peakInFlight) peakInFlight = engine.inFlight;
    }
    if (planTimeS >= endS && pacer.exhausted) {
      finished = true;
      endSchedule();
    }
  };
  const schedulePump = () => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(pump);
  };

  let ticker: NodeJS.Timeout | undefined;
  try {
    onStarted(startMs);
    // setTimeout, not setInterval: a slow pump must not queue up more pumps.
    const tick = () => {
      pump();
      if (!finished) ticker = setTimeout(tick, TICK_MS);
    };
    ticker = setTimeout(tick, Math.max(0, startMs - wallNowMs()));
    await scheduleDone;
    // What is still unanswered after the timeout and a second is cut off: a failure ("other").
    await engine.settled(step.requestTimeoutS * 1000 + 1000);
  } finally {
    clearTimeout(ticker);
    await engine.close();
  }

  const measured = windows[1];
  const totals = measured.totals();
  const planned = arrivalCounts(plan, { from: 1, to: 2 });
  const okOf = (responses: Record<string, number>) => Object.entries(responses).reduce((sum, [code, n]) => sum + (code.startsWith('2') ? n : 0), 0);
  const byEndpoint = measured.endpointTotals();
  const warmUp = windows[0].endpointTotals();
  return {
    seconds: step.measureS,
    offered: endpoints.reduce((sum, endpoint) => sum + planned[endpoint], 0),
    sent: totals.sent,
    ok: okOf(totals.responses),
    errors: totals.errors,
    late: totals.late,
    dropped: totals.dropped,
    latencyMs: { p50: latency.quantile(0.5), p90: latency.quantile(0.9), p99: latency.quantile(0.99), max: latency.summary().maxMs },
    endpoints: Object.fromEntries(endpoints.map((endpoint) => [endpoint, byEndpoint[endpoint]])),
    acknowledged: Object.fromEntries(endpoints.map((endpoint) => [endpoint, okOf(byEndpoint[endpoint].responses) + okOf(warmUp[endpoint].responses)])),
    peakInFlight,
    capReached,
    sendLagP99Ms: measured.sendLag.count > 0 ? measured.sendLag.quantile(0.99) : 0,
  };
}
