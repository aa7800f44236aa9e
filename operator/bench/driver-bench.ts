/**
 * What the local load driver sustains on this machine, and what it costs.
 *
 *   npx tsc -b api operator && node operator/dist/bench/driver-bench.js [rates...] [--seconds=6] [--max-in-flight=1000]
 *   (default rates 5000 10000 20000 30000 requests/s; Node 24: node_modules/.bin/node)
 *
 * Against a trivial endpoint (node:http answering 204 to everything, in its own process), for each
 * rate R it runs two steps of the same length:
 *   1. the driver: a fleet of R/2 devices that each report and poll once a second (R requests/s,
 *      realistic measurement bodies and signed tokens), plus the fleet's logins spread over the step;
 *   2. the baseline: vegeta alone, pacing itself (-rate=R) over a file of the same target lines
 *      written before the step, its results to /dev/null: the engine's own cost, with no pacer
 *      and no result parsing.
 * It prints, per step, over the steady seconds (the first, with the start-up, is left out):
 * offered and achieved requests/s and their ratio, late and dropped, the worst per-second p99, and
 * CPU in cores from /proc: the driver's process, its vegeta processes, their sum (the generator),
 * the trivial server, and the whole machine; then the generator's CPU against the baseline's.
 * The target: >= 20,000 requests/s on less than one core for the generator.
 *
 * Traffic goes to 127.0.0.1 only; every step is bounded in time (a few seconds) and count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpu, runDriver, TargetLines, vegetaBinary, type ProgressSnapshot } from '../src/driver/index.js';
import { formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { arrivalsBetween, buildTrafficPlan } from '../src/traffic/index.js';

const SECRET = 'bench-secret-0123456789abcdef';
/** The driver's concurrency cap (--max-in-flight=, default 1000, the driver's default); vegeta alone gets the same -max-workers. */
let maxInFlight = 1000;
/** Extra environment for vegeta in both steps, e.g. LOADLAB_BENCH_ENGINE_ENV="GOMAXPROCS=1 GOGC=800". */
const ENGINE_ENV = Object.fromEntries((process.env.LOADLAB_BENCH_ENGINE_ENV ?? '').split(/\s+/).filter(Boolean).map((pair) => pair.split('=') as [string, string]));

