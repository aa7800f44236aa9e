import { Controller, Get, Inject, Req, UseGuards } from '@nestjs/common';
import { DeviceAuthGuard, type AuthenticatedRequest } from '../auth/device-auth.guard.js';
import { DueCommands } from './due-commands.js';

/** What a device does when nothing is due: keep charging/filling as it is, flush nothing. */
export const NO_OP_COMMAND = { id: null, chargeOn: null, fillOn: null, flushLitres: 0, notBefore: null } as const;

@Controller('v1/command')
@UseGuards(DeviceAuthGuard)
export class CommandsController {
  constructor(@Inject(DueCommands) private readonly commands: DueCommands) {}

  @Get()
  async next(@Req() request: AuthenticatedRequest) {
    const row = await this.commands.take(request.device.deviceId);
    if (!row) return NO_OP_COMMAND;
    return { id: Number(row.id), chargeOn: row.charge_on, fillOn: row.fill_on, flushLitres: row.flush_litres, notBefore: row.not_before!.toISOString() };
  }
}
