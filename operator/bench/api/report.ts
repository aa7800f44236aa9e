import { cpus } from 'node:os';
import { formatUsage } from '@loadlab/sandbox/procstat';
import { fmt } from './output.js';
import { CEILING_BATCH_ROWS, CEILING_CLIENTS, type Ceiling } from './ingest-ceiling.js';
import { cpuOrder, MAX_IN_FLIGHT, P99_LIMIT_MS, perRequest, SATURATED_PERCENT, type Step } from './load.js';
import type { BenchOptions } from './options.js';
import { EQUAL_WORK_RATE, type Search } from './search.js';
import { SERVER_LABEL, type ServerKind } from './servers.js';
import { STATS_REQUESTS, type StatsLatency } from './stats-latency.js';

/* The summary the benchmark prints at the end: each figure, its baseline and the goals. */

/** The API as shipped, and the same SQL without batching, against the raw baseline. */
const GOAL_RATIO = 0.8;
const GOAL_STATS_RATIO = 1.5;
/** The fleet goal: 200,000 devices, each one measurement and one poll every 30 s. */
const FLEET_DEVICES = 200_000;
const FLEET_INTERVAL_S = 30;
const FLEET_RATE = (2 * FLEET_DEVICES) / FLEET_INTERVAL_S;

export interface Results {
  options: BenchOptions;
  postgresVersion: string;
  searches: Partial<Record<ServerKind, Search>>;
  ceiling?: Ceiling;
  /** The API's measurements-only search. */
  ingest?: Search;
  stats?: StatsLatency[];
}

const measurementsPerSecond = (step: Step): number => okOf(step, 'measurements') / step.load.seconds;

function okOf(step: Step, endpoint: 'measurements' | 'command'): number {
  const responses = step.load.endpoints[endpoint]?.responses ?? {};
  return Object.entries(responses).reduce((sum, [code, n]) => sum + (code.startsWith('2') ? n : 0), 0);
}

/** What limited a step, from its CPU figures and how the generator fared. */
function limitOf(step: Step | undefined): string {
  if (!step) return 'n/a';
  const p = step.cpu.percent;
  const server = p[step.kind] ?? 0;
  const parts: string[] = [];
  if (server >= 85) parts.push(`the server process is CPU-bound (${fmt(server)} % of a core; its JS runs on one event loop)`);
  if ((p.machine ?? 0) >= SATURATED_PERCENT) parts.push(`the machine's 2 cores are saturated (${fmt(p.machine ?? 0)} %)`);
  if (step.load.capReached) parts.push(`the generator's ${MAX_IN_FLIGHT} requests in flight were all waiting on the server`);
  if ((p.generator ?? 0) >= 60) parts.push(`the generator itself used ${fmt(p.generator ?? 0)} % of a core`);
  if ((p.other ?? 0) >= 20) parts.push(`other processes on the machine used ${fmt(p.other ?? 0)} %`);
  if (parts.length === 0) parts.push(`no CPU saturated: waits or queueing (see what PostgreSQL's backends were doing: ${step.db})`);
  return parts.join('; ');
}

