import { Body, ConflictException, Controller, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
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

  /**
   * 201 only after the rows are committed; a retried reading (same device, time and values) is
   * acknowledged, not stored twice. A reading that contradicts the stored one for its device and
   * time is refused with 409, naming it; the request's other readings are stored all the same.
   */
  @Post()
  @HttpCode(201)
  async ingest(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    const batch = Array.isArray(body);
    const rows = batch ? parseOrBadRequest(this.schemas.batch, body) : [parseOrBadRequest(this.schemas.single, body)];
    const { conflicts } = await this.writer.write(request.device.deviceId, rows);
    const accepted = rows.length - conflicts.length;
    if (conflicts.length === 0) return { accepted };
    const issues = conflicts.map((i) => ({ field: batch ? `[${i}].deviceTime` : 'deviceTime', reason: 'a different reading of this device at this deviceTime is stored (readings are never overwritten)' }));
    throw new ConflictException({
      statusCode: 409,
      error: 'Conflict',
      message: `${conflicts.length} of ${rows.length} readings conflict with stored ones and were not stored; ${accepted} were: ${issues.map((i) => i.field).join(', ')}`,
      accepted,
      issues,
    });
  }
}
