import { Controller, Get, Inject } from '@nestjs/common';
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

interface TotalsRow {
  measurement_count: string;
  device_count: string;
  total_charge_wh: number;
  total_water_litres: number;
  total_water_energy_kwh: number;
  reporting_devices: string;
}

@Controller('v1/stats')
export class StatsController {
  constructor(@Inject(Database) private readonly db: Database) {}

  @Get()
  async stats() {
    const [[totals], hourly] = await Promise.all([
      this.db.run<TotalsRow>('stats_totals', STATS_SQL),
      this.db.run<{ hour: number; n: number; s: number; ss: number }>('stats_hourly', HOURLY_SQL),
    ]);
    return {
      measurementCount: Number(totals!.measurement_count),
      deviceCount: Number(totals!.device_count),
      reportingDeviceCount: Number(totals!.reporting_devices),
      totalChargeWh: totals!.total_charge_wh,
      totalWaterLitres: totals!.total_water_litres,
      totalWaterEnergyKWh: totals!.total_water_energy_kwh,
      waterTempByHour: hourly.map(({ hour, n, s, ss }) => ({
        hour,
        measurements: n,
        meanC: s / n,
        // Sample standard deviation from running sums; clamped at 0 against rounding.
        stddevC: n > 1 ? Math.sqrt(Math.max(0, (ss - (s * s) / n) / (n - 1))) : 0,
      })),
    };
  }
}
