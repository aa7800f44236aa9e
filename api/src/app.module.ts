import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { CommandsModule } from './commands/commands.module.js';
import type { Config } from './config/config.js';
import { ConfigModule } from './config/config.module.js';
import { DevicesModule } from './devices/devices.module.js';
import { HealthModule } from './health/health.module.js';
import { ErrorFilter } from './http/error.filter.js';
import { MeasurementsModule } from './measurements/measurements.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { OpenApiModule } from './openapi/openapi.module.js';
import { StatsModule } from './stats/stats.module.js';

/**
 * The application: one module per feature. It takes the configuration main.ts has already
 * validated, so a bad environment stops the process with every variable named (exit code 2)
 * before Nest starts.
 */
@Module({})
export class AppModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), MetricsModule, DevicesModule, MeasurementsModule, CommandsModule, StatsModule, HealthModule, OpenApiModule],
      // Global, so it also answers for what fails before a controller runs (unparsable bodies).
      providers: [{ provide: APP_FILTER, useClass: ErrorFilter }],
    };
  }
}
