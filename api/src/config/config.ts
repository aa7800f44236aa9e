import { z } from 'zod';

/**
 * Every knob the API reads from its environment, validated once at start. An experiment turns the
 * knobs in the second half to move the bottleneck; README.md documents each one.
 */
const durationMs = z.coerce.number().int().min(0);

const baseSchema = z.object({
  DATABASE_URL: z
    .string({ error: 'is required, e.g. postgres://user:pass@127.0.0.1:5432/loadlab' })
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TOKEN_SECRET: z.string().min(16, 'must be at least 16 characters (it signs device tokens)'),
  TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).default(7 * 24 * 3600),
  // Verified tokens kept to skip their HMAC (auth/device-token.ts): about 120 bytes each, so the
  // default (a 200,000-device fleet and some) is ~30 MB; 0 turns the cache off.
  TOKEN_CACHE_SIZE: z.coerce.number().int().min(0).default(250_000),
  MIGRATE_ON_START: z.stringbool().default(true),
  // key: a device logs in with its serial and its key (auth/device-key.ts); serial: with its
  // serial alone, as the seed did (anyone who knows or guesses a serial gets that device's token).
  DEVICE_LOGIN: z.enum(['key', 'serial']).default('key'),
  // A client that sends its request slowly holds a socket and memory: the headers must all have
  // arrived within the first, the whole request (headers and body) within the second, and an idle
  // connection (no bytes either way) is closed after the third.
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  HTTP_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
});

/** Knobs that move the bottleneck. */
const knobsSchema = z.object({
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(1000).default(10),
  DB_POOL_ACQUIRE_TIMEOUT_MS: durationMs.default(5000),
  DB_STATEMENT_TIMEOUT_MS: durationMs.default(10000),
  WRITE_BATCH_MAX_ROWS: z.coerce.number().int().min(1).max(10000).default(500),
  WRITE_BATCH_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(4),
  CPU_COST_MS: z.coerce.number().min(0).max(1000).default(0),
  QUERY_DELAY_MS: z.coerce.number().min(0).max(10000).default(0),
  MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(2000),
  MAX_PENDING_WRITES: z.coerce.number().int().min(1).default(20000),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(65536),
  MAX_BATCH_MEASUREMENTS: z.coerce.number().int().min(1).max(1000).default(100),
  MEASUREMENT_MAX_AGE_HOURS: z.coerce.number().min(1).default(24 * 7),
  MEASUREMENT_MAX_SKEW_SECONDS: z.coerce.number().min(0).default(300),
  SHUTDOWN_GRACE_MS: durationMs.default(10000),
  // Polls for devices without a pending command answered from memory (commands/due-commands.ts);
  // false: every poll is a statement, as before the index.
  COMMAND_INDEX: z.stringbool().default(true),
  // The index is read in full this often besides on every reconnect (0: only on reconnects): the
  // bound on how long a command whose notification was lost waits.
  COMMAND_RECONCILE_MS: durationMs.default(30000),
});

const configSchema = baseSchema.extend(knobsSchema.shape).refine((c) => c.HTTP_HEADERS_TIMEOUT_MS <= c.HTTP_REQUEST_TIMEOUT_MS, {
  path: ['HTTP_HEADERS_TIMEOUT_MS'],
  message: 'must not be larger than HTTP_REQUEST_TIMEOUT_MS (the headers are part of the request)',
});

/**
 * What an experiment may set in the API's environment (the operator's spec.target.env allows
 * these names and no others): the knobs and the log level. Not the database, the token secret,
 * the address or the migrations, and nothing the Node.js runtime or the loader would read
 * (NODE_OPTIONS, LD_PRELOAD): those would run code or point the API elsewhere.
 */
export const EXPERIMENT_SETTABLE: readonly string[] = ['LOG_LEVEL', ...Object.keys(knobsSchema.shape)];

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/** Parses the environment; throws one ConfigError that lists every bad variable and what to do. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = configSchema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

export const CONFIG = Symbol('CONFIG');
