import type { BenchContext } from './context.js';
import { fmt } from './output.js';
import { Generator, runStep, type Step } from './load.js';
import { INTERFERENCE_PERCENT } from './quiet.js';
import { checkRoutes, SERVER_LABEL, serverFailed, startServer, stopServer, TOKEN_SECRET, waitResponsive, type ServerKind } from './servers.js';
import type { LoadMode } from './step-plan.js';

/*
 * The highest sustainable rate of one server: coarse steps (x1.5 from --start-rate up to
 * --max-rate, or halving down when the start already fails), then bisection between the last pass
 * and the first failure. A step passes when p99 < 100 ms, nothing failed and the generator kept its
 * schedule (load.ts), so the search ends where the server stops keeping up, not the generator.
 */

export interface Search {
  kind: ServerKind;
  mode: LoadMode;
  /** Every step run, repeated ones included. */
  steps: Step[];
  best?: Step;
  firstFail?: Step;
  cappedAtMax: boolean;
  /** Rows in the measurement table after the search, and POST /v1/measurements answered 2xx. */
  stored: number;
  acknowledged: number;
  /** The equal-work step: polls only at EQUAL_WORK_RATE (mix searches). */
  polls?: Step;
}

/** Rate of the equal-work comparison (polls only), low enough for both servers. */
export const EQUAL_WORK_RATE = 1000;
const COARSE_FACTOR = 1.5;

const roundRate = (r: number): number => (r >= 2000 ? Math.round(r / 50) * 50 : Math.max(10, Math.round(r / 10) * 10));

export async function searchMaxRate(ctx: BenchContext, kind: ServerKind, mode: LoadMode = 'mix'): Promise<Search> {
  const { options, db, log } = ctx;
  const label = mode === 'ingest' ? `${SERVER_LABEL[kind]} (measurements only)` : SERVER_LABEL[kind];
  await db.resetFleet(options.devices, true, log);
  const server = await startServer(kind, { databaseUrl: db.url, pool: options.pool, log });
  let generator: Generator | undefined;
  try {
    await checkRoutes(server);
    generator = await Generator.start({ baseUrl: server.url, devices: options.devices, tokenSecret: TOKEN_SECRET }, log);
    const steps: Step[] = [];
    let best: Step | undefined;
    let fail: Step | undefined;
    const attempt = async (rate: number): Promise<boolean> => {
      let step = await runStep(ctx, server, generator!, rate, label, mode);
      steps.push(step);
      if (!step.pass && (step.cpu.percent.other ?? 0) >= INTERFERENCE_PERCENT) {
        log(`  other processes used ${fmt(step.cpu.percent.other ?? 0)} % of a core during that step: repeating it once`);
        await db.settle(3000);
        await waitResponsive(server);
        step = await runStep(ctx, server, generator!, rate, label, mode);
        steps.push(step);
      }
      if (step.pass && (!best || rate > best.rate)) best = step;
      if (!step.pass && (!fail || rate < fail.rate)) fail = step;
      const failed = serverFailed(server);
      if (failed) throw new Error(failed);
      await db.settle(step.pass ? 1000 : 3000);
      await waitResponsive(server);
      return step.pass;
    };
    // Coarse: up until the first failure (or down, halving, when the start rate already fails).
    let rate = options.startRate;
    if (await attempt(rate)) {
      while (rate < options.maxRate) {
        rate = Math.min(options.maxRate, roundRate(rate * COARSE_FACTOR));
        if (!(await attempt(rate))) break;
      }
    } else {
      while (rate > 20) {
        rate = roundRate(rate / 2);
        if (await attempt(rate)) break;
      }
    }
    // Fine: bisection.
    for (let i = 0; i < options.fineSteps && best && fail; i++) {
      const lo: number = best.rate;
      const hi: number = fail.rate;
      if (hi - lo <= Math.max(20, 0.04 * lo)) break;
      const mid = roundRate((lo + hi) / 2);
      if (mid <= lo || mid >= hi) break;
      await attempt(mid);
    }
    const acknowledged = steps.reduce((sum, s) => sum + (s.load.acknowledged.measurements ?? 0), 0) + 1; // +1: checkRoutes
    const stored = await db.measurementCount();
    // Polls only, at the same rate for every server, no command due: the raw server and the API
    // without its poll index run the same statement (the frameworks compared: HTTP, auth, routing,
    // pg client, no write batching in the picture); the API as shipped answers from memory.
    const polls = mode !== 'mix' ? undefined : await runStep(ctx, server, generator, EQUAL_WORK_RATE, `${SERVER_LABEL[kind]} (equal work)`, 'polls');
    return { kind, mode, steps, best, firstFail: fail, cappedAtMax: !!best && best.rate >= options.maxRate, stored, acknowledged, polls };
  } finally {
    await generator?.stop();
    await stopServer(server);
  }
}
