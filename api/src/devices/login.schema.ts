import { z } from 'zod';

/** The body of POST /v1/devices/login. */
export const loginSchema = z
  .object({
    serial: z
      .string({ error: 'is required: the device serial number, e.g. "kettle-000042"' })
      .min(1, 'must not be empty')
      .max(128, 'must be at most 128 characters')
      .regex(/^[A-Za-z0-9._:-]+$/, 'may only contain letters, digits and . _ : -')
      .describe('The device serial number; unknown serials are registered on first login.'),
    key: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'must be the device key: 43 characters of base64url')
      .optional()
      .describe('The device key provisioned with the device: base64url(HMAC-SHA256(TOKEN_SECRET, "loadlab-device-key:" + serial)), without padding. Required unless the API runs with DEVICE_LOGIN=serial.'),
  })
  .strict();
