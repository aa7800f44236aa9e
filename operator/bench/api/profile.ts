import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { fmt } from './output.js';
import { Generator, runStep, type Step } from './load.js';
import { checkRoutes, startServer, stopServer, TOKEN_SECRET } from './servers.js';

/*
 * --profile-rate R: instead of the benchmark, one step of the device mix at R req/s against the
 * Nest API running under --cpu-prof, and where its CPU went in the measured window (self time by
 * package and by function), to see what the framework costs per request.
 */

export async function profileMode(ctx: BenchContext, rate: number): Promise<void> {
  const { options, db, log } = ctx;
  const profDir = join(ctx.workDir, 'profile');
  await db.resetFleet(options.devices, true, log);
  const server = await startServer('nest', { databaseUrl: db.url, pool: options.pool, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`], log });
  let step: Step;
  let generator: Generator | undefined;
  try {
    await checkRoutes(server);
    generator = await Generator.start({ baseUrl: server.url, devices: options.devices, tokenSecret: TOKEN_SECRET }, log);
    step = await runStep(ctx, server, generator, rate, 'NestJS API (under --cpu-prof)');
  } finally {
    await generator?.stop();
    await stopServer(server); // the profile is written on exit
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written (did the API exit cleanly on SIGTERM?)');
  summariseProfile(join(profDir, file), step.cpu.fromUs, step.cpu.toUs);
}

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