if (process.argv[2] === 'serve') {
  // The trivial endpoint: read the body, answer 204, nothing else (GET /__count: requests so far).
  let served = 0;
  const server = createServer((request, response) => {
    if (request.url === '/__count') {
      response.end(String(served));
      return;
    }
    served++;
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
} else {
  await main();
}

interface Sample {
  at: number;
  driver: number;
  engine: number;
  /** vegeta encode alone (the driver's second engine process); 0 for the baseline. */
  encode: number;
  server: number;
  machineBusy: number;
  machineTotal: number;
}

interface StepFigures {
  label: string;
  offered: number;
  achieved: number;
  late: number;
  dropped: number;
  p99Ms: number;
  cores: { driver: number; engine: number; encode: number; generator: number; server: number; machine: number };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? 6);
  maxInFlight = Number(args.find((a) => a.startsWith('--max-in-flight='))?.split('=')[1] ?? 1000);
  const rates = args.filter((a) => /^\d+$/.test(a)).map(Number);
  if (rates.length === 0) rates.push(5000, 10_000, 20_000, 30_000);
  const vegeta = vegetaBinary();
  const server = await startTrivialServer();
  const dir = await mkdtemp(join(tmpdir(), 'loadlab-driver-bench-'));
  const rows: StepFigures[] = [];
  try {
    console.log(`driver benchmark: ${seconds} s per step, steady window = seconds 1..${seconds - 1}, trivial server pid ${server.pid}, ${machineCores()} cores`);
    // A warm-up, not reported: the server's JIT and the first connections, so the first step does
    // not pay for a cold start the baseline after it would not.
    await driverStep(2000, 3, server);
    for (const rate of rates) {
      const driver = await driverStep(rate, seconds, server);
      print(driver);
      const baseline = await vegetaAloneStep(rate, seconds, server, vegeta, dir);
      print(baseline);
      console.log(`  -> generator CPU vs vegeta alone: ${(driver.cores.generator / baseline.cores.generator).toFixed(2)}x; achieved/offered ${(driver.achieved / driver.offered).toFixed(3)} (baseline ${(baseline.achieved / baseline.offered).toFixed(3)})`);
      rows.push(driver, baseline);
    }
    console.log('\nsummary (cores are CPU seconds per second; generator = driver process + its vegeta processes;');
    console.log('µs/req = generator CPU per answered request; @20k = the cores that cost would take at 20,000 requests/s)');
    console.log('step                         offered/s  achieved/s  ratio   late  dropped  p99 ms  driver  vegeta (encode)  generator  µs/req  @20k  server  machine');
    for (const r of rows) {
      const perRequestUs = (r.cores.generator / r.achieved) * 1e6;
      console.log(
        `${r.label.padEnd(28)} ${fmt(r.offered, 0, 9)} ${fmt(r.achieved, 0, 11)} ${fmt(r.achieved / r.offered, 3, 6)} ${fmt(r.late, 0, 6)} ${fmt(r.dropped, 0, 8)} ${fmt(r.p99Ms, 1, 7)} ${fmt(r.cores.driver, 2, 7)} ${fmt(r.cores.engine, 2, 7)} ${`(${r.cores.encode.toFixed(2)})`.padStart(8)} ${fmt(r.cores.generator, 2, 10)} ${fmt(perRequestUs, 1, 7)} ${fmt((perRequestUs * 20_000) / 1e6, 2, 5)} ${fmt(r.cores.server, 2, 7)} ${fmt(r.cores.machine, 2, 8)}`,
      );
    }
  } finally {
    server.child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

function experimentAt(rate: number, seconds: number): LoadExperiment {
  const devices = Math.round(rate / 2);
  const manifest = {
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name: 'driver-bench' },
    spec: {
      fleet: { devices, reportInterval: '1s', pollInterval: '1s', jitter: 0.1 },
      load: { stages: [{ devices, duration: `${seconds}s`, shape: 'hold' }] },
    },
  };
  const result = parseExperiment(JSON.stringify(manifest), 'bench');
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

async function driverStep(rate: number, seconds: number, server: TrivialServer): Promise<StepFigures> {
  const experiment = experimentAt(rate, seconds);
  let enginePids: readonly number[] = [];
  const samples: { sample: Sample; snapshot: ProgressSnapshot }[] = [];
  let late0 = 0;
  let dropped0 = 0;
  const cpu0 = process.cpuUsage();
  const driverCpu = () => {
    const used = process.cpuUsage(cpu0);
    return (used.user + used.system) / 1e6;
  };
  await runDriver({
    experiment,
    baseUrls: [server.url],
    tokenSecret: SECRET,
    metricsPort: 0,
    engineEnv: ENGINE_ENV,
    maxInFlight,
    // The fleet's logins spread over the whole step (not a burst in its first second), so every
    // second offers the same rate: R plus R/2 logins over the step.
    loginSpreadS: seconds,
    onReady: (info) => (enginePids = info.enginePids),
    onProgress: (snapshot) => {
      if (snapshot.elapsedS > seconds - 0.5) return; // the final snapshot after the drain
      const sample = takeSample(driverCpu, enginePids, server.pid);
      if (samples.length === 0) {
        late0 = snapshot.late;
        dropped0 = snapshot.dropped;
      }
      samples.push({ sample, snapshot });
    },
  });
  const steady = samples.slice(1); // snapshots 2.. cover seconds 1..end
  const first = samples[0]!.sample;
  const last = steady[steady.length - 1]!;
  return {
    label: `driver ${rate}/s`,
    offered: mean(steady.map((s) => s.snapshot.offeredRps)),
    achieved: mean(steady.map((s) => s.snapshot.achievedRps)),
    late: last.snapshot.late - late0,
    dropped: last.snapshot.dropped - dropped0,
    p99Ms: Math.max(...steady.map((s) => s.snapshot.p99Ms)),
    cores: cores(first, last.sample),
  };
}

/** vegeta pacing itself over a file of the same target lines: the engine's cost alone. */
async function vegetaAloneStep(rate: number, seconds: number, server: TrivialServer, vegeta: string, dir: string): Promise<StepFigures> {
  const experiment = experimentAt(rate, seconds);
  const plan = buildTrafficPlan(experiment);
  const lines = new TargetLines({ experiment, baseUrls: [server.url], tokenSecret: SECRET, deviceId: (i) => i + 1, tokenExpiresAtS: Math.floor(Date.now() / 1000) + 86_400, tokenCacheSize: 100_000 });
  const file = join(dir, `targets-${rate}.jsonl`);
  const parts: string[] = [];
  let id = 0;
  const now = Date.now();
  const m = arrivalsBetween(plan, 'measurements', 0, plan.durationS);
  const c = arrivalsBetween(plan, 'command', 0, plan.durationS);
  for (let a = m.next(), b = c.next(); !a.done || !b.done; ) {
    if (!a.done && (b.done || a.value.timeS <= b.value.timeS)) {
      parts.push(lines.line('measurements', id++, a.value.device, now + a.value.timeS * 1000));
      a = m.next();
    } else if (!b.done) {
      parts.push(lines.line('command', id++, b.value.device, now + b.value.timeS * 1000));
      b = c.next();
    }
  }
  await writeFile(file, parts.join(''));
  const child = spawn(vegeta, ['attack', '-format=json', '-lazy', `-targets=${file}`, `-rate=${rate}/1s`, `-duration=${seconds}s`, `-max-workers=${maxInFlight}`, '-timeout=10s', '-http2=false', '-max-body=0', '-output=/dev/null'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, GOGC: '400', ...ENGINE_ENV },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pids = [child.pid!];
  const zero = () => 0;
  await sleep(1000);
  const first = takeSample(zero, pids, server.pid);
  const countAt0 = await server.requests();
  await sleep((seconds - 2) * 1000);
  const last = takeSample(zero, pids, server.pid);
  const window = (last.at - first.at) / 1000;
  const achieved = ((await server.requests()) - countAt0) / window;
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
  await exited;
  clearTimeout(killer);
  return { label: `vegeta alone ${rate}/s`, offered: rate, achieved, late: NaN, dropped: NaN, p99Ms: NaN, cores: cores(first, last) };
}

interface TrivialServer {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Requests the server answered so far. */
  requests(): Promise<number>;
}

async function startTrivialServer(): Promise<TrivialServer> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`trivial server exited with ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      const match = /listening (\d+)/.exec(chunk.toString());
      if (match) resolve(Number(match[1]));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return { url, pid: child.pid!, child, requests: () => fetch(`${url}/__count`).then((r) => r.text()).then(Number) };
}

function takeSample(driverCpu: () => number, enginePids: readonly number[], serverPid: number): Sample {
  const [busy, total] = machineTicks();
  const engine = enginePids.map((pid) => cpu(pid));
  return { at: Date.now(), driver: driverCpu(), engine: engine.reduce((a, b) => a + b, 0), encode: engine[1] ?? 0, server: cpu(serverPid), machineBusy: busy, machineTotal: total };
}

function cores(a: Sample, b: Sample): StepFigures['cores'] {
  const seconds = (b.at - a.at) / 1000;
  const driver = (b.driver - a.driver) / seconds;
  const engine = (b.engine - a.engine) / seconds;
  const cpus = machineCores();
  return {
    driver,
    engine,
    encode: (b.encode - a.encode) / seconds,
    generator: driver + engine,
    server: (b.server - a.server) / seconds,
    machine: ((b.machineBusy - a.machineBusy) / (b.machineTotal - a.machineTotal)) * cpus,
  };
}

function machineTicks(): [number, number] {
  const values = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  return [total - values[3]! - values[4]!, total];
}

function machineCores(): number {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter((line) => /^cpu\d/.test(line)).length;
}

function print(r: StepFigures): void {
  const c = r.cores;
  console.log(
    `${r.label}: offered ${r.offered.toFixed(0)}/s achieved ${r.achieved.toFixed(0)}/s (ratio ${(r.achieved / r.offered).toFixed(3)}), late ${r.late}, dropped ${r.dropped}, worst 1 s p99 ${r.p99Ms.toFixed(1)} ms; ` +
      `cores: driver ${c.driver.toFixed(2)} + vegeta ${c.engine.toFixed(2)} (of which encode ${c.encode.toFixed(2)}) = generator ${c.generator.toFixed(2)}; server ${c.server.toFixed(2)}; machine ${c.machine.toFixed(2)} of ${machineCores()}`,
  );
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function fmt(value: number, digits: number, width: number): string {
  return (Number.isFinite(value) ? value.toFixed(digits) : '-').padStart(width);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
