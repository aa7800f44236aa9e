import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { parseOrBadRequest } from '../http/validation.js';
import { DevicesService } from './devices.service.js';
import { loginSchema } from './login.schema.js';

@Controller('v1/devices')
export class DevicesController {
  constructor(@Inject(DevicesService) private readonly devices: DevicesService) {}

  @Post('login')
  @HttpCode(200)
  async login(@Body() body: unknown) {
    const { serial } = parseOrBadRequest(loginSchema, body);
    const { deviceId, token, expiresAt } = await this.devices.login(serial);
    return { deviceId, token, expiresAt: new Date(expiresAt * 1000).toISOString() };
  }
}
