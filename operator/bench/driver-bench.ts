/**
 * What the local load driver sustains on this machine and what it costs, against two references
 * measured in the same run on the same endpoint:
 *
 *   npm run build && node operator/dist/bench/driver-bench.js [rates...] [--seconds=8] [--quick]
 *   (default rates 10000 20000 30000 60000 requests/s; Node 24: node_modules/.bin/node)
 *
 * The endpoint: node:http answering 204 to everything, in its own process. Per rate R, three steps
 * of the same length, each generator in its own process (so /proc gives its CPU and memory alone):
 *   driver  runDriver: a fleet of R/2 devices that each report and poll once a second (R requests/s:
 *           realistic measurement bodies, signed tokens, the schedule of the traffic model, pacing,
 *           counters, histograms, the metrics registry), without logins (the fleet logged in in an
 *           earlier phase that is not run);
 *   floor   the bare undici pacing loop: a 1 ms timer sends what is due at rate R through the same
 *           kind of Pool with the engine's starting concurrency (64 connections), half POSTs of one fixed measurement body with one bearer token, half GETs:
 *           what sending R requests/s costs in this process with nothing else (the engine floor);
 * and once per run:
 *   closed  autocannon (closed loop, 64 connections): what the endpoint itself can take.
 * Then the memory check: the driver at one rate with 1,000 and with 1,000,000 devices (the same
 * requests/s: longer intervals), peak RSS of the generator process compared.
 *
 * Printed per step, over the steady seconds (the first two are left out): offered and achieved requests/s
 * and their ratio, late and dropped, the p99 send lag (how late requests left against their
 * schedule: the largest of the steady seconds' p99s), generator cores and µs of generator CPU per
 * request, server and machine cores; then late, dropped and p99 lag over the whole run (its first
 * second is a cold process opening its first connections); then the driver's µs per request
 * against the floor's. A benchmark, not a test: it prints what it
 * measured and exits 0 whatever the figures; non-zero only when it could not run.
 *
 * Traffic goes to 127.0.0.1 only; every step is bounded in time (a few seconds).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { processTicks, snapshot, usageBetween, type CpuSnapshot } from '@loadlab/sandbox/procstat';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { runDriver, type ProgressSnapshot } from '../src/driver/index.js';
import { INITIAL_CONCURRENCY } from '../src/driver/http-engine.js';
import { formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { buildTrafficPlan, measurementPayload } from '../src/traffic/index.js';
import { mintDeviceToken } from '../src/contract/device-token.js';

const SECRET = 'bench-secret-0123456789abcdef';
const SELF = fileURLToPath(import.meta.url);
/** A generator process' first two seconds are left out of the figures: cold code (measured: its
 * first second sends 10,000/s with p99 lag 160 ms, its third with 6 ms) and its first connections. */
const STEADY_FROM_S = 2;

/** One line per second from a generator child: what it offered, sent and got back in that second. */
interface Second {
  offered: number;
  achieved: number;
  late: number;
  dropped: number;
  rssBytes: number;
  /** p99 of the second's send lag, ms (the driver only). */
  lagP99Ms?: number;
}

interface StepFigures {
  label: string;
  offered: number;
  achieved: number;
  late: number;
  dropped: number;
  /** Over the steady window: the largest per-second p99 send lag. */
  lagP99Ms: number;
  /** Over the whole run, the first second's start-up (cold code, first connections) included. */
  runLate: number;
  runDropped: number;
  runLagP99Ms: number;
  generatorCores: number;
  serverCores: number;
  machineCores: number;
  peakRssMb: number;
}

const role = process.argv[2];
if (role === 'serve') serve();
else if (role === 'drive') await driveChild(JSON.parse(process.argv[3]!) as DriveArgs);
else if (role === 'floor') await floorChild(JSON.parse(process.argv[3]!) as FloorArgs);
else if (role === 'closed') await closedChild(JSON.parse(process.argv[3]!) as { url: string; seconds: number });
else await main();

