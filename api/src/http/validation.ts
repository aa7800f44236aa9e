import { BadRequestException } from '@nestjs/common';
import type { z } from 'zod';

export interface FieldIssue {
  field: string;
  reason: string;
}

/** `[2].chargeNow`, `serial`, or `body` for the whole document. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out || 'body';
}

/** Parses with a zod schema or throws a 400 whose body names every bad field and the reason. */
export function parseOrBadRequest<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw badRequest(result.error.issues.map((issue) => ({ field: fieldName(issue.path), reason: issue.message })));
}

/** The one 400 body: every bad field with the reason, and the same as one line in `message`. */
export function badRequest(issues: FieldIssue[]): BadRequestException {
  return new BadRequestException({
    statusCode: 400,
    error: 'Bad Request',
    message: issues.map((i) => `${i.field}: ${i.reason}`).join('; '),
    issues,
  });
}
