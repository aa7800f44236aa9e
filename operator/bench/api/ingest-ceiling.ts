import pg from 'pg';
import { formatUsage, processTicks, snapshot, usageBetween, type CpuSnapshot, type CpuUsage } from '@loadlab/sandbox/procstat';
import { apiIngestSql } from './api-package.js';
import type { BenchContext } from './context.js';
import { fmt } from './output.js';

/*
 * What the database takes without HTTP and without the API: rows/s with the API's own ingest
 * statement (INGEST_SQL, rollups included) in big batches from a few clients, and with a plain
 * multi-row INSERT into the measurement table alone. The API's measurements-only maximum is
 * compared with the first.
 */

/** The API writer's defaults: WRITE_BATCH_MAX_ROWS and WRITE_BATCH_MAX_CONCURRENCY. */
export const CEILING_BATCH_ROWS = 500;
export const CEILING_CLIENTS = 4;

export interface Ceiling {
  rowsPerSecond: number;
  plainRowsPerSecond: number;
  cpu: CpuUsage;
}

const PLAIN_SQL = `INSERT INTO measurement (device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level)
  SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])
  ON CONFLICT DO NOTHING`;

export async function ingestCeiling(ctx: BenchContext, seconds: number): Promise<Ceiling> {
  const { options, db, log } = ctx;
  const { INGEST_SQL, ROLLUP_SHARDS } = await apiIngestSql();
  await db.resetFleet(options.devices, false, log);
  const devices = options.devices;
  const base = Date.now() - 24 * 3600_000;
  let nextRow = 0;
  // Column arrays as PostgreSQL array literals: cheap to build, so the client is not the bottleneck.
  const batch = (): unknown[] => {
    const start = nextRow;
    nextRow += CEILING_BATCH_ROWS;
    const ids: number[] = [];
    const times: string[] = [];
    for (let i = start; i < start + CEILING_BATCH_ROWS; i++) {
      ids.push((i % devices) + 1);
      times.push(new Date(base + Math.floor(i / devices) * 1000 + (i % 1000)).toISOString());
    }
    const col = (v: number) => `{${new Array(CEILING_BATCH_ROWS).fill(v).join(',')}}`;
    return [`{${ids.join(',')}}`, `{${times.join(',')}}`, col(800), col(1200), col(-15.5), col(21), col(60), col(1.2)];
  };
  const run = async (sql: string, withShard: boolean, label: string): Promise<{ rate: number; cpu: CpuUsage }> => {
    const groups = { postgres: db.ticks, bench: () => processTicks(process.pid) };
    const warmUntil = Date.now() + 1000;
    const endAt = warmUntil + seconds * 1000;
    let rows = 0;
    let first: CpuSnapshot | undefined;
    const worker = async () => {
      const client = await db.admin.connect();
      try {
        while (Date.now() < endAt) {
          const params = batch();
          if (withShard) params.push(Math.floor(Math.random() * ROLLUP_SHARDS));
          let result: pg.QueryResult<{ inserted?: number }>;
          try {
            result = await client.query<{ inserted?: number }>(sql, params);
          } catch (error) {
            // A deadlock victim runs again, as the API does.
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
