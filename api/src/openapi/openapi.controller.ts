import { Controller, Get, Inject } from '@nestjs/common';
import { CONFIG, type Config } from '../config/config.js';
import { openApiDocument } from './openapi.js';

@Controller('openapi.json')
export class OpenApiController {
  private readonly document;

  constructor(@Inject(CONFIG) config: Config) {
    this.document = openApiDocument({
      maxBatch: config.MAX_BATCH_MEASUREMENTS,
      maxAgeHours: config.MEASUREMENT_MAX_AGE_HOURS,
      maxSkewSeconds: config.MEASUREMENT_MAX_SKEW_SECONDS,
    });
  }

  @Get()
  get() {
    return this.document;
  }
}
