import { Inject, Injectable } from '@nestjs/common';
import { Database } from '../db/database.js';

/** A poll's statement result: the command taken (all null when none was due) and what remains. */
export interface CommandRow {
  id: string | null;
  charge_on: boolean | null;
  fill_on: boolean | null;
  flush_litres: number | null;
  not_before: Date | null;
  /** The due time (epoch ms) of the device's earliest command still pending after this one; null: none. */
  next_due_ms: number | null;
}

/**
 * Hands out the oldest due command exactly once (SKIP LOCKED: two polls of one device never get the
 * same command, whichever replica they reach), and says when the device's next pending command is
 * due, for the poll index (due-commands.ts). One row always: the LEFT JOIN keeps it when nothing
 * was taken. The remaining commands are read in the statement's snapshot, where the taken one is
 * still pending: hence the exclusion by id.
 */
export const NEXT_COMMAND_SQL = `
WITH taken AS (
  UPDATE command SET delivered_at = now()
  WHERE id = (
    SELECT id FROM command
    WHERE device_id = $1 AND delivered_at IS NULL AND not_before <= now()
    ORDER BY not_before, id LIMIT 1
    FOR UPDATE SKIP LOCKED)
  RETURNING id, charge_on, fill_on, flush_litres, not_before)
SELECT taken.*, (
  SELECT floor(extract(epoch FROM min(c.not_before)) * 1000)::float8 FROM command c
  WHERE c.device_id = $1 AND c.delivered_at IS NULL AND c.id NOT IN (SELECT id FROM taken)) AS next_due_ms
FROM (SELECT 1) AS one LEFT JOIN taken ON true`;

@Injectable()
export class CommandsRepository {
  constructor(@Inject(Database) private readonly db: Database) {}

  /** Takes the device's oldest due command (marked delivered); the row's id is null when none was due. */
  async takeNextDue(deviceId: number): Promise<CommandRow | undefined> {
    const [row] = await this.db.run<CommandRow>('next_command', NEXT_COMMAND_SQL, [deviceId]);
    return row;
  }
}
