import { Inject, Injectable } from '@nestjs/common';
import { Database, pgCode } from '../db/database.js';
import type { MeasurementInput } from './measurement.schema.js';

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

// Concurrent batches spread their hour-of-day updates over this many rows.
const ROLLUP_SHARDS = 16;

/** Readings of one device, as one request brought them. */
export interface DeviceReadings {
  deviceId: number;
  rows: readonly MeasurementInput[];
}

@Injectable()
export class MeasurementsRepository {
  constructor(@Inject(Database) private readonly db: Database) {}

  /** Stores the readings of several requests in one statement; resolves to how many were new. */
  async insert(batch: readonly DeviceReadings[]): Promise<number> {
    const columns: unknown[][] = [[], [], [], [], [], [], [], []];
    for (const { deviceId, rows } of batch) {
      for (const m of rows) {
        columns[0]!.push(deviceId);
        columns[1]!.push(m.deviceTime);
        columns[2]!.push(m.chargeNow);
        columns[3]!.push(m.chargeFull);
        columns[4]!.push(m.chargeRate);
        columns[5]!.push(m.ambientTemp);
        columns[6]!.push(m.waterTemp);
        columns[7]!.push(m.waterLevel);
      }
    }
    const params = [...columns, Math.floor(Math.random() * ROLLUP_SHARDS)];
    let result: { inserted: number }[];
    try {
      result = await this.db.run<{ inserted: number }>('ingest', INGEST_SQL, params);
    } catch (error) {
      // Two batches carrying the same device can deadlock on its rollup row; PostgreSQL aborts
      // one of them, and running it again is the standard answer.
      if (pgCode(error) !== '40P01') throw error;
      result = await this.db.run<{ inserted: number }>('ingest', INGEST_SQL, params);
    }
    return result[0]?.inserted ?? 0;
  }
}
