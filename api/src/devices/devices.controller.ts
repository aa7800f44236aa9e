import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { z } from 'zod';
import { DeviceTokens } from '../auth/device-token.js';
import { Database } from '../db/database.js';
import { parseOrBadRequest } from '../http/validation.js';

export const loginSchema = z
  .object({
    serial: z
      .string({ error: 'is required: the device serial number, e.g. "kettle-000042"' })
      .min(1, 'must not be empty')
      .max(128, 'must be at most 128 characters')
      .regex(/^[A-Za-z0-9._:-]+$/, 'may only contain letters, digits and . _ : -')
      .describe('The device serial number; unknown serials are registered on first login.'),
  })
  .strict();

// Registers on first use; a concurrent first login of the same serial finds the other's row.
export const LOGIN_SQL = `
WITH inserted AS (
  INSERT INTO device (serial) VALUES ($1) ON CONFLICT (serial) DO NOTHING RETURNING id
)
SELECT id FROM inserted UNION ALL SELECT id FROM device WHERE serial = $1 LIMIT 1`;

@Controller('v1/devices')
export class DevicesController {
  constructor(
    @Inject(Database) private readonly db: Database,
    @Inject(DeviceTokens) private readonly tokens: DeviceTokens,
  ) {}

  @Post('login')
  @HttpCode(200)
  async login(@Body() body: unknown) {
    const { serial } = parseOrBadRequest(loginSchema, body);
    let rows = await this.db.run<{ id: string }>('login', LOGIN_SQL, [serial]);
    // The snapshot can miss a row committed by a concurrent first login; the second try sees it.
    if (rows.length === 0) rows = await this.db.run<{ id: string }>('login', LOGIN_SQL, [serial]);
    const deviceId = Number(rows[0]!.id);
    const { token, expiresAt } = this.tokens.issue(deviceId);
    return { deviceId, token, expiresAt: new Date(expiresAt * 1000).toISOString() };
  }
}
