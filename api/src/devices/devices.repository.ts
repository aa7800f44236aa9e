import { Inject, Injectable } from '@nestjs/common';
import { Database } from '../db/database.js';

// Registers on first use; a concurrent first login of the same serial finds the other's row.
export const LOGIN_SQL = `
WITH inserted AS (
  INSERT INTO device (serial) VALUES ($1) ON CONFLICT (serial) DO NOTHING RETURNING id
)
SELECT id FROM inserted UNION ALL SELECT id FROM device WHERE serial = $1 LIMIT 1`;

@Injectable()
export class DevicesRepository {
  constructor(@Inject(Database) private readonly db: Database) {}

  /** The id of the device with this serial, registering the device if it is new. */
  async idForSerial(serial: string): Promise<number> {
    let rows = await this.db.run<{ id: string }>('login', LOGIN_SQL, [serial]);
    // The snapshot can miss a row committed by a concurrent first login; the second try sees it.
    if (rows.length === 0) rows = await this.db.run<{ id: string }>('login', LOGIN_SQL, [serial]);
    return Number(rows[0]!.id);
  }
}
