import { Body, Controller, HttpCode, Inject, Post, UnauthorizedException } from '@nestjs/common';
import { DeviceKeys } from '../auth/device-key.js';
import { CONFIG, type Config } from '../config/config.js';
import { badRequest, parseOrBadRequest } from '../http/validation.js';
import { DevicesService } from './devices.service.js';
import { loginSchema } from './login.schema.js';

@Controller('v1/devices')
export class DevicesController {
  /** Undefined when serials log in alone (DEVICE_LOGIN=serial, the seed's behaviour). */
  private readonly keys: DeviceKeys | undefined;

  constructor(
    @Inject(DevicesService) private readonly devices: DevicesService,
    @Inject(CONFIG) config: Config,
  ) {
    this.keys = config.DEVICE_LOGIN === 'key' ? new DeviceKeys(config.TOKEN_SECRET) : undefined;
  }

  @Post('login')
  @HttpCode(200)
  async login(@Body() body: unknown) {
    const { serial, key } = parseOrBadRequest(loginSchema, body);
    if (this.keys) {
      if (key === undefined) throw badRequest([{ field: 'key', reason: "is required: the device's key, provisioned with it (base64url of HMAC-SHA256 of its serial)" }]);
      // Checked before the database is touched: a guessed serial registers nothing.
      if (!this.keys.matches(serial, key)) throw new UnauthorizedException({ statusCode: 401, error: 'Unauthorized', message: 'the key is not this serial\'s device key' });
    }
    const { deviceId, token, expiresAt } = await this.devices.login(serial);
    return { deviceId, token, expiresAt: new Date(expiresAt * 1000).toISOString() };
  }
}
