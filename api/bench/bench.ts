/**
 * `npm run bench:api` (or `node api/dist/bench/bench.js [--quick] [--duration S] [--max-rate R]`):
 * drives the API on loopback with the device mix and prints figures measured side by side in one run.
 *
 *  1. Highest sustainable request rate (p99 < 100 ms, no errors, the generator kept the rate) of the
 *     NestJS API and of a minimal raw Fastify + pg server running the same SQL (raw-server.ts),
 *     each in its own process, one at a time, on a freshly truncated schema; and their ratio; and
 *     the same for the API with write batching off (the raw server's statements exactly).
 *     The mix: per device and interval one POST /v1/measurements (a new deviceTime each time) and
 *     one GET /v1/command, for N devices (default 200,000, each with its own token).
 *  2. Measurement ingest (rows/s) through the API at its maximum vs a batched-insert ceiling on the
 *     same database: INGEST_SQL itself in 500-row batches from 4 concurrent clients.
 *  3. GET /v1/stats latency with 10k and with 1M stored measurements (same reporting devices), ratio.
 *
 * vegeta (open model, constant rate) generates the load on the same 2-core machine; each step
 * reports the CPU used by the server, PostgreSQL, vegeta and everything else, so a reader can see
 * what limited it. A benchmark, not a test: it exits 0 whatever the figures; non-zero only when it
 * could not run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DeviceTokens } from '../src/auth/device-token.js';
import { createDataSource, migrate } from '../src/db/data-source.js';
import { INGEST_SQL } from '../src/measurements/measurements.repository.js';
import { freePort, PostgresCluster } from '../test/support/postgres.js';
import { childrenOf, formatUsage, processTicks, snapshot, usageBetween, type CpuSnapshot, type CpuUsage } from './procstat.js';
import { analyse, startAttack, vegetaPath, VEGETA_VERSION, type WindowStats } from './vegeta.js';

// ---- settings ---------------------------------------------------------------------------------

const USAGE = `usage: node api/dist/bench/bench.js [options]
  --quick            short steps (smoke test): 1 s warm-up + 3 s measured, 2 refinement steps
  --duration S       measured seconds per step (default 8; --quick 3)
  --warmup S         warm-up seconds per step, not measured (default 2; --quick 1)
  --max-rate R       highest request rate tried, req/s (default 20000)
  --start-rate R     first rate tried, req/s (default 1000)
  --devices N        registered devices, each with its own token (default 200000)
  --pool N           DB pool size of both servers (default 10, the API's default)
  --only KIND        search one server only (no ratio): nest, raw, or nest-unbatched (the API with
                     WRITE_BATCH_MAX_ROWS=1: the raw server's SQL, one statement per request)
  --skip-ingest      skip the ingest-ceiling measurement
  --skip-stats       skip the /stats measurement
  --profile-rate R   instead of the benchmark: run the Nest API under --cpu-prof at R req/s for one
                     step and print where its CPU goes (self time by package and by function)`;

const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    'max-rate': { type: 'string' },
    'start-rate': { type: 'string' },
    devices: { type: 'string' },
    pool: { type: 'string' },
    only: { type: 'string' },
    'skip-ingest': { type: 'boolean', default: false },
    'skip-stats': { type: 'boolean', default: false },
    'profile-rate': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  console.log(USAGE);
  process.exit(0);
}

function num(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`bench: --${name} must be a positive number, got "${value}"\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

const QUICK = argv.quick;
const MEASURE_S = num(argv.duration, QUICK ? 3 : 8, 'duration');
const WARMUP_S = num(argv.warmup, QUICK ? 1 : 2, 'warmup');
const MAX_RATE = num(argv['max-rate'], 20_000, 'max-rate');
const START_RATE = Math.min(MAX_RATE, num(argv['start-rate'], 1000, 'start-rate'));
const DEVICES = Math.floor(num(argv.devices, 200_000, 'devices'));
const POOL = Math.floor(num(argv.pool, 10, 'pool'));
const FINE_STEPS = QUICK ? 2 : 3;
const COARSE_FACTOR = 1.5;
const ONLY = argv.only;
if (ONLY !== undefined && ONLY !== 'nest' && ONLY !== 'raw' && ONLY !== 'nest-unbatched') {
  console.error(`bench: --only must be nest, raw or nest-unbatched\n${USAGE}`);
  process.exit(2);
}

const P99_LIMIT_MS = 100;
const MIN_SENT_FRACTION = 0.95; // below this the generator (or the server's accept queue) fell behind
const GOAL_RATIO = 0.8;
const GOAL_STATS_RATIO = 1.5;
const FLEET_DEVICES = 200_000;
const FLEET_INTERVAL_S = 30;
const FLEET_RATE = (2 * FLEET_DEVICES) / FLEET_INTERVAL_S; // one measurement + one poll per device per interval
const MAX_WORKERS = 2000;
const REQUEST_TIMEOUT_S = 5;
const TOKEN_SECRET = 'bench-secret-0123456789abcdef';
const CEILING_BATCH_ROWS = 500; // WRITE_BATCH_MAX_ROWS default
const CEILING_CLIENTS = 4; // WRITE_BATCH_MAX_CONCURRENCY default
const STATS_REQUESTS = 50;
const STATS_DEVICES = 10_000;
/** Other processes using this much CPU (% of one core) count as interference: wait before a step, repeat a failed one once. */
const INTERFERENCE_PERCENT = 25;

const NEST_MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const RAW_MAIN = fileURLToPath(new URL('./raw-server.js', import.meta.url));

// ---- process bookkeeping and cleanup ----------------------------------------------------------

const children = new Set<ChildProcess>();
const track = (child: ChildProcess): void => {
  children.add(child);
  child.once('exit', () => children.delete(child));
};
let cluster: PostgresCluster | undefined;
let admin: pg.Pool | undefined;
let workDir: string | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    for (const child of children) child.kill('SIGKILL');
    await admin?.end().catch(() => undefined);
    await cluster?.destroy().catch(() => undefined);
    if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  })());
}
// Whatever goes wrong, children and the throwaway database must not outlive the benchmark.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    if (cleaning) return;
    console.error(`bench: could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    void cleanup().finally(() => process.exit(1));
  });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping children and removing the database`);
    void cleanup().finally(() => process.exit(130));
  });
}

