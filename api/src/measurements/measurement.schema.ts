import { z } from 'zod';

/** Ranges a real kettle can report; anything outside is a sensor or client bug, refused with 400. */
export const measurementSchema = z
  .object({
    deviceTime: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-11-27T12:00:00Z' }).describe('When the device took the reading (ISO 8601 with zone).'),
    chargeNow: z.number().min(0).max(100_000).describe('Battery charge now, Wh.'),
    chargeFull: z.number().gt(0).max(100_000).describe('Battery capacity when full, Wh.'),
    chargeRate: z.number().min(-10_000).max(10_000).describe('Charge rate, W (negative while draining).'),
    ambientTemp: z.number().min(-50).max(70).describe('Ambient temperature, °C.'),
    waterTemp: z.number().min(-20).max(110).describe('Water temperature, °C.'),
    waterLevel: z.number().min(0).max(20).describe('Water in the reservoir, litres.'),
  })
  .strict()
  .refine((m) => m.chargeNow <= m.chargeFull, {
    path: ['chargeNow'],
    error: (issue) => `must be at most chargeFull (${(issue.input as { chargeFull: number }).chargeFull})`,
  });

export type MeasurementInput = z.infer<typeof measurementSchema>;

export interface IngestLimits {
  maxBatch: number;
  maxAgeHours: number;
  maxSkewSeconds: number;
}

/**
 * The body of POST /v1/measurements: one reading, or an array of readings a device buffered while
 * offline. The shape is picked before validating, so errors name the field (a union would only
 * say "no variant matched").
 */
export function measurementBodySchemas(limits: IngestLimits, now: () => number = Date.now) {
  const timed = measurementSchema.superRefine((m, ctx) => {
    const t = Date.parse(m.deviceTime);
    const current = now();
    if (t > current + limits.maxSkewSeconds * 1000) {
      ctx.addIssue({ code: 'custom', path: ['deviceTime'], message: `is more than ${limits.maxSkewSeconds} s in the future (device clock wrong?)` });
    } else if (t < current - limits.maxAgeHours * 3600_000) {
      ctx.addIssue({ code: 'custom', path: ['deviceTime'], message: `is more than ${limits.maxAgeHours} h old; older readings are not accepted` });
    }
  });
  const batch = z
    .array(timed)
    .min(1, 'must hold at least one measurement')
    .max(limits.maxBatch, `must hold at most ${limits.maxBatch} measurements`);
  return { single: timed, batch };
}
