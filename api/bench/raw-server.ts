/**
 * The benchmark's baseline: a minimal raw Fastify 5 + pg server with the API's device routes,
 * running the SAME SQL statements (imported from the API's source) and the same HMAC token check,
 * on a pg.Pool of the same size. Deliberately minimal: one INGEST_SQL statement per request (no
 * write batching), hand-written validation, no metrics, no logging, no Nest, no TypeORM.
 *
 * Run as its own process (the API benchmark, operator/bench/api, starts it like the API, by the path
 * the package export "@loadlab/api/bench/raw-server" resolves to: api/dist/bench/raw-server.js) with
 * DATABASE_URL, TOKEN_SECRET, PORT, optional HOST (default 127.0.0.1), DB_POOL_SIZE (10),
 * TOKEN_TTL_SECONDS, DB_POOL_ACQUIRE_TIMEOUT_MS (5000) and DB_STATEMENT_TIMEOUT_MS (10000), the
 * API's defaults. The schema must already exist (the API's migrations).
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import pg from 'pg';
import { DeviceTokens } from '../src/auth/device-token.js';
import { NO_OP_COMMAND } from '../src/commands/commands.controller.js';
import { NEXT_COMMAND_SQL, type CommandRow } from '../src/commands/commands.repository.js';
import { LOGIN_SQL } from '../src/devices/devices.repository.js';
import { INGEST_SQL, ROLLUP_SHARDS } from '../src/measurements/ingest-sql.js';

const env = process.env;
const databaseUrl = env.DATABASE_URL;
const secret = env.TOKEN_SECRET;
if (!databaseUrl || !secret) {
  process.stderr.write('raw-server: DATABASE_URL and TOKEN_SECRET are required\n');
  process.exit(2);
}
const port = Number(env.PORT ?? 3001);
const host = env.HOST ?? '127.0.0.1';
const poolSize = Number(env.DB_POOL_SIZE ?? 10);
const tokens = new DeviceTokens(secret, Number(env.TOKEN_TTL_SECONDS ?? 7 * 24 * 3600));
const maxAgeMs = Number(env.MEASUREMENT_MAX_AGE_HOURS ?? 24 * 7) * 3600_000;
const maxSkewMs = Number(env.MEASUREMENT_MAX_SKEW_SECONDS ?? 300) * 1000;

const pool = new pg.Pool({
  connectionString: databaseUrl,
  max: poolSize,
  connectionTimeoutMillis: Number(env.DB_POOL_ACQUIRE_TIMEOUT_MS ?? 5000),
  statement_timeout: Number(env.DB_STATEMENT_TIMEOUT_MS ?? 10000) || undefined,
  application_name: 'loadlab-raw-baseline',
  maxUses: 100_000,
});
pool.on('error', () => undefined); // an idle client lost its connection; the pool replaces it

const app = Fastify({ logger: false, bodyLimit: 65536 });

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function deviceOf(request: FastifyRequest): number {
  const header = request.headers.authorization;
  if (!header?.startsWith('Bearer ')) throw new HttpError(401, 'missing device token');
  const claims = tokens.verify(header.slice(7).trim());
  if (!claims) throw new HttpError(401, 'invalid or expired device token');
  return claims.deviceId;
}

const FIELDS = ['chargeNow', 'chargeFull', 'chargeRate', 'ambientTemp', 'waterTemp', 'waterLevel'] as const;

/** The same acceptance rules as the API's zod schema, written out by hand. */
function parseMeasurement(body: unknown): { deviceTime: string; values: number[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body must be one measurement object');
  const m = body as Record<string, unknown>;
  if (Object.keys(m).length !== 7) throw new HttpError(400, 'unexpected or missing fields');
  const deviceTime = m.deviceTime;
  const t = typeof deviceTime === 'string' ? Date.parse(deviceTime) : NaN;
  if (Number.isNaN(t)) throw new HttpError(400, 'deviceTime: must be an ISO 8601 date-time');
  const now = Date.now();
  if (t > now + maxSkewMs || t < now - maxAgeMs) throw new HttpError(400, 'deviceTime: out of the accepted window');
  const values = FIELDS.map((field) => {
    const v = m[field];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `${field}: must be a number`);
    return v;
  });
  const [chargeNow, chargeFull, chargeRate, ambientTemp, waterTemp, waterLevel] = values as [number, number, number, number, number, number];
  if (chargeNow < 0 || chargeNow > chargeFull || chargeFull <= 0 || chargeFull > 100_000) throw new HttpError(400, 'chargeNow/chargeFull out of range');
  if (Math.abs(chargeRate) > 10_000 || ambientTemp < -50 || ambientTemp > 70 || waterTemp < -20 || waterTemp > 110 || waterLevel < 0 || waterLevel > 20) {
    throw new HttpError(400, 'value out of range');
  }
  return { deviceTime: deviceTime as string, values };
}

