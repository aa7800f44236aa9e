/**
 * Drives vegeta (open model, constant rate) and reads its results back.
 * Targets are JSON lines ({"method","url","header":{k:[v]},"body":base64}) read lazily from a file
 * written before the step, so generating them costs no CPU while the step is measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const VEGETA_VERSION = 'v12.13.0';

/** The binary scripts/setup.sh builds; undefined when it is missing. */
export function vegetaPath(): string | undefined {
  const cache = process.env.LOADLAB_CACHE || join(homedir(), '.cache', 'loadlab');
  const path = join(cache, 'bin', `vegeta-${VEGETA_VERSION}`);
  return existsSync(path) ? path : undefined;
}

export interface AttackOptions {
  vegeta: string;
  targetsFile: string;
  resultsFile: string;
  rate: number; // requests per second
  durationSeconds: number;
  maxWorkers: number;
  timeoutSeconds: number;
}

/** Starts `vegeta attack`; the promise resolves with its exit code. The attack is bounded by -duration and a hard kill. */
export function startAttack(o: AttackOptions, track: (child: ChildProcess) => void): { child: ChildProcess; done: Promise<number | null> } {
  const args = [
    'attack',
    '-format=json',
    '-lazy',
    `-targets=${o.targetsFile}`,
    `-rate=${Math.round(o.rate)}/1s`,
    `-duration=${o.durationSeconds}s`,
    `-max-workers=${o.maxWorkers}`,
    `-timeout=${o.timeoutSeconds}s`,
    '-max-body=160',
    '-http2=false',
    `-output=${o.resultsFile}`,
  ];
  const child = spawn(o.vegeta, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  const killer = setTimeout(() => child.kill('SIGKILL'), (o.durationSeconds + o.timeoutSeconds + 15) * 1000);
  const done = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(killer);
      if (code !== 0 && stderr) process.stderr.write(`vegeta attack: ${stderr}\n`);
      resolve(code);
    });
  });
  return { child, done };
}

export interface WindowStats {
  requests: number;
  seconds: number;
  sentRate: number; // requests started per second in the window
  okRate: number; // 2xx per second
  errors: number;
  statusCodes: Record<string, number>;
  errorSamples: string[];
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  byRoute: Record<string, { requests: number; p99: number; errors: number }>;
  twoXxByRoute: Record<string, number>;
  /** 2xx responses per route over the whole attack, warm-up included (to check what was stored) */
  all2xxByRoute: Record<string, number>;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Reads the results (`vegeta encode -to json`) and summarises the requests that STARTED after the
 * warm-up, i.e. in [first + warmup, first + warmup + measure).
 */
export async function analyse(vegeta: string, resultsFile: string, warmupSeconds: number, measureSeconds: number, track: (child: ChildProcess) => void): Promise<WindowStats> {
  const child = spawn(vegeta, ['encode', '-to', 'json', resultsFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  track(child);
  const failed = new Promise<never>((_, reject) => child.once('error', reject));
  failed.catch(() => undefined);
  const lines = createInterface({ input: child.stdout! });
  let first: number | undefined;
  const lat: number[] = [];
  const routeLat: Record<string, number[]> = {};
  const routeErr: Record<string, number> = {};
  const twoXxByRoute: Record<string, number> = {};
  const all2xxByRoute: Record<string, number> = {};
  const statusCodes: Record<string, number> = {};
  const errorSamples = new Set<string>();
  const routes = new Map<string, string>();
  let errors = 0;
  for await (const line of lines) {
    if (!line) continue;
    const r = JSON.parse(line) as { code: number; timestamp: string; latency: number; error: string; method: string; url: string; body: string | null };
    const t = Date.parse(r.timestamp); // ms resolution is enough for windowing
    first ??= t;
    const key = `${r.method} ${r.url}`;
    let route = routes.get(key);
    if (route === undefined) routes.set(key, (route = r.url ? `${r.method} ${new URL(r.url).pathname}` : '(no target)'));
    if (r.code >= 200 && r.code < 300 && !r.error) all2xxByRoute[route] = (all2xxByRoute[route] ?? 0) + 1;
    if (t < first + warmupSeconds * 1000 || t >= first + (warmupSeconds + measureSeconds) * 1000) continue;
    const ms = r.latency / 1e6;
    lat.push(ms);
    (routeLat[route] ??= []).push(ms);
    statusCodes[r.code] = (statusCodes[r.code] ?? 0) + 1;
    const ok = r.code >= 200 && r.code < 300 && !r.error;
    if (ok) twoXxByRoute[route] = (twoXxByRoute[route] ?? 0) + 1;
    else {
      errors++;
      routeErr[route] = (routeErr[route] ?? 0) + 1;
      if (errorSamples.size < 3) {
        const body = r.body ? Buffer.from(r.body, 'base64').toString('utf8').slice(0, 120) : '';
        errorSamples.add(`${route} ${r.code} ${r.error} ${body}`.trim());
      }
    }
  }
  await Promise.race([failed, new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))]);
  const sorted = Float64Array.from(lat).sort();
  const byRoute: WindowStats['byRoute'] = {};
  for (const [route, values] of Object.entries(routeLat)) {
    byRoute[route] = { requests: values.length, p99: percentile(Float64Array.from(values).sort(), 99), errors: routeErr[route] ?? 0 };
  }
  const ok = Object.values(twoXxByRoute).reduce((a, b) => a + b, 0);
  return {
    requests: lat.length,
    seconds: measureSeconds,
    sentRate: lat.length / measureSeconds,
    okRate: ok / measureSeconds,
    errors,
    statusCodes,
    errorSamples: [...errorSamples],
    latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : NaN },
    byRoute,
    twoXxByRoute,
    all2xxByRoute,
  };
}
