/*
 * The write path's SQL, in a module of its own that imports nothing: the API's writer uses it, and
 * so do the benchmark's raw baseline server (api/bench/raw-server.ts) and its batched-insert ceiling
 * (operator/bench/api/ingest-ceiling.ts, through the package export "@loadlab/api/ingest-sql"), so
 * the baseline and the ceiling always run the statement the API runs.
 */

/**
 * One statement stores the rows and keeps both /stats rollups in step, so they can never disagree.
 * Rows arrive as arrays (one parameter per column) so the statement text never changes and its
 * plan is cached. Duplicates (same device, same device time) are skipped: a retried report is
 * acknowledged but not stored twice.
 */
export const INGEST_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])
    AS t(device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level)
), inserted AS (
  INSERT INTO measurement (device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level)
  SELECT * FROM input ORDER BY device_id, device_time
  ON CONFLICT (device_id, device_time) DO NOTHING
  RETURNING device_id, device_time, charge_now, ambient_temp, water_temp, water_level
), hourly AS (
  INSERT INTO measurement_hourly AS h (hour_of_day, shard, measurements, water_temp_sum, water_temp_sumsq)
  SELECT extract(hour FROM device_time AT TIME ZONE 'UTC')::smallint, $9::smallint, count(*),
         sum(water_temp), sum(water_temp * water_temp)
  FROM inserted GROUP BY 1 ORDER BY 1
  ON CONFLICT (hour_of_day, shard) DO UPDATE SET
    measurements = h.measurements + excluded.measurements,
    water_temp_sum = h.water_temp_sum + excluded.water_temp_sum,
    water_temp_sumsq = h.water_temp_sumsq + excluded.water_temp_sumsq
), latest AS (
  INSERT INTO device_latest AS l (device_id, device_time, charge_now, ambient_temp, water_temp, water_level)
  SELECT DISTINCT ON (device_id) device_id, device_time, charge_now, ambient_temp, water_temp, water_level
  FROM inserted ORDER BY device_id, device_time DESC
  ON CONFLICT (device_id) DO UPDATE SET
    device_time = excluded.device_time, charge_now = excluded.charge_now, ambient_temp = excluded.ambient_temp,
    water_temp = excluded.water_temp, water_level = excluded.water_level
  WHERE l.device_time < excluded.device_time
)
SELECT count(*)::int AS inserted FROM inserted`;

/** Concurrent batches spread their hour-of-day updates over this many rows ($9 of INGEST_SQL). */
export const ROLLUP_SHARDS = 16;