const UNAVAILABLE = /timeout exceeded when trying to connect|Connection terminated|ECONNREFUSED|ECONNRESET/;

function fail(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof HttpError) return reply.code(error.status).send({ statusCode: error.status, message: error.message });
  const e = error as { code?: string; message?: string };
  if (e.code === '23503') return reply.code(401).send({ statusCode: 401, message: 'device is not registered' });
  if (UNAVAILABLE.test(String(e.message)) || e.code?.startsWith('08') || e.code?.startsWith('57P')) {
    return reply.code(503).header('Retry-After', '1').send({ statusCode: 503, message: 'database unavailable' });
  }
  process.stderr.write(`raw-server: ${String(e.message ?? error)}\n`);
  return reply.code(500).send({ statusCode: 500, message: 'unexpected error' });
}

app.get('/healthz', async () => ({ status: 'ok' }));

app.post('/v1/devices/login', async (request, reply) => {
  try {
    const serial = (request.body as { serial?: unknown } | null)?.serial;
    if (typeof serial !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(serial)) throw new HttpError(400, 'serial: invalid');
    let { rows } = await pool.query<{ id: string }>({ name: 'login', text: LOGIN_SQL, values: [serial] });
    if (rows.length === 0) ({ rows } = await pool.query<{ id: string }>({ name: 'login', text: LOGIN_SQL, values: [serial] }));
    const deviceId = Number(rows[0]!.id);
    const { token, expiresAt } = tokens.issue(deviceId);
    return reply.code(200).send({ deviceId, token, expiresAt: new Date(expiresAt * 1000).toISOString() });
  } catch (error) {
    return fail(reply, error);
  }
});

app.post('/v1/measurements', async (request, reply) => {
  try {
    const deviceId = deviceOf(request);
    if (!/^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '')) throw new HttpError(415, 'send application/json');
    const { deviceTime, values } = parseMeasurement(request.body);
    const params = [[deviceId], [deviceTime], ...values.map((v) => [v]), Math.floor(Math.random() * ROLLUP_SHARDS)];
    try {
      await pool.query({ name: 'ingest', text: INGEST_SQL, values: params });
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01') throw error;
      await pool.query({ name: 'ingest', text: INGEST_SQL, values: params }); // deadlock victim: run it again, as the API does
    }
    return reply.code(201).send({ accepted: 1 });
  } catch (error) {
    return fail(reply, error);
  }
});

app.get('/v1/command', async (request, reply) => {
  try {
    const deviceId = deviceOf(request);
    const { rows } = await pool.query<CommandRow>({ name: 'next_command', text: NEXT_COMMAND_SQL, values: [deviceId] });
    const row = rows[0];
    if (!row || row.id === null) return reply.send(NO_OP_COMMAND);
    return reply.send({ id: Number(row.id), chargeOn: row.charge_on, fillOn: row.fill_on, flushLitres: row.flush_litres, notBefore: row.not_before!.toISOString() });
  } catch (error) {
    return fail(reply, error);
  }
});

const shutdown = () => {
  void app
    .close()
    .then(() => pool.end())
    .finally(() => process.exit(0));
  setTimeout(() => process.exit(1), 5000).unref();
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

try {
  await app.listen({ port, host });
  process.stdout.write(`raw-server: listening on http://${host}:${(app.server.address() as { port: number }).port} (pool ${poolSize})\n`);
} catch (error) {
  process.stderr.write(`raw-server: failed to start: ${String(error)}\n`);
  process.exit(1);
}