const t0 = performance.now();
function log(message: string): void {
  const s = ((performance.now() - t0) / 1000).toFixed(0).padStart(4);
  process.stdout.write(`[bench ${s}s] ${message}\n`);
}
const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');

// ---- database ---------------------------------------------------------------------------------

function postmasterPid(): number | undefined {
  try {
    return Number(readFileSync(join(cluster!.dir, 'data', 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
  } catch {
    return undefined;
  }
}

/** PostgreSQL's CPU: the postmaster, its live children (backends, walwriter, ...) and its reaped ones. */
function postgresTicks(): number {
  const pid = postmasterPid();
  if (!pid) return 0;
  return processTicks(pid, true) + childrenOf(pid).reduce((sum, child) => sum + processTicks(child), 0);
}

/**
 * Samples what PostgreSQL's client backends are doing (pg_stat_activity, every 100 ms) while a step
 * is measured: on CPU (no wait event) or waiting on a lock, the WAL, I/O or the client.
 */
class WaitSampler {
  private readonly counts = new Map<string, number>();
  private samples = 0;
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      admin!
        .query<{ w: string; n: number }>(
          `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w, count(*)::int AS n FROM pg_stat_activity
           WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1`,
        )
        .then(({ rows }) => {
          this.samples++;
          for (const { w, n } of rows) {
            this.counts.set(w, (this.counts.get(w) ?? 0) + n);
            this.active += n;
          }
        })
        .catch(() => undefined)
        .finally(() => (this.busy = false));
    }, 100);
  }

  stop(): string {
    clearInterval(this.timer);
    if (this.samples === 0) return 'n/a';
    const top = [...this.counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4);
    const parts = top.map(([w, n]) => `${w} ${fmt((n / Math.max(1, this.active)) * 100)}%`);
    return `${fmt(this.active / this.samples, 1)} statements running on average (${parts.join(', ') || 'idle'})`;
  }
}

/** Empty tables, devices 1..N (ids are deterministic, so tokens stay valid), 1 % with a due command. */
async function resetSchema(withCommands: boolean): Promise<void> {
  await admin!.query('TRUNCATE measurement, command, measurement_hourly, device_latest, device RESTART IDENTITY CASCADE');
  await admin!.query(`INSERT INTO device (serial) SELECT 'bench-' || lpad(i::text, 7, '0') FROM generate_series(1, $1::int) i`, [DEVICES]);
  if (withCommands) {
    await admin!.query(`INSERT INTO command (device_id, charge_on, fill_on, flush_litres) SELECT id, true, null, 0.5 FROM device WHERE id % 100 = 0`);
  }
  const { rows } = await admin!.query<{ n: string; max: string }>('SELECT count(*) AS n, max(id) AS max FROM device');
  if (Number(rows[0]!.n) !== DEVICES || Number(rows[0]!.max) !== DEVICES) throw new Error(`device ids are not 1..${DEVICES}: ${JSON.stringify(rows[0])}`);
  await admin!.query('VACUUM ANALYZE');
  await admin!.query('CHECKPOINT');
}

/** Waits (bounded) until no statement is running, so one step's backlog does not land on the next. */
async function settle(ms: number): Promise<void> {
  await sleep(ms);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { rows } = await admin!.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()`,
    );
    if (rows[0]!.n === 0) return;
    await sleep(250);
  }
}

/** Waits (bounded) until the server answers /healthz quickly again: an overloaded step leaves a backlog. */
async function waitResponsive(server: Server): Promise<void> {
  const deadline = Date.now() + 20_000;
  let fast = 0;
  while (Date.now() < deadline && fast < 3) {
    const start = performance.now();
    const ok = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status === 200, () => false);
    fast = ok && performance.now() - start < 20 ? fast + 1 : 0;
    await sleep(200);
  }
}

// ---- servers under test -----------------------------------------------------------------------

/**
 * nest-unbatched is the API with write batching off: one INGEST_SQL per request, as the raw server
 * does, so nest-unbatched/raw compares the frameworks on the same statements, while nest/raw shows
 * what the API as shipped (group commit on) gets out of the same database.
 */
type Kind = 'nest' | 'raw' | 'nest-unbatched';
const LABEL: Record<Kind, string> = { nest: 'NestJS API', raw: 'raw Fastify + pg', 'nest-unbatched': 'NestJS, no batching' };

interface Server {
  kind: Kind;
  child: ChildProcess;
  pid: number;
  url: string;
  output: string[];
}

async function startServer(kind: Kind, nodeArgs: string[] = []): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, kind === 'raw' ? RAW_MAIN : NEST_MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: cluster!.url,
      TOKEN_SECRET,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DB_POOL_SIZE: String(POOL),
      MIGRATE_ON_START: 'false',
      ...(kind === 'nest-unbatched' ? { WRITE_BATCH_MAX_ROWS: '1' } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const output: string[] = [];
  let shown = 0;
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 200) output.shift();
      // The API logs at warn: show the first few lines live, summarise the rest.
      if (shown++ < 5) process.stdout.write(`    [${kind} output] ${line.slice(0, 300)}\n`);
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const server: Server = { kind, child, pid: child.pid!, url: `http://127.0.0.1:${port}`, output };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (spawnError) throw new Error(`${LABEL[kind]} could not be started (${process.execPath}): ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${LABEL[kind]} exited during start-up:\n${output.join('\n')}`);
    const ok = await fetch(`${server.url}/healthz`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${LABEL[kind]} not answering /healthz within 60 s:\n${output.join('\n')}`);
    await sleep(100);
  }
  return server;
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** One round trip per route through the server, so a broken set-up fails loudly before any load. */
async function checkRoutes(server: Server): Promise<void> {
  const login = await fetch(`${server.url}/v1/devices/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ serial: 'bench-route-check' }) });
  if (login.status !== 200) throw new Error(`${LABEL[server.kind]}: login answered ${login.status}: ${await login.text()}`);
  const { token } = (await login.json()) as { token: string };
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const m = await fetch(`${server.url}/v1/measurements`, { method: 'POST', headers: auth, body: JSON.stringify(measurementBody(1, Date.now() - 60_000)) });
  if (m.status !== 201) throw new Error(`${LABEL[server.kind]}: measurement answered ${m.status}: ${await m.text()}`);
  const c = await fetch(`${server.url}/v1/command`, { headers: { authorization: `Bearer ${token}` } });
  if (c.status !== 200) throw new Error(`${LABEL[server.kind]}: command poll answered ${c.status}: ${await c.text()}`);
}

