import { Controller, Get, Inject, Req, UseGuards } from '@nestjs/common';
import { DeviceAuthGuard, type AuthenticatedRequest } from '../auth/device-auth.guard.js';
import { Database } from '../db/database.js';

export interface CommandRow {
  id: string;
  charge_on: boolean | null;
  fill_on: boolean | null;
  flush_litres: number;
  not_before: Date;
}

/**
 * Hands out the oldest due command exactly once (SKIP LOCKED: two polls of one device never get the
 * same command). When nothing is due the partial index is empty for the device, so a poll is cheap.
 */
export const NEXT_COMMAND_SQL = `
UPDATE command SET delivered_at = now()
WHERE id = (
  SELECT id FROM command
  WHERE device_id = $1 AND delivered_at IS NULL AND not_before <= now()
  ORDER BY not_before, id LIMIT 1
  FOR UPDATE SKIP LOCKED)
RETURNING id, charge_on, fill_on, flush_litres, not_before`;

/** What a device does when nothing is due: keep charging/filling as it is, flush nothing. */
export const NO_OP_COMMAND = { id: null, chargeOn: null, fillOn: null, flushLitres: 0, notBefore: null } as const;

@Controller('v1/command')
@UseGuards(DeviceAuthGuard)
export class CommandsController {
  constructor(@Inject(Database) private readonly db: Database) {}

  @Get()
  async next(@Req() request: AuthenticatedRequest) {
    const [row] = await this.db.run<CommandRow>('next_command', NEXT_COMMAND_SQL, [request.device.deviceId]);
    if (!row) return NO_OP_COMMAND;
    return { id: Number(row.id), chargeOn: row.charge_on, fillOn: row.fill_on, flushLitres: row.flush_litres, notBefore: row.not_before.toISOString() };
  }
}
