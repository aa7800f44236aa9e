import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { CONFIG, type Config } from '../config/config.js';
import { DatabaseModule } from '../db/database.module.js';
import { ApiMetrics } from '../metrics/metrics.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { MeasurementWriter } from './measurement-writer.js';
import { MeasurementsController } from './measurements.controller.js';
import { MeasurementsRepository } from './measurements.repository.js';

@Module({
  imports: [DatabaseModule, AuthModule, MetricsModule],
  controllers: [MeasurementsController],
  providers: [
    MeasurementsRepository,
    {
      provide: MeasurementWriter,
      useFactory: (measurements: MeasurementsRepository, metrics: ApiMetrics, config: Config) =>
        new MeasurementWriter(measurements, metrics, {
          maxBatchRows: config.WRITE_BATCH_MAX_ROWS,
          maxConcurrency: config.WRITE_BATCH_MAX_CONCURRENCY,
          maxPendingRows: config.MAX_PENDING_WRITES,
        }),
      inject: [MeasurementsRepository, ApiMetrics, CONFIG],
    },
  ],
})
export class MeasurementsModule {}
