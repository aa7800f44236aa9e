import { Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller.js';
import { ApiMetrics } from './metrics.js';

/** One ApiMetrics (one registry) per application, shared by every module that records into it. */
@Module({
  controllers: [MetricsController],
  providers: [ApiMetrics],
  exports: [ApiMetrics],
})
export class MetricsModule {}
