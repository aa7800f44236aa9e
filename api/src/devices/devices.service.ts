import { Inject, Injectable } from '@nestjs/common';
import { DeviceTokens } from '../auth/device-token.js';
import { DevicesRepository } from './devices.repository.js';

export interface Login {
  deviceId: number;
  token: string;
  /** Unix seconds. */
  expiresAt: number;
}

@Injectable()
export class DevicesService {
  constructor(
    @Inject(DevicesRepository) private readonly devices: DevicesRepository,
    @Inject(DeviceTokens) private readonly tokens: DeviceTokens,
  ) {}

  /** Logs a device in, registering it on first use: its id and a token that authenticates it. */
  async login(serial: string): Promise<Login> {
    const deviceId = await this.devices.idForSerial(serial);
    return { deviceId, ...this.tokens.issue(deviceId) };
  }
}
