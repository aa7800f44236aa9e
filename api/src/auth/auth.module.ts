import { Module } from '@nestjs/common';
import { CONFIG, type Config } from '../config/config.js';
import { DeviceTokens } from './device-token.js';

/**
 * Device tokens for the features that issue or check them. DeviceTokens stays free of Nest (the
 * benchmark and the operator's tests use it as a plain class), so it is built here. Modules
 * whose controllers use DeviceAuthGuard import this one: Nest builds the guard in their scope.
 */
@Module({
  providers: [
    {
      provide: DeviceTokens,
      useFactory: (config: Config) => new DeviceTokens(config.TOKEN_SECRET, config.TOKEN_TTL_SECONDS, config.TOKEN_CACHE_SIZE),
      inject: [CONFIG],
    },
  ],
  exports: [DeviceTokens],
})
export class AuthModule {}