// ------------------------------------------------------------------------------------- the parent

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? (quick ? 5 : 10));
  const rates = args.filter((a) => /^\d+$/.test(a)).map(Number);
  if (rates.length === 0) rates.push(...(quick ? [10_000, 30_000] : [10_000, 20_000, 30_000, 60_000]));
  const server = await startServer();
  const rows: StepFigures[] = [];
  try {
    console.log(`driver benchmark: ${seconds} s per step (steady window: seconds ${STEADY_FROM_S}..${seconds - 1}), ${cpus().length} cores, endpoint pid ${server.child.pid}`);
    // A warm-up, not reported: the endpoint's JIT and first connections.
    await step('warm-up', 'drive', { url: server.url, rate: 5000, seconds: 2, devices: 2500 }, server);
    const closed = await step('autocannon closed loop', 'closed', { url: server.url, seconds }, server);
    console.log(`the endpoint takes ${fmt(closed.achieved, 0)} requests/s closed-loop (autocannon, 64 connections; endpoint ${closed.serverCores.toFixed(2)} cores)`);
    rows.push(closed);
    for (const rate of rates) {
      const driver = await step(`driver ${rate}/s`, 'drive', { url: server.url, rate, seconds, devices: Math.round(rate / 2) }, server);
      const floor = await step(`undici floor ${rate}/s`, 'floor', { url: server.url, rate, seconds }, server);
      rows.push(driver, floor);
      const perRequest = (r: StepFigures) => (r.generatorCores / Math.max(1, r.achieved)) * 1e6;
      console.log(
        `${rate}/s: driver achieved/offered ${(driver.achieved / driver.offered).toFixed(3)}, ${driver.generatorCores.toFixed(2)} cores, ${perRequest(driver).toFixed(1)} µs/request, p99 send lag ${driver.lagP99Ms.toFixed(1)} ms, dropped ${driver.dropped}; ` +
          `floor ${perRequest(floor).toFixed(1)} µs/request -> driver/floor ${(perRequest(driver) / perRequest(floor)).toFixed(2)}x`,
      );
    }
    // Memory flat in fleet size: the same requests/s from 1,000 and from 1,000,000 devices.
    const memoryRate = quick ? 10_000 : 20_000;
    const small = await step(`driver 1,000 devices @${memoryRate}/s`, 'drive', { url: server.url, rate: memoryRate, seconds, devices: 1000 }, server);
    const large = await step(`driver 1,000,000 devices @${memoryRate}/s`, 'drive', { url: server.url, rate: memoryRate, seconds, devices: 1_000_000 }, server);
    rows.push(small, large);
    console.log(`memory at ${memoryRate}/s: peak RSS ${small.peakRssMb.toFixed(0)} MB with 1,000 devices, ${large.peakRssMb.toFixed(0)} MB with 1,000,000: ratio ${(large.peakRssMb / small.peakRssMb).toFixed(2)}`);

    console.log('\nsummary (cores: CPU seconds per second over the steady window; µs/req: generator CPU per answered request)');
    console.log('step                                   offered/s  achieved/s  ratio    late  dropped  lag p99 ms  generator  µs/req  server  machine  peak RSS MB   whole run: late  dropped  lag p99 ms');
    for (const r of rows) {
      console.log(
        `${r.label.padEnd(38)} ${fmt(r.offered, 0, 9)} ${fmt(r.achieved, 0, 11)} ${fmt(r.offered > 0 ? r.achieved / r.offered : NaN, 3, 6)} ${fmt(r.late, 0, 7)} ${fmt(r.dropped, 0, 8)} ${fmt(r.lagP99Ms, 1, 11)} ${fmt(r.generatorCores, 2, 10)} ${fmt((r.generatorCores / Math.max(1, r.achieved)) * 1e6, 1, 7)} ${fmt(r.serverCores, 2, 7)} ${fmt(r.machineCores, 2, 8)} ${fmt(r.peakRssMb, 0, 12)} ${fmt(r.runLate, 0, 17)} ${fmt(r.runDropped, 0, 8)} ${fmt(r.runLagP99Ms, 1, 11)}`,
      );
    }
  } finally {
    server.child.kill('SIGTERM');
  }
}

type ChildRole = 'drive' | 'floor' | 'closed';

