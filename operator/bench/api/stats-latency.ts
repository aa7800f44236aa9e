import { formatUsage, processTicks, snapshot, usageBetween } from '@loadlab/sandbox/procstat';
import type { BenchContext } from './context.js';
import { fmt } from './output.js';
import { startServer, stopServer, type ServerUnderTest } from './servers.js';

/*
 * GET /v1/stats latency with few and with many stored measurements from the same reporting devices:
 * the rollups the ingest statement keeps make /stats independent of history, and this shows it.
 * Measurements are loaded straight in SQL (generate_series), the rollups rebuilt from them.
 */

export const STATS_REQUESTS = 50;
const STATS_DEVICES = 10_000;

export interface StatsLatency {
  label: string;
  measurements: number;
  reportingDevices: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

/** [10k measurements, 1M measurements, and (not a goal) 1M from the whole fleet when it is larger]. */
export async function statsLatency(ctx: BenchContext): Promise<StatsLatency[]> {
  const { options, db, log } = ctx;
  await db.resetFleet(options.devices, false, log);
  const server = await startServer('nest', { databaseUrl: db.url, pool: options.pool, log });
  try {
    const statsDevices = Math.min(STATS_DEVICES, options.devices);
    const perDevice = Math.ceil(1_000_000 / statsDevices);
    log(`/stats: ${fmt(statsDevices)} reporting devices (of ${fmt(options.devices)} registered); 1 reading each, then ${perDevice} each`);
    await loadMeasurements(ctx, statsDevices, 0, 0);
    await rebuildRollups(ctx);
    const small = await measureStats(ctx, server, `${fmt(statsDevices)} measurements`, statsDevices);
    const started = performance.now();
    await loadMeasurements(ctx, statsDevices, 1, perDevice - 1);
    await rebuildRollups(ctx);
    log(`  loaded ${fmt(statsDevices * perDevice)} measurements in ${fmt((performance.now() - started) / 1000, 1)} s (SQL generate_series + rollup rebuild + VACUUM ANALYZE)`);
    const large = await measureStats(ctx, server, `${fmt(statsDevices * perDevice)} measurements`, statsDevices * perDevice);
    const out = [small, large];
    if (options.devices > statsDevices) {
      // Not a goal: what /stats costs when the whole fleet reports (device_latest has a row per device).
      await db.admin.query('TRUNCATE measurement, measurement_hourly, device_latest');
      const each = Math.max(1, Math.round(1_000_000 / options.devices));
      await loadMeasurements(ctx, options.devices, 0, each - 1);
      await rebuildRollups(ctx);
      out.push(await measureStats(ctx, server, `${fmt(options.devices * each)} measurements from all ${fmt(options.devices)} devices`, options.devices * each));
    }
    return out;
  } finally {
    await stopServer(server);
  }
}

/** Devices 1..devices, readings k = fromK..toK each, 30 s apart back from now. */
async function loadMeasurements(ctx: BenchContext, devices: number, fromK: number, toK: number): Promise<void> {
  await ctx.db.admin.query(
    `INSERT INTO measurement (device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level)
     SELECT d, now() - k * interval '30 seconds', 200 + (d * 37) % 1000, 1200, -15.5, 18 + d % 8, 40 + (d * 13 + k) % 50 + 0.25, 0.5 + (d % 15) / 10.0
     FROM generate_series($1::int, $2::int) k, generate_series(1, $3::int) d`,
    [fromK, toK, devices],
  );
}

/** Rebuilds both rollups from the measurement table, exactly what INGEST_SQL would have accumulated. */
async function rebuildRollups(ctx: BenchContext): Promise<void> {
  const client = await ctx.db.admin.connect();
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
  await ctx.db.admin.query('VACUUM ANALYZE');
  await ctx.db.admin.query('CHECKPOINT');
}

async function measureStats(ctx: BenchContext, server: ServerUnderTest, label: string, expected: number): Promise<StatsLatency> {
  const groups = { nest: () => processTicks(server.pid), postgres: ctx.db.ticks, bench: () => processTicks(process.pid) };
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
  ctx.log(
    `  /v1/stats, ${label}: median ${fmt(result.medianMs, 2)} ms, p90 ${fmt(result.p90Ms, 2)} ms, max ${fmt(result.maxMs, 2)} ms (${STATS_REQUESTS} sequential requests) | ` +
      `CPU % of one core: ${formatUsage(cpu, ['nest', 'postgres', 'bench'])}`,
  );
  return result;
}
