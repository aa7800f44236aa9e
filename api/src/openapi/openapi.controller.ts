import { Controller, Get, Inject } from '@nestjs/common';
import { CONFIG, type Config } from '../config/config.js';
import { openApiDocument } from './openapi.js';

@Controller('openapi.json')
export class OpenApiController {
  private readonly document;

  constructor(@Inject(CONFIG) config: Config) {
    this.document = openApiDocument(config.MAX_BATCH_MEASUREMENTS);
  }

  @Get()
  get() {
    return this.document;
  }
}