// ---- the device mix ---------------------------------------------------------------------------

function measurementBody(device: number, timeMs: number): Record<string, unknown> {
  return {
    deviceTime: new Date(timeMs).toISOString(),
    chargeNow: 200 + ((device * 37) % 1000),
    chargeFull: 1200,
    chargeRate: -15.5 + (device % 7),
    ambientTemp: 18 + (device % 8),
    waterTemp: 40 + ((device * 13) % 50) + 0.25,
    waterLevel: 0.5 + (device % 15) / 10,
  };
}

/**
 * Writes vegeta JSON targets: alternately one measurement (devices in turn; each report's
 * deviceTime is its planned send time, at least 1 ms after the device's previous one, so every
 * row is new) and one command poll (devices in turn, offset by half the fleet).
 */
class TargetWriter {
  private measureCursor = 0;
  private pollCursor = 0;
  private readonly lastTime = new Float64Array(DEVICES + 1);
  private readonly auth: string[] = [];

  constructor(tokens: DeviceTokens) {
    for (let id = 1; id <= DEVICES; id++) this.auth[id] = JSON.stringify(`Bearer ${tokens.issue(id).token}`);
  }

  write(file: string, baseUrl: string, count: number, rate: number, startMs: number, mode: Mode): void {
    const fd = openSync(file, 'w');
    const postUrl = JSON.stringify(`${baseUrl}/v1/measurements`);
    const getUrl = JSON.stringify(`${baseUrl}/v1/command`);
    let chunk: string[] = [];
    for (let i = 0; i < count; i++) {
      if (mode === 'ingest' || (mode === 'mix' && i % 2 === 0)) {
        const device = (this.measureCursor++ % DEVICES) + 1;
        const time = Math.max(startMs + (i * 1000) / rate, this.lastTime[device]! + 1);
        this.lastTime[device] = time;
        const body = Buffer.from(JSON.stringify(measurementBody(device, time))).toString('base64');
        chunk.push(`{"method":"POST","url":${postUrl},"header":{"Authorization":[${this.auth[device]}],"Content-Type":["application/json"]},"body":"${body}"}\n`);
      } else {
        const device = ((this.pollCursor++ + Math.floor(DEVICES / 2)) % DEVICES) + 1;
        chunk.push(`{"method":"GET","url":${getUrl},"header":{"Authorization":[${this.auth[device]}]}}\n`);
      }
      if (chunk.length >= 5000) {
        writeSync(fd, chunk.join(''));
        chunk = [];
      }
    }
    if (chunk.length) writeSync(fd, chunk.join(''));
    closeSync(fd);
  }
}

// ---- one load step and the rate search -------------------------------------------------------

/**
 * `mix`: the device mix; `polls`: GET /v1/command only (identical SQL in both servers, no batching);
 * `ingest`: POST /v1/measurements only (the API's ingest capacity, for the ceiling comparison).
 */
type Mode = 'mix' | 'polls' | 'ingest';
/** Rate of the equal-work comparison (polls only), low enough for both servers. */
const EQUAL_WORK_RATE = 1000;

interface Step {
  kind: Kind;
  rate: number;
  stats: WindowStats;
  cpu: CpuUsage;
  pass: boolean;
  reasons: string[];
  /** what PostgreSQL's backends did during the measured window */
  db: string;
}

/**
 * Other work on this shared machine skews a step. Before each step, wait (at most 30 s per step and
 * 180 s per run) until processes other than ours use less than INTERFERENCE_PERCENT of a core.
 */
let quietBudgetMs = 180_000;
async function waitQuiet(server: Server): Promise<void> {
  const groups = { server: () => processTicks(server.pid), postgres: postgresTicks, bench: () => processTicks(process.pid) };
  const until = Date.now() + Math.min(30_000, quietBudgetMs);
  const started = Date.now();
  let other = 0;
  for (;;) {
    const a = snapshot(groups);
    await sleep(1000);
    other = usageBetween(a, snapshot(groups)).percent.other ?? 0;
    if (other < INTERFERENCE_PERCENT || Date.now() >= until) break;
    if (Date.now() - started < 1500) log(`  other processes use ${fmt(other)} % of a core: waiting up to ${fmt((until - Date.now()) / 1000)} s for the machine to quiet down`);
  }
  quietBudgetMs -= Date.now() - started;
  if (other >= INTERFERENCE_PERCENT) log(`  the machine is still busy (other processes ${fmt(other)} % of a core); measuring anyway`);
}

