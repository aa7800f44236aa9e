import { type DynamicModule, Global, Module } from '@nestjs/common';
import { CONFIG, type Config } from './config.js';

/**
 * The configuration main.ts validated, as the CONFIG provider. Global (as @nestjs/config's
 * ConfigModule can be): most features read a knob, and the value never changes while the process
 * runs, so importing it everywhere would say nothing.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: Config): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: CONFIG, useValue: config }], exports: [CONFIG] };
  }
}
