import { Inject, Injectable } from '@nestjs/common';
import { StatsRepository } from './stats.repository.js';

export interface FleetStats {
  measurementCount: number;
  deviceCount: number;
  reportingDeviceCount: number;
  totalChargeWh: number;
  totalWaterLitres: number;
  totalWaterEnergyKWh: number;
  waterTempByHour: { hour: number; measurements: number; meanC: number; stddevC: number }[];
}

@Injectable()
export class StatsService {
  constructor(@Inject(StatsRepository) private readonly stats: StatsRepository) {}

  async fleetStats(): Promise<FleetStats> {
    const [totals, hourly] = await Promise.all([this.stats.totals(), this.stats.hourly()]);
    return {
      measurementCount: Number(totals.measurement_count),
      deviceCount: Number(totals.device_count),
      reportingDeviceCount: Number(totals.reporting_devices),
      totalChargeWh: totals.total_charge_wh,
      totalWaterLitres: totals.total_water_litres,
      totalWaterEnergyKWh: totals.total_water_energy_kwh,
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
