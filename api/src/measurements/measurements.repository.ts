import { Inject, Injectable } from '@nestjs/common';
import { Database, pgCode } from '../db/database.js';
import { INGEST_SQL, ROLLUP_SHARDS } from './ingest-sql.js';
import type { MeasurementInput } from './measurement.schema.js';

/** Readings of one device, as one request brought them. */
export interface DeviceReadings {
  deviceId: number;
  rows: readonly MeasurementInput[];
}

/**
 * A reading smaller in magnitude than any sensor resolves (1e-9 of its unit) is stored as 0.
 * PostgreSQL refuses float8 arithmetic that underflows ("value out of range: underflow", the
 * rollup squares waterTemp): 1e-200 °C is valid JSON and in range, and must not be a 500.
 */
function flushTiny(value: number): number {
  return Math.abs(value) < 1e-9 ? 0 : value;
}

@Injectable()
export class MeasurementsRepository {
  constructor(@Inject(Database) private readonly db: Database) {}

  /** Stores the readings of several requests in one statement; resolves to how many were new. */
  async insert(batch: readonly DeviceReadings[]): Promise<number> {
    const params = [...columnsOf(batch), Math.floor(Math.random() * ROLLUP_SHARDS)];
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

  /**
   * Which rows of a batch (0-based, in the batch's order) differ from the reading stored for the
   * same device and device time. Asked only when an insert stored fewer rows than it was given:
   * stored readings never change, so after the insert a row either equals the stored one (it was
   * stored now, or earlier by a retry) or conflicts with it.
   */
  async conflicts(batch: readonly DeviceReadings[]): Promise<number[]> {
    const rows = await this.db.run<{ row: number }>('ingest-conflicts', CONFLICTS_SQL, columnsOf(batch));
    return rows.map((r) => r.row);
  }
}

/** One array per column (the statements' parameters), values as they are stored. */
function columnsOf(batch: readonly DeviceReadings[]): unknown[][] {
  const columns: unknown[][] = [[], [], [], [], [], [], [], []];
  for (const { deviceId, rows } of batch) {
    for (const m of rows) {
      columns[0]!.push(deviceId);
      columns[1]!.push(m.deviceTime);
      columns[2]!.push(flushTiny(m.chargeNow));
      columns[3]!.push(flushTiny(m.chargeFull));
      columns[4]!.push(flushTiny(m.chargeRate));
      columns[5]!.push(flushTiny(m.ambientTemp));
      columns[6]!.push(flushTiny(m.waterTemp));
      columns[7]!.push(flushTiny(m.waterLevel));
    }
  }
  return columns;
}

const CONFLICTS_SQL = `
SELECT (t.ord - 1)::int AS row
FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])
  WITH ORDINALITY AS t(device_id, device_time, charge_now, charge_full, charge_rate, ambient_temp, water_temp, water_level, ord)
JOIN measurement m ON m.device_id = t.device_id AND m.device_time = t.device_time
WHERE (m.charge_now, m.charge_full, m.charge_rate, m.ambient_temp, m.water_temp, m.water_level)
  IS DISTINCT FROM (t.charge_now, t.charge_full, t.charge_rate, t.ambient_temp, t.water_temp, t.water_level)
ORDER BY 1`;
