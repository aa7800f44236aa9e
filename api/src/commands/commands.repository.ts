import { Inject, Injectable } from '@nestjs/common';
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

@Injectable()
export class CommandsRepository {
  constructor(@Inject(Database) private readonly db: Database) {}

  /** The device's oldest due command, marked delivered; undefined when none is due. */
  async takeNextDue(deviceId: number): Promise<CommandRow | undefined> {
    const [row] = await this.db.run<CommandRow>('next_command', NEXT_COMMAND_SQL, [deviceId]);
    return row;
  }
}