let stepNo = 0;
async function runStep(server: Server, targets: TargetWriter, vegeta: string, rate: number, label = LABEL[server.kind], mode: Mode = 'mix'): Promise<Step> {
  await waitQuiet(server);
  stepNo++;
  const total = WARMUP_S + MEASURE_S;
  const targetsFile = join(workDir!, `targets-${stepNo}.jsonl`);
  const resultsFile = join(workDir!, `results-${stepNo}.bin`);
  // One extra second of targets: the lazy reader must never run dry inside the attack.
  targets.write(targetsFile, server.url, Math.ceil(rate * (total + 1)), rate, Date.now() + 300, mode);
  log(`${label}: step ${stepNo}, ${mode === 'polls' ? 'GET /v1/command only, ' : ''}${fmt(rate)} req/s for ${WARMUP_S} s warm-up + ${MEASURE_S} s measured`);

  let vegetaPid = 0;
  const groups = {
    [server.kind]: () => processTicks(server.pid),
    postgres: postgresTicks,
    vegeta: () => (vegetaPid ? processTicks(vegetaPid) : 0),
    bench: () => processTicks(process.pid),
  };
  const attack = startAttack({ vegeta, targetsFile, resultsFile, rate, durationSeconds: total, maxWorkers: MAX_WORKERS, timeoutSeconds: REQUEST_TIMEOUT_S }, track);
  vegetaPid = attack.child.pid ?? 0;
  let first: CpuSnapshot | undefined;
  let last: CpuSnapshot | undefined;
  const waits = new WaitSampler();
  let db = 'n/a';
  const a = setTimeout(() => {
    first = snapshot(groups);
    waits.start();
  }, WARMUP_S * 1000);
  const b = setTimeout(() => {
    last = snapshot(groups);
    db = waits.stop();
  }, total * 1000 - 200);
  const code = await attack.done;
  clearTimeout(a);
  clearTimeout(b);
  if (db === 'n/a') waits.stop();
  if (code !== 0) throw new Error(`vegeta attack exited with ${code}`);
  const stats = await analyse(vegeta, resultsFile, WARMUP_S, MEASURE_S, track);
  await rm(targetsFile, { force: true });
  await rm(resultsFile, { force: true });
  const cpu = first && last ? usageBetween(first, last) : { seconds: 0, fromUs: 0, toUs: 0, percent: {} };

  const reasons: string[] = [];
  if (stats.latencyMs.p99 >= P99_LIMIT_MS) reasons.push(`p99 ${fmt(stats.latencyMs.p99, 1)} ms >= ${P99_LIMIT_MS} ms`);
  if (stats.errors > 0) {
    const codes = Object.entries(stats.statusCodes).filter(([c]) => !c.startsWith('2')).map(([c, n]) => `${n}x${c === '0' ? 'transport' : c}`);
    reasons.push(`${stats.errors} errors (${codes.join(', ')}; e.g. ${stats.errorSamples[0] ?? '?'})`);
  }
  if (stats.sentRate < MIN_SENT_FRACTION * rate) reasons.push(`only ${fmt(stats.sentRate)} req/s sent (generator fell behind)`);
  const pass = reasons.length === 0 && stats.requests > 0;
  const routes = Object.entries(stats.byRoute).map(([route, r]) => `${route.split(' ')[1]} p99 ${fmt(r.p99, 1)}`).join(', ');
  log(
    `  -> sent ${fmt(stats.sentRate)}/s, 2xx ${fmt(stats.okRate)}/s, p50 ${fmt(stats.latencyMs.p50, 1)} p99 ${fmt(stats.latencyMs.p99, 1)} max ${fmt(stats.latencyMs.max, 0)} ms (${routes}), ` +
      `errors ${stats.errors} | CPU % of one core: ${formatUsage(cpu, [server.kind, 'postgres', 'vegeta', 'bench'])}; µs per request: ${perRequest(cpu, server.kind, rate)} ` +
      `| postgres: ${db} -> ${pass ? 'PASS' : `FAIL: ${reasons.join('; ')}`}`,
  );
  return { kind: server.kind, rate, stats, cpu, pass, reasons, db };
}

/** CPU time per request (µs) of the server, PostgreSQL and vegeta: what one request costs each. */
function perRequest(cpu: CpuUsage, kind: Kind, rate: number): string {
  return [kind, 'postgres', 'vegeta'].map((name) => `${name} ${fmt(((cpu.percent[name] ?? 0) * 10_000) / rate)}`).join(' ');
}

interface Search {
  kind: Kind;
  /** every step run, repeated ones included */
  steps: Step[];
  best?: Step;
  firstFail?: Step;
  cappedAtMax: boolean;
  stored: number;
  acknowledged: number;
  /** the equal-work step: polls only at EQUAL_WORK_RATE */
  polls?: Step;
}

const roundRate = (r: number): number => (r >= 2000 ? Math.round(r / 50) * 50 : Math.max(10, Math.round(r / 10) * 10));

/** Coarse (×1.5 from --start-rate up to --max-rate) then bisection between the last pass and the first failure. */
async function searchMaxRate(kind: Kind, targets: TargetWriter, vegeta: string, mode: Mode = 'mix'): Promise<Search> {
  const label = mode === 'ingest' ? `${LABEL[kind]} (measurements only)` : LABEL[kind];
  await resetSchema(true);
  const server = await startServer(kind);
  try {
    await checkRoutes(server);
    const steps: Step[] = [];
    let best: Step | undefined;
    let fail: Step | undefined;
    const attempt = async (rate: number) => {
      let step = await runStep(server, targets, vegeta, rate, label, mode);
      steps.push(step);
      if (!step.pass && (step.cpu.percent.other ?? 0) >= INTERFERENCE_PERCENT) {
        log(`  other processes used ${fmt(step.cpu.percent.other ?? 0)} % of a core during that step: repeating it once`);
        await settle(3000);
        await waitResponsive(server);
        step = await runStep(server, targets, vegeta, rate, label, mode);
        steps.push(step);
      }
      if (step.pass && (!best || rate > best.rate)) best = step;
      if (!step.pass && (!fail || rate < fail.rate)) fail = step;
      if (server.child.exitCode !== null) throw new Error(`${LABEL[kind]} exited during the step:\n${server.output.slice(-20).join('\n')}`);
      await settle(step.pass ? 1000 : 3000);
      await waitResponsive(server);
      return step.pass;
    };
    // Coarse: up until the first failure (or down, halving, when the start rate already fails).
    let rate = START_RATE;
    if (await attempt(rate)) {
      while (rate < MAX_RATE) {
        rate = Math.min(MAX_RATE, roundRate(rate * COARSE_FACTOR));
        if (!(await attempt(rate))) break;
      }
    } else {
      while (rate > 20) {
        rate = roundRate(rate / 2);
        if (await attempt(rate)) break;
      }
    }
    // Fine: bisection.
    for (let i = 0; i < FINE_STEPS && best && fail; i++) {
      const lo: number = best.rate;
      const hi: number = fail.rate;
      if (hi - lo <= Math.max(20, 0.04 * lo)) break;
      const mid = roundRate((lo + hi) / 2);
      if (mid <= lo || mid >= hi) break;
      await attempt(mid);
    }
    const acknowledged = steps.reduce((sum, s) => sum + (s.stats.all2xxByRoute['POST /v1/measurements'] ?? 0), 0) + 1; // +1: checkRoutes
    const { rows } = await admin!.query<{ n: string }>('SELECT count(*) AS n FROM measurement');
    // Equal work: the same poll statement at the same rate in both servers, so the CPU per request
    // compares the frameworks (HTTP, auth, routing, pg client) without write batching in the picture.
    // (nest-unbatched polls exactly as nest does: its equal-work step would repeat nest's.)
    const polls = kind === 'nest-unbatched' || mode !== 'mix' ? undefined : await runStep(server, targets, vegeta, EQUAL_WORK_RATE, `${LABEL[kind]} (equal work)`, 'polls');
    return { kind, steps, best, firstFail: fail, cappedAtMax: !!best && best.rate >= MAX_RATE, stored: Number(rows[0]!.n), acknowledged, polls };
  } finally {
    await stopServer(server);
  }
}

