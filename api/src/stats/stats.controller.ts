import { Controller, Get, Inject } from '@nestjs/common';
import { StatsService, type FleetStats } from './stats.service.js';

@Controller('v1/stats')
export class StatsController {
  constructor(@Inject(StatsService) private readonly stats: StatsService) {}

  @Get()
  get(): Promise<FleetStats> {
    return this.stats.fleetStats();
  }
}
