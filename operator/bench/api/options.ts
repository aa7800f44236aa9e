import { parseArgs } from 'node:util';
import { SERVER_KINDS, type ServerKind } from './servers.js';

/* The benchmark's command line: parsed into options, nothing else (main.ts acts on them). */

export const USAGE = `usage: npm run bench:api -- [options]   (after a build: node operator/dist/bench/api/main.js [options])
  --quick            short steps (smoke test): 1 s warm-up + 3 s measured, 2 refinement steps
  --duration S       measured seconds per step (default 8; --quick 3)
  --warmup S         warm-up seconds per step, not measured (default 2; --quick 1)
  --max-rate R       highest request rate tried, req/s (default 20000)
  --start-rate R     first rate tried, req/s (default 1000)
  --devices N        registered devices, each with its own token (default 200000)
  --pool N           DB pool size of both servers (default 10, the API's default)
  --only KIND        search one server only (no ratio): nest, raw, or nest-unbatched (the API with
                     WRITE_BATCH_MAX_ROWS=1 COMMAND_INDEX=false: the raw server's SQL, one statement
                     per request)
  --skip-ingest      skip the ingest-ceiling measurement
  --skip-stats       skip the /stats measurement
  --profile-rate R   instead of the benchmark: run the Nest API under --cpu-prof at R req/s for one
                     step and print where its CPU goes (self time by package and by function)`;

export interface BenchOptions {
  quick: boolean;
  measureS: number;
  warmupS: number;
  maxRate: number;
  startRate: number;
  devices: number;
  pool: number;
  /** Bisection steps after the coarse search. */
  fineSteps: number;
  only?: ServerKind;
  skipIngest: boolean;
  skipStats: boolean;
  profileRate?: number;
}

/** A command line the benchmark cannot run with; the message says what to change. */
export class UsageError extends Error {}

/** The options, or 'help' for --help; throws UsageError on a bad command line. */
export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
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
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const only = values.only;
  if (only !== undefined && !(SERVER_KINDS as readonly string[]).includes(only)) throw new UsageError(`--only must be one of ${SERVER_KINDS.join(', ')}, got "${only}"`);
  const quick = values.quick;
  const maxRate = positive(values['max-rate'], 20_000, 'max-rate');
  return {
    quick,
    measureS: positive(values.duration, quick ? 3 : 8, 'duration'),
    warmupS: positive(values.warmup, quick ? 1 : 2, 'warmup'),
    maxRate,
    startRate: Math.min(maxRate, positive(values['start-rate'], 1000, 'start-rate')),
    devices: Math.floor(positive(values.devices, 200_000, 'devices')),
    pool: Math.floor(positive(values.pool, 10, 'pool')),
    fineSteps: quick ? 2 : 3,
    ...(only !== undefined ? { only: only as ServerKind } : {}),
    skipIngest: values['skip-ingest'],
    skipStats: values['skip-stats'],
    ...(values['profile-rate'] !== undefined ? { profileRate: positive(values['profile-rate'], 0, 'profile-rate') } : {}),
  };
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got "${value}"`);
  return n;
}