// ---- ingest ceiling ---------------------------------------------------------------------------

interface Ceiling {
  rowsPerSecond: number;
  plainRowsPerSecond: number;
  cpu: CpuUsage;
}

/** Rows/s the database takes with INGEST_SQL in big batches (no HTTP, no API), and with a plain multi-row INSERT. */
async function ingestCeiling(seconds: number): Promise<Ceiling> {
  await resetSchema(false);
  const PLAIN_SQL = `INSERT INTO measurement (device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level)
    SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])
    ON CONFLICT DO NOTHING`;
  const base = Date.now() - 24 * 3600_000;
  let nextRow = 0;
  // Column arrays as PostgreSQL array literals: cheap to build, so the client is not the bottleneck.
  const batch = (): unknown[] => {
    const start = nextRow;
    nextRow += CEILING_BATCH_ROWS;
    const ids: number[] = [];
    const times: string[] = [];
    for (let i = start; i < start + CEILING_BATCH_ROWS; i++) {
      ids.push((i % DEVICES) + 1);
      times.push(new Date(base + Math.floor(i / DEVICES) * 1000 + (i % 1000)).toISOString());
    }
    const col = (v: number) => `{${new Array(CEILING_BATCH_ROWS).fill(v).join(',')}}`;
    return [`{${ids.join(',')}}`, `{${times.join(',')}}`, col(800), col(1200), col(-15.5), col(21), col(60), col(1.2)];
  };
  const run = async (sql: string, withShard: boolean, label: string): Promise<{ rate: number; cpu: CpuUsage }> => {
    const groups = { postgres: postgresTicks, bench: () => processTicks(process.pid) };
    const warmUntil = Date.now() + 1000;
    const endAt = warmUntil + seconds * 1000;
    let rows = 0;
    let first: CpuSnapshot | undefined;
    const worker = async () => {
      const client = await admin!.connect();
      try {
        while (Date.now() < endAt) {
          const params = batch();
          if (withShard) params.push(Math.floor(Math.random() * 16));
          let result: pg.QueryResult<{ inserted?: number }>;
          try {
            result = await client.query<{ inserted?: number }>(sql, params);
          } catch (error) {
            if ((error as { code?: string }).code !== '40P01') throw error;
            result = await client.query<{ inserted?: number }>(sql, params);
          }
          const n = withShard ? (result.rows[0]?.inserted ?? 0) : (result.rowCount ?? 0);
          const now = Date.now();
          if (now >= warmUntil) {
            first ??= snapshot(groups);
            if (now < endAt) rows += n;
          }
        }
      } finally {
        client.release();
      }
    };
    await Promise.all(Array.from({ length: CEILING_CLIENTS }, worker));
    const cpu = usageBetween(first ?? snapshot(groups), snapshot(groups));
    const rate = rows / seconds;
    log(`  ${label}: ${fmt(rate)} rows/s | CPU % of one core: ${formatUsage(cpu, ['postgres', 'bench'])}`);
    return { rate, cpu };
  };
  log(`ingest ceiling: ${CEILING_CLIENTS} concurrent clients, ${CEILING_BATCH_ROWS}-row batches, 1 s warm-up + ${seconds} s each`);
  const full = await run(INGEST_SQL, true, 'INGEST_SQL (the API statement, rollups included)');
  const plain = await run(PLAIN_SQL, false, 'plain multi-row INSERT into measurement only');
  return { rowsPerSecond: full.rate, plainRowsPerSecond: plain.rate, cpu: full.cpu };
}

// ---- /stats latency ---------------------------------------------------------------------------