export function printSummary(results: Results): void {
  const { options, searches, ceiling, ingest, stats } = results;
  const nest = searches.nest;
  const raw = searches.raw;
  const unbatched = searches['nest-unbatched'];
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const lines: string[] = [];
  const pad = ''.padEnd(18);
  const row = (s: Search | undefined) => {
    if (!s) return;
    const b = s.best;
    const f = s.firstFail;
    lines.push(
      `  ${SERVER_LABEL[s.kind].padEnd(18)} ${b ? `${fmt(b.rate).padStart(7)} req/s` : '   none passed'}${s.cappedAtMax ? ' (= --max-rate)' : ''}` +
        (b ? `  p99 ${fmt(b.load.latencyMs.p99, 1)} ms, ${fmt(measurementsPerSecond(b))} measurements/s, = ${fmt((b.rate * FLEET_INTERVAL_S) / 2)} devices at ${FLEET_INTERVAL_S} s` : ''),
    );
    if (b) lines.push(`  ${pad} CPU at max (% of one core): ${formatUsage(b.cpu, cpuOrder(s.kind))}; µs per request: ${perRequest(b.cpu, s.kind, b.rate)}`);
    if (b) lines.push(`  ${pad} postgres at max: ${b.db}`);
    if (f) lines.push(`  ${pad} first failing rate ${fmt(f.rate)} req/s: ${f.reasons.join('; ')}`);
    if (f) lines.push(`  ${pad}   CPU there: ${formatUsage(f.cpu, cpuOrder(s.kind))}; µs per request: ${perRequest(f.cpu, s.kind, f.rate)}`);
    if (f) lines.push(`  ${pad}   postgres there: ${f.db}`);
    lines.push(`  ${pad} limit: ${limitOf(f ?? b)}`);
  };
  lines.push('', '================ loadlab API benchmark: summary ================');
  lines.push(
    `machine: ${cpus().length} cores; load generator: the local driver's engine (undici, in-process pacing, cap ${MAX_IN_FLIGHT} in flight) in its own process on the same machine; ` +
      `PostgreSQL ${results.postgresVersion}, fsync on, pool ${options.pool}`,
  );
  lines.push(`mix: per device and interval 1 POST /v1/measurements + 1 GET /v1/command; ${fmt(options.devices)} devices; steps ${options.warmupS}+${options.measureS} s${options.quick ? ' (QUICK: rough figures)' : ''}`);
  lines.push(`1. highest sustainable rate (p99 < ${P99_LIMIT_MS} ms, 0 errors, the generator on schedule: nothing dropped, few late):`);
  row(nest);
  row(raw);
  row(unbatched);
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
    const toDb = (s: Step) => (s.pollsToDatabase === undefined ? 'n/a' : `${fmt(s.pollsToDatabase * 100, 1)} %`);
    const same = unbatched?.polls;
    lines.push(
      `  polls only, nothing due (${fmt(EQUAL_WORK_RATE)} req/s): server CPU per poll nest ${fmt(us(nest.polls))} µs` +
        (same ? `, nest without the poll index ${fmt(us(same))} µs` : '') +
        ` vs raw ${fmt(us(raw.polls))} µs; postgres per poll ${fmt(pgUs(nest.polls))}${same ? ` / ${fmt(pgUs(same))}` : ''} vs ${fmt(pgUs(raw.polls))} µs ` +
        `(background work included); polls sent to the database: nest ${toDb(nest.polls)}${same ? `, without the index ${toDb(same)}` : ''}, raw 100 %; ` +
        `p99 ${fmt(nest.polls.load.latencyMs.p99, 1)}${same ? ` / ${fmt(same.load.latencyMs.p99, 1)}` : ''} vs ${fmt(raw.polls.load.latencyMs.p99, 1)} ms`,
    );
    const common = nest.steps.find((n) => raw.steps.some((r) => r.rate === n.rate));
    const other = common && raw.steps.find((r) => r.rate === common.rate);
    if (common && other) {
      lines.push(`  same mix, same rate (${fmt(common.rate)} req/s): µs per request nest: ${perRequest(common.cpu, 'nest', common.rate)}; raw: ${perRequest(other.cpu, 'raw', other.rate)}`);
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
    const inMix = nest?.best ? measurementsPerSecond(nest.best) : NaN;
    const at = ingest?.best ? measurementsPerSecond(ingest.best) : NaN;
    lines.push(
      `  through the NestJS API, measurements only, highest sustainable rate: ${fmt(at)} rows/s` +
        (ingest?.firstFail ? ` (first failing: ${fmt(ingest.firstFail.rate)} req/s: ${ingest.firstFail.reasons.join('; ')})` : ''),
    );
    if (ingest?.best) lines.push(`    CPU there (% of one core): ${formatUsage(ingest.best.cpu, cpuOrder('nest'))}; postgres: ${ingest.best.db}`);
    lines.push(`  (within the mix at its max: ${fmt(inMix)} rows/s)`);
    lines.push(
      `  batched-insert ceiling (INGEST_SQL, ${CEILING_BATCH_ROWS}-row batches x ${CEILING_CLIENTS} clients, same database): ${fmt(ceiling.rowsPerSecond)} rows/s ` +
        `(plain multi-row INSERT without rollups: ${fmt(ceiling.plainRowsPerSecond)} rows/s)`,
    );
    lines.push(
      `  ratio API/ceiling  ${fmt(at / ceiling.rowsPerSecond, 3)}   (the fleet goal needs ${fmt(FLEET_RATE / 2)} rows/s: ceiling ${verdict(ceiling.rowsPerSecond >= FLEET_RATE / 2)}, API ${verdict(at >= FLEET_RATE / 2)})`,
    );
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
