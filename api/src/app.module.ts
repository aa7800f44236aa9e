import { type DynamicModule, Module } from '@nestjs/common';
import { DeviceAuthGuard } from './auth/device-auth.guard.js';
import { DeviceTokens } from './auth/device-token.js';
import { CommandsController } from './commands/commands.controller.js';
import { CONFIG, type Config } from './config/config.js';
import { Database } from './db/database.js';
import { DevicesController } from './devices/devices.controller.js';
import { HealthController } from './health/health.controller.js';
import { Lifecycle } from './health/lifecycle.js';
import { MeasurementWriter } from './measurements/measurement-writer.js';
import { MeasurementsController } from './measurements/measurements.controller.js';
import { ApiMetrics } from './metrics/metrics.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { OpenApiController } from './openapi/openapi.controller.js';
import { StatsController } from './stats/stats.controller.js';

export interface AppDependencies {
  config: Config;
  metrics: ApiMetrics;
  db: Database;
  writer: MeasurementWriter;
  tokens: DeviceTokens;
  lifecycle: Lifecycle;
}

/**
 * The services are built in main.ts (the DataSource must be up and migrated first) and handed to
 * Nest as values, so the controllers stay thin and the wiring is in one place.
 */
@Module({})
export class AppModule {
  static with(deps: AppDependencies): DynamicModule {
    return {
      module: AppModule,
      controllers: [DevicesController, MeasurementsController, CommandsController, StatsController, HealthController, MetricsController, OpenApiController],
      providers: [
        { provide: CONFIG, useValue: deps.config },
        { provide: ApiMetrics, useValue: deps.metrics },
        { provide: Database, useValue: deps.db },
        { provide: MeasurementWriter, useValue: deps.writer },
        { provide: DeviceTokens, useValue: deps.tokens },
        { provide: Lifecycle, useValue: deps.lifecycle },
        DeviceAuthGuard,
      ],
    };
  }
}
