import { Body, Controller, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
import { DeviceAuthGuard, type AuthenticatedRequest } from '../auth/device-auth.guard.js';
import { CONFIG, type Config } from '../config/config.js';
import { parseOrBadRequest } from '../http/validation.js';
import { measurementBodySchemas } from './measurement.schema.js';
import { MeasurementWriter } from './measurement-writer.js';

@Controller('v1/measurements')
@UseGuards(DeviceAuthGuard)
export class MeasurementsController {
  private readonly schemas;

  constructor(
    @Inject(MeasurementWriter) private readonly writer: MeasurementWriter,
    @Inject(CONFIG) config: Config,
  ) {
    this.schemas = measurementBodySchemas({
      maxBatch: config.MAX_BATCH_MEASUREMENTS,
      maxAgeHours: config.MEASUREMENT_MAX_AGE_HOURS,
      maxSkewSeconds: config.MEASUREMENT_MAX_SKEW_SECONDS,
    });
  }

  /** 201 only after the rows are committed; a retried reading is acknowledged, not stored twice. */
  @Post()
  @HttpCode(201)
  async ingest(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    const rows = Array.isArray(body) ? parseOrBadRequest(this.schemas.batch, body) : [parseOrBadRequest(this.schemas.single, body)];
    await this.writer.write(request.device.deviceId, rows);
    return { accepted: rows.length };
  }
}