/** Runs one generator child; samples CPU over its steady window; reads its per-second lines. */
async function step(label: string, childRole: ChildRole, args: object, server: Server): Promise<StepFigures> {
  const child = spawn(process.execPath, [SELF, childRole, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const seconds: Second[] = [];
  let result: { lagP99Ms?: number; achieved?: number } = {};
  let startedAt = 0;
  let buffer = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const message = JSON.parse(line) as { started?: number; second?: Second; result?: typeof result };
        if (message.started) {
          startedAt = message.started;
          resolve();
        }
        if (message.second) seconds.push(message.second);
        if (message.result) result = message.result;
      }
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await Promise.race([ready, exited]);
  const duration = (args as { seconds: number }).seconds;
  // The steady window: from STEADY_FROM_S after the start to 1 s before the end.
  await sleepUntil(startedAt + STEADY_FROM_S * 1000);
  const a = sample(child, server.child);
  await sleepUntil(startedAt + (duration - 1) * 1000);
  const b = sample(child, server.child);
  const code = await exited;
  if (code !== 0) throw new Error(`${label}: the generator process exited with ${code}`);
  const usage = usageBetween(a, b).percent;
  const steady = seconds.slice(STEADY_FROM_S, Math.max(STEADY_FROM_S + 1, duration - 1));
  const mean = (pick: (s: Second) => number) => steady.reduce((sum, s) => sum + pick(s), 0) / Math.max(1, steady.length);
  const figures: StepFigures = {
    label,
    offered: childRole === 'closed' ? NaN : mean((s) => s.offered),
    achieved: result.achieved ?? mean((s) => s.achieved),
    late: steady.reduce((sum, s) => sum + s.late, 0),
    dropped: steady.reduce((sum, s) => sum + s.dropped, 0),
    lagP99Ms: steady.some((s) => s.lagP99Ms !== undefined) ? Math.max(...steady.map((s) => s.lagP99Ms ?? 0)) : NaN,
    runLate: seconds.reduce((sum, s) => sum + s.late, 0),
    runDropped: seconds.reduce((sum, s) => sum + s.dropped, 0),
    runLagP99Ms: result.lagP99Ms ?? NaN,
    generatorCores: usage.generator! / 100,
    serverCores: usage.server! / 100,
    machineCores: usage.machine! / 100,
    peakRssMb: Math.max(0, ...seconds.map((s) => s.rssBytes)) / 1e6,
  };
  if (label !== 'warm-up') console.log(`  ${label}: achieved ${fmt(figures.achieved, 0)}/s, generator ${figures.generatorCores.toFixed(2)} cores, endpoint ${figures.serverCores.toFixed(2)}, machine ${figures.machineCores.toFixed(2)}`);
  return figures;
}

function sample(generator: ChildProcess, server: ChildProcess): CpuSnapshot {
  return snapshot({ generator: () => processTicks(generator.pid!), server: () => processTicks(server.pid!) });
}

// ------------------------------------------------------------------------------------- children

interface DriveArgs {
  url: string;
  rate: number;
  seconds: number;
  devices: number;
}

/** The driver as local mode runs it, on a fleet of `devices` that together send `rate` requests/s. */
async function driveChild(args: DriveArgs): Promise<void> {
  const experiment = experimentAt(args);
  const plan = buildTrafficPlan(experiment);
  let totals = { late: 0, dropped: 0 };
  const result = await runDriver({
    experiment,
    plan,
    // Phase 1 only: the fleet logged in during phase 0, which is not run, so no logins here.
    phaseRange: { from: 1, to: 2 },
    baseUrls: [args.url],
    tokenSecret: SECRET,
    metricsPort: 0,
    onReady: ({ startUnixS }) => emit({ started: startUnixS * 1000 }),
    onProgress: (snapshot: ProgressSnapshot) => {
      emit({ second: { offered: snapshot.offeredRps, achieved: snapshot.achievedRps, late: snapshot.late - totals.late, dropped: snapshot.dropped - totals.dropped, rssBytes: process.memoryUsage.rss(), lagP99Ms: Number.isNaN(snapshot.sendLagP99Ms) ? 0 : snapshot.sendLagP99Ms } });
      totals = { late: snapshot.late, dropped: snapshot.dropped };
    },
  });
  emit({ result: { lagP99Ms: result.sendLagP99Ms } });
}

function experimentAt(args: DriveArgs): LoadExperiment {
  // Each device reports and polls once per interval: devices / interval x 2 = rate.
  const intervalMs = Math.round(((args.devices * 2) / args.rate) * 1000);
  const interval = `${intervalMs}ms`;
  const manifest = {
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name: 'driver-bench' },
    spec: {
      fleet: { devices: args.devices, reportInterval: interval, pollInterval: interval, jitter: 0.1 },
      load: { stages: [{ devices: args.devices, duration: '1s', shape: 'hold' }, { devices: args.devices, duration: `${args.seconds}s`, shape: 'hold' }] },
      timeout: '10m',
    },
  };
  const parsed = parseExperiment(JSON.stringify(manifest), 'bench');
  if (!parsed.ok) throw new Error(formatErrors(parsed.errors));
  return parsed.experiment;
}