interface StatsLatency {
  label: string;
  measurements: number;
  reportingDevices: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

/** Stores measurements straight in SQL: devices 1..devices, `perDevice` readings each at 30 s spacing, from `fromK` on. */
async function loadMeasurements(devices: number, fromK: number, toK: number): Promise<void> {
  await admin!.query(
    `INSERT INTO measurement (device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level)
     SELECT d, now() - k * interval '30 seconds', 200 + (d * 37) % 1000, 1200, -15.5, 18 + d % 8, 40 + (d * 13 + k) % 50 + 0.25, 0.5 + (d % 15) / 10.0
     FROM generate_series($1::int, $2::int) k, generate_series(1, $3::int) d`,
    [fromK, toK, devices],
  );
}

/** Rebuilds both rollups from the measurement table, exactly what INGEST_SQL would have accumulated. */
async function rebuildRollups(): Promise<void> {
  const client = await admin!.connect();
  try {
    await client.query('BEGIN');
    await client.query('TRUNCATE measurement_hourly, device_latest');
    await client.query(`
      INSERT INTO measurement_hourly (hour_of_day, shard, measurements, water_temp_sum, water_temp_sumsq)
      SELECT extract(hour FROM device_time AT TIME ZONE 'UTC')::smallint, (device_id % 16)::smallint, count(*), sum(water_temp), sum(water_temp * water_temp)
      FROM measurement GROUP BY 1, 2`);
    await client.query(`
      INSERT INTO device_latest (device_id, device_time, charge_now, ambient_temp, water_temp, water_level)
      SELECT DISTINCT ON (device_id) device_id, device_time, charge_now, ambient_temp, water_temp, water_level
      FROM measurement ORDER BY device_id, device_time DESC`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
  await admin!.query('VACUUM ANALYZE');
  await admin!.query('CHECKPOINT');
}

async function measureStats(server: Server, label: string, expected: number): Promise<StatsLatency> {
  const groups = { nest: () => processTicks(server.pid), postgres: postgresTicks, bench: () => processTicks(process.pid) };
  const before = snapshot(groups);
  const times: number[] = [];
  let body: { measurementCount: number; reportingDeviceCount: number } | undefined;
  for (let i = 0; i < 5 + STATS_REQUESTS; i++) {
    const start = performance.now();
    const response = await fetch(`${server.url}/v1/stats`);
    const text = await response.text();
    const ms = performance.now() - start;
    if (response.status !== 200) throw new Error(`/v1/stats answered ${response.status}: ${text}`);
    body = JSON.parse(text) as typeof body;
    if (i >= 5) times.push(ms); // the first 5 warm the plan cache and the pages
  }
  if (body!.measurementCount !== expected) throw new Error(`/v1/stats counts ${body!.measurementCount} measurements, expected ${expected}`);
  times.sort((x, y) => x - y);
  const result = {
    label,
    measurements: body!.measurementCount,
    reportingDevices: body!.reportingDeviceCount,
    medianMs: times[Math.floor(times.length / 2)]!,
    p90Ms: times[Math.ceil(times.length * 0.9) - 1]!,
    maxMs: times[times.length - 1]!,
  };
  const cpu = usageBetween(before, snapshot(groups));
  log(
    `  /v1/stats, ${label}: median ${fmt(result.medianMs, 2)} ms, p90 ${fmt(result.p90Ms, 2)} ms, max ${fmt(result.maxMs, 2)} ms (${STATS_REQUESTS} sequential requests) | ` +
      `CPU % of one core: ${formatUsage(cpu, ['nest', 'postgres', 'bench'])}`,
  );
  return result;
}

async function statsLatency(): Promise<StatsLatency[]> {
  await resetSchema(false);
  const server = await startServer('nest');
  try {
    const statsDevices = Math.min(STATS_DEVICES, DEVICES);
    const perDevice = Math.ceil(1_000_000 / statsDevices);
    log(`/stats: ${fmt(statsDevices)} reporting devices (of ${fmt(DEVICES)} registered); 1 reading each, then ${perDevice} each`);
    await loadMeasurements(statsDevices, 0, 0);
    await rebuildRollups();
    const small = await measureStats(server, `${fmt(statsDevices)} measurements`, statsDevices);
    const started = performance.now();
    await loadMeasurements(statsDevices, 1, perDevice - 1);
    await rebuildRollups();
    log(`  loaded ${fmt(statsDevices * perDevice)} measurements in ${fmt((performance.now() - started) / 1000, 1)} s (SQL generate_series + rollup rebuild + VACUUM ANALYZE)`);
    const large = await measureStats(server, `${fmt(statsDevices * perDevice)} measurements`, statsDevices * perDevice);
    const out = [small, large];
    if (DEVICES > statsDevices) {
      // Not a goal: what /stats costs when the whole fleet reports (device_latest has a row per device).
      await admin!.query('TRUNCATE measurement, measurement_hourly, device_latest');
      const each = Math.max(1, Math.round(1_000_000 / DEVICES));
      await loadMeasurements(DEVICES, 0, each - 1);
      await rebuildRollups();
      out.push(await measureStats(server, `${fmt(DEVICES * each)} measurements from all ${fmt(DEVICES)} devices`, DEVICES * each));
    }
    return out;
  } finally {
    await stopServer(server);
  }
}

// ---- profiling mode ---------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Self time by package and by function from a V8 .cpuprofile, counting only the samples taken in [fromUs, toUs] (CLOCK_MONOTONIC). */
function summariseProfile(file: string, fromUs: number, toUs: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at >= fromUs && at <= toUs) self.set(id, (self.get(id) ?? 0) + delta);
  });
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0);
  const pkg = new Map<string, number>();
  const fn = new Map<string, number>();
  const packageOf = (url: string, name: string): string => {
    if (!url) return name.startsWith('(') ? name : '(native/builtin)';
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (m) return m[1]!;
    if (url.includes('/api/dist/src/')) return `api/src/${url.split('/api/dist/src/')[1]!.split('/')[0]}`;
    if (url.startsWith('node:')) return url;
    return url;
  };
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const p = packageOf(url, functionName);
    pkg.set(p, (pkg.get(p) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/api\/dist\//, 'api/dist/')}:${lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `    ${((us / totalUs) * 100).toFixed(1).padStart(5)} %  ${k}`)
      .join('\n');
  console.log(`\nNest API CPU profile of the measured window (${fmt(totalUs / 1000)} ms sampled; self time as a share of the main thread's time, idle included):`);
  console.log(`  by package:\n${top(pkg, 25)}`);
  console.log(`  by function:\n${top(fn, 40)}`);
}

async function profileMode(rate: number, vegeta: string, targets: TargetWriter): Promise<void> {
  const profDir = join(workDir!, 'profile');
  await resetSchema(true);
  const server = await startServer('nest', ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  let step: Step;
  try {
    await checkRoutes(server);
    step = await runStep(server, targets, vegeta, rate, 'NestJS API (under --cpu-prof)');
  } finally {
    await stopServer(server); // the profile is written on exit
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written (did the API exit cleanly on SIGTERM?)');
  summariseProfile(join(profDir, file), step.cpu.fromUs, step.cpu.toUs);
}

// ---- main -------------------------------------------------------------------------------------

function limitOf(step: Step | undefined): string {
  if (!step) return 'n/a';
  const p = step.cpu.percent;
  const server = p[step.kind] ?? 0;
  const parts: string[] = [];
  if (server >= 85) parts.push(`the server process is CPU-bound (${fmt(server)} % of a core; its JS runs on one event loop)`);
  if ((p.machine ?? 0) >= 180) parts.push(`the machine's 2 cores are saturated (${fmt(p.machine ?? 0)} %)`);
  if ((p.vegeta ?? 0) >= 60) parts.push(`vegeta itself used ${fmt(p.vegeta ?? 0)} % of a core`);
  if ((p.other ?? 0) >= 20) parts.push(`other processes on the machine used ${fmt(p.other ?? 0)} %`);
  if (parts.length === 0) parts.push(`no CPU saturated: waits or queueing (see what PostgreSQL's backends were doing: ${step.db})`);
  return parts.join('; ');
}

async function main(): Promise<void> {
  const vegeta = vegetaPath();
  if (!vegeta) {
    console.error(`bench: vegeta ${VEGETA_VERSION} not found in \${LOADLAB_CACHE:-~/.cache/loadlab}/bin: run \`npm run setup\` first`);
    process.exit(2);
  }
  if (!existsSync(NEST_MAIN) || !existsSync(RAW_MAIN)) {
    console.error('bench: build first: npx tsc -b api (or npm run build)');
    process.exit(2);
  }
  if (!process.version.startsWith('v24')) log(`warning: running on Node ${process.version}; the project targets Node 24 (node_modules/.bin/node)`);
  const profileRate = argv['profile-rate'] === undefined ? undefined : num(argv['profile-rate'], 0, 'profile-rate');

  log(`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, vegeta ${VEGETA_VERSION}; ${QUICK ? 'QUICK mode' : 'full mode'}`);
  workDir = await mkdtemp(join(tmpdir(), 'loadlab-bench-'));
  const idleA = snapshot({});
  await sleep(2000);
  const idle = usageBetween(idleA, snapshot({}));
  log(`before the start, other processes use ${fmt(idle.percent.machine ?? 0)} % of a core${(idle.percent.machine ?? 0) >= 15 ? ': WARNING, the machine is not quiet, figures will be lower and noisier' : ''}`);
  cluster = await PostgresCluster.start();
  admin = new pg.Pool({ connectionString: cluster.url, max: CEILING_CLIENTS + 1 });
  const dataSource = createDataSource({ url: cluster.url, poolSize: 1, acquireTimeoutMs: 10_000, statementTimeoutMs: 0 });
  await dataSource.initialize();
  await migrate(dataSource);
  await dataSource.destroy();
  const { rows: version } = await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
  log(`PostgreSQL ${version[0]!.v} at ${cluster.url} (throwaway), schema migrated`);

  const tokens = new DeviceTokens(TOKEN_SECRET, 7 * 24 * 3600);
  const targets = new TargetWriter(tokens);
  log(`${fmt(DEVICES)} device tokens issued; steps: ${WARMUP_S} s warm-up + ${MEASURE_S} s measured; pass = p99 < ${P99_LIMIT_MS} ms, 0 errors, >= ${MIN_SENT_FRACTION * 100} % of the rate sent`);

  if (profileRate !== undefined) {
    await profileMode(profileRate, vegeta, targets);
    return;
  }

  const searches: Partial<Record<Kind, Search>> = {};
  for (const kind of ['nest', 'raw', 'nest-unbatched'] as const) {
    if (ONLY && ONLY !== kind) continue;
    log(`=== ${LABEL[kind]}: searching the highest sustainable rate (freshly truncated schema, own process, pool ${POOL})`);
    searches[kind] = await searchMaxRate(kind, targets, vegeta);
    const s = searches[kind]!;
    log(`=== ${LABEL[kind]}: max ${s.best ? `${fmt(s.best.rate)} req/s` : 'none passed'}${s.cappedAtMax ? ' (reached --max-rate)' : ''}; ${fmt(s.stored)} measurements stored, ${fmt(s.acknowledged)} acknowledged`);
  }
  const ceiling = argv['skip-ingest'] ? undefined : await ingestCeiling(QUICK ? 3 : 5);
  // The API's own ingest capacity: the mix's maximum is capped by its polls too.
  let ingest: Search | undefined;
  if (ceiling && (!ONLY || ONLY === 'nest')) {
    log(`=== ${LABEL.nest}: searching the highest sustainable rate of POST /v1/measurements alone`);
    ingest = await searchMaxRate('nest', targets, vegeta, 'ingest');
  }
  const stats = argv['skip-stats'] ? undefined : await statsLatency();

  // ---- summary ----
  const nest = searches.nest;
  const raw = searches.raw;
  const unbatched = searches['nest-unbatched'];
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const lines: string[] = [];
  const row = (label: string, s: Search | undefined) => {
    if (!s) return;
    const b = s.best;
    const f = s.firstFail;
    lines.push(
      `  ${label.padEnd(18)} ${b ? `${fmt(b.rate).padStart(7)} req/s` : '   none passed'}${s.cappedAtMax ? ' (= --max-rate)' : ''}` +
        (b ? `  p99 ${fmt(b.stats.latencyMs.p99, 1)} ms, ${fmt(b.stats.okRate / 2)} measurements/s, = ${fmt((b.rate * FLEET_INTERVAL_S) / 2)} devices at ${FLEET_INTERVAL_S} s` : ''),
    );
    if (b) lines.push(`  ${''.padEnd(18)} CPU at max (% of one core): ${formatUsage(b.cpu, [s.kind, 'postgres', 'vegeta', 'bench'])}; µs per request: ${perRequest(b.cpu, s.kind, b.rate)}`);
    if (b) lines.push(`  ${''.padEnd(18)} postgres at max: ${b.db}`);
    if (f) lines.push(`  ${''.padEnd(18)} first failing rate ${fmt(f.rate)} req/s: ${f.reasons.join('; ')}`);
    if (f) lines.push(`  ${''.padEnd(18)}   CPU there: ${formatUsage(f.cpu, [s.kind, 'postgres', 'vegeta', 'bench'])}; µs per request: ${perRequest(f.cpu, s.kind, f.rate)}`);
    if (f) lines.push(`  ${''.padEnd(18)}   postgres there: ${f.db}`);
    lines.push(`  ${''.padEnd(18)} limit: ${limitOf(f ?? b)}`);
  };
  lines.push('', '================ loadlab API benchmark: summary ================');
  lines.push(`machine: ${cpus().length} cores, load generator (vegeta ${VEGETA_VERSION}) on the same machine; PostgreSQL ${version[0]!.v}, fsync on, pool ${POOL}`);
  lines.push(`mix: per device and interval 1 POST /v1/measurements + 1 GET /v1/command; ${fmt(DEVICES)} devices; steps ${WARMUP_S}+${MEASURE_S} s${QUICK ? ' (QUICK: rough figures)' : ''}`);
  lines.push(`1. highest sustainable rate (p99 < ${P99_LIMIT_MS} ms, 0 errors):`);
  row(LABEL.nest, nest);
  row(LABEL.raw, raw);
  row(LABEL['nest-unbatched'], unbatched);
  if (nest?.best && raw?.best) {
    const ratio = nest.best.rate / raw.best.rate;
    lines.push(`  ratio nest/raw     ${fmt(ratio, 2)}   goal >= ${GOAL_RATIO}   ${verdict(ratio >= GOAL_RATIO)}   (the API as shipped: write batching on)`);
  } else if (nest && raw) lines.push('  ratio nest/raw     n/a (a server passed no step)');
  if (unbatched?.best && raw?.best) {
    const ratio = unbatched.best.rate / raw.best.rate;
    lines.push(`  ratio same SQL     ${fmt(ratio, 2)}   goal >= ${GOAL_RATIO}   ${verdict(ratio >= GOAL_RATIO)}   (NestJS with batching off vs raw: one statement per request in both)`);
  }
  if (nest?.polls && raw?.polls) {
    const us = (s: Step) => ((s.cpu.percent[s.kind] ?? 0) * 10_000) / s.rate;
    const pgUs = (s: Step) => ((s.cpu.percent.postgres ?? 0) * 10_000) / s.rate;
    lines.push(
      `  equal work (GET /v1/command only, ${fmt(EQUAL_WORK_RATE)} req/s, same SQL): server CPU per request nest ${fmt(us(nest.polls))} µs vs raw ${fmt(us(raw.polls))} µs ` +
        `(x${fmt(us(nest.polls) / us(raw.polls), 2)}); postgres ${fmt(pgUs(nest.polls))} vs ${fmt(pgUs(raw.polls))} µs; p99 ${fmt(nest.polls.stats.latencyMs.p99, 1)} vs ${fmt(raw.polls.stats.latencyMs.p99, 1)} ms`,
    );
    const common = nest.steps.find((n) => raw.steps.some((r) => r.rate === n.rate));
    const other = common && raw.steps.find((r) => r.rate === common.rate);
    if (common && other) {
      lines.push(
        `  same mix, same rate (${fmt(common.rate)} req/s): µs per request nest: ${perRequest(common.cpu, 'nest', common.rate)}; raw: ${perRequest(other.cpu, 'raw', other.rate)}`,
      );
    }
  }
  if (nest) {
    const rate = nest.best?.rate ?? 0;
    lines.push(
      `  fleet goal: ${fmt(FLEET_DEVICES)} devices every ${FLEET_INTERVAL_S} s = ${fmt(FLEET_RATE)} req/s; the API carries ${fmt((rate * FLEET_INTERVAL_S) / 2)} devices ` +
        `(${fmt(rate / FLEET_RATE, 2)} of the goal)   ${verdict(rate >= FLEET_RATE)}`,
    );
  }
  if (ceiling) {
    lines.push('2. measurement ingest:');
    const inMix = nest?.best ? (nest.best.stats.twoXxByRoute['POST /v1/measurements'] ?? 0) / nest.best.stats.seconds : NaN;
    const at = ingest?.best ? (ingest.best.stats.twoXxByRoute['POST /v1/measurements'] ?? 0) / ingest.best.stats.seconds : NaN;
    lines.push(`  through the NestJS API, measurements only, highest sustainable rate: ${fmt(at)} rows/s` + (ingest?.firstFail ? ` (first failing: ${fmt(ingest.firstFail.rate)} req/s: ${ingest.firstFail.reasons.join('; ')})` : ''));
    if (ingest?.best) lines.push(`    CPU there (% of one core): ${formatUsage(ingest.best.cpu, ['nest', 'postgres', 'vegeta', 'bench'])}; postgres: ${ingest.best.db}`);
    lines.push(`  (within the mix at its max: ${fmt(inMix)} rows/s)`);
    lines.push(`  batched-insert ceiling (INGEST_SQL, ${CEILING_BATCH_ROWS}-row batches x ${CEILING_CLIENTS} clients, same database): ${fmt(ceiling.rowsPerSecond)} rows/s (plain multi-row INSERT without rollups: ${fmt(ceiling.plainRowsPerSecond)} rows/s)`);
    lines.push(`  ratio API/ceiling  ${fmt(at / ceiling.rowsPerSecond, 3)}   (the fleet goal needs ${fmt(FLEET_RATE / 2)} rows/s: ceiling ${verdict(ceiling.rowsPerSecond >= FLEET_RATE / 2)}, API ${verdict(at >= FLEET_RATE / 2)})`);
  }
  if (stats && stats.length >= 2) {
    const [small, large, fleet] = stats as [StatsLatency, StatsLatency, StatsLatency | undefined];
    const ratio = large.medianMs / small.medianMs;
    lines.push(`3. GET /v1/stats latency (median of ${STATS_REQUESTS} sequential requests, ${fmt(small.reportingDevices)} reporting devices):`);
    lines.push(`  ${fmt(small.measurements)} measurements: ${fmt(small.medianMs, 2)} ms; ${fmt(large.measurements)} measurements: ${fmt(large.medianMs, 2)} ms`);
    lines.push(`  ratio 1M/10k       ${fmt(ratio, 2)}   goal <= ${GOAL_STATS_RATIO}   ${verdict(ratio <= GOAL_STATS_RATIO)}`);
    if (fleet) lines.push(`  (not a goal) ${fleet.label}: ${fmt(fleet.medianMs, 2)} ms: /stats grows with reporting devices, not with history`);
  }
  const allSteps = [...(nest?.steps ?? []), ...(raw?.steps ?? [])];
  if (allSteps.length) {
    const others = allSteps.map((s) => s.cpu.percent.other ?? 0);
    const avg = others.reduce((a, b) => a + b, 0) / others.length;
    const steal = allSteps.reduce((a, s) => a + (s.cpu.percent.steal ?? 0), 0) / allSteps.length;
    lines.push(
      `interference: other processes used ${fmt(avg)} % of a core on average during the load steps (max ${fmt(Math.max(...others))} %), hypervisor steal ${fmt(steal)} %` +
        (avg >= 15 ? '\n  WARNING: the machine was not quiet; the rates above are lower and noisier than on an idle machine' : ''),
    );
  }
  lines.push('================================================================');
  console.log(lines.join('\n'));
}

main()
  .then(() => cleanup())
  .then(() => process.exit(0))
  .catch(async (error: unknown) => {
    if (cleaning) return; // interrupted: the signal handler is cleaning up and exits 130
    console.error(`bench: could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await cleanup();
    process.exit(1);
  });
