import { Inject, Injectable } from '@nestjs/common';
import { Database } from '../db/database.js';

/** Specific heat of water, J/(kg·K); a litre of water is taken as one kilogram. */
export const WATER_SPECIFIC_HEAT = 4186;

/**
 * Reads only the rollups (24 × 16 hour-of-day rows, one row per device) and the device table,
 * never the measurement history, so its cost does not grow as history accumulates.
 * Water energy: the heat stored in each kettle's water above its ambient temperature
 * (litres × 4186 J/(kg·K) × (water − ambient), counted only when warmer), summed, in kWh.
 */
const STATS_SQL = `
SELECT
  (SELECT coalesce(sum(measurements), 0)::bigint FROM measurement_hourly) AS measurement_count,
  (SELECT count(*) FROM device)::bigint AS device_count,
  coalesce(sum(charge_now), 0) AS total_charge_wh,
  coalesce(sum(water_level), 0) AS total_water_litres,
  coalesce(sum(water_level * ${WATER_SPECIFIC_HEAT} * greatest(water_temp - ambient_temp, 0)), 0) / 3.6e6 AS total_water_energy_kwh,
  count(*)::bigint AS reporting_devices
FROM device_latest`;

const HOURLY_SQL = `
SELECT hour_of_day AS hour, sum(measurements)::float8 AS n, sum(water_temp_sum) AS s, sum(water_temp_sumsq) AS ss
FROM measurement_hourly GROUP BY hour_of_day ORDER BY hour_of_day`;

export interface TotalsRow {
  measurement_count: string;
  device_count: string;
  total_charge_wh: number;
  total_water_litres: number;
  total_water_energy_kwh: number;
  reporting_devices: string;
}

/** One UTC hour of day: the measurement count, and the sum and sum of squares of water temperature. */
export interface HourlyRow {
  hour: number;
  n: number;
  s: number;
  ss: number;
}

@Injectable()
export class StatsRepository {
  constructor(@Inject(Database) private readonly db: Database) {}

  async totals(): Promise<TotalsRow> {
    const [totals] = await this.db.run<TotalsRow>('stats_totals', STATS_SQL);
    return totals!;
  }

  hourly(): Promise<HourlyRow[]> {
    return this.db.run<HourlyRow>('stats_hourly', HOURLY_SQL);
  }
}