interface FloorArgs {
  url: string;
  rate: number;
  seconds: number;
}

/**
 * The engine floor: a 1 ms timer sends what is due at `rate` through an undici Pool, one fixed
 * measurement body and one bearer token, counting answers. No schedule, no devices, no metrics.
 */
async function floorChild(args: FloorArgs): Promise<void> {
  const origin = new URL(args.url).origin;
  const pool = new Pool(origin, { connections: INITIAL_CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  const experiment = experimentAt({ ...args, devices: 1000 });
  const body = JSON.stringify(measurementPayload(experiment, 1, Date.now()));
  const auth = `Bearer ${mintDeviceToken(SECRET, 2, Math.floor(Date.now() / 1000) + 3600)}`;
  const post = { path: '/v1/measurements', method: 'POST' as const, headers: ['authorization', auth, 'content-type', 'application/json'], body };
  const get = { path: '/v1/command', method: 'GET' as const, headers: ['authorization', auth] };
  let sent = 0;
  let answered = 0;
  let perSecond = { sent: 0, answered: 0 };
  const handler = {
    onRequestStart() {},
    onResponseStart() {},
    onResponseData() {},
    onResponseEnd() {
      answered++;
      perSecond.answered++;
    },
    onResponseError() {
      answered++;
    },
  };
  const startMs = performance.now() + 50;
  emit({ started: performance.timeOrigin + startMs });
  const endMs = startMs + args.seconds * 1000;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, endMs) - startMs) / 1000) * args.rate);
      while (sent < due) {
        pool.dispatch(sent % 2 === 0 ? post : get, handler);
        sent++;
        perSecond.sent++;
      }
      if (now >= endMs) resolve();
      else setTimeout(tick, 1);
    };
    setTimeout(tick, Math.max(0, startMs - performance.now()));
    const reporter = setInterval(() => {
      emit({ second: { offered: perSecond.sent, achieved: perSecond.answered, late: 0, dropped: 0, rssBytes: process.memoryUsage.rss() } });
      perSecond = { sent: 0, answered: 0 };
      if (performance.now() >= endMs) clearInterval(reporter);
    }, 1000);
  });
  const deadline = Date.now() + 5000;
  while (answered < sent && Date.now() < deadline) await sleep(10);
  await pool.close();
}

/** autocannon against the endpoint: its closed-loop maximum. */
async function closedChild(args: { url: string; seconds: number }): Promise<void> {
  emit({ started: Date.now() });
  const result = await autocannon({ url: `${args.url}/v1/command`, connections: 64, pipelining: 1, duration: args.seconds });
  emit({ result: { achieved: result.requests.average } });
}

function emit(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

// ------------------------------------------------------------------------------------- the endpoint

interface Server {
  url: string;
  child: ChildProcess;
}

function serve(): void {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.statusCode = 204;
      response.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
  process.on('SIGTERM', () => process.exit(0));
  // The benchmark holds our stdin open: when it goes away, however it ends, so do we.
  process.stdin.on('end', () => process.exit(0)).resume();
}

async function startServer(): Promise<Server> {
  const child = spawn(process.execPath, [SELF, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').once('data', (text: string) => {
      const match = /listening (\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
      else reject(new Error(`the endpoint said: ${text}`));
    });
    child.once('exit', (code) => reject(new Error(`the endpoint exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

// ------------------------------------------------------------------------------------- helpers

async function sleepUntil(ms: number): Promise<void> {
  const wait = ms - Date.now();
  if (wait > 0) await sleep(wait);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function fmt(value: number, digits: number, width = 0): string {
  const text = Number.isFinite(value) ? value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-';
  return text.padStart(width);
}
