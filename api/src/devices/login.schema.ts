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
  })
  .strict();
