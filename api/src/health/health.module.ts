import { Module } from '@nestjs/common';
import { DatabaseModule } from '../db/database.module.js';
import { HealthController } from './health.controller.js';
import { Lifecycle } from './lifecycle.js';

@Module({
  imports: [DatabaseModule],
  controllers: [HealthController],
  providers: [Lifecycle],
})
export class HealthModule {}
