import { z } from 'zod';
import { boundsText, type NumberBounds } from './bounds.js';
import { DURATION_HINT, DURATION_PATTERN, durationMs, isDuration } from './duration.js';
import { enforce, type Rule } from './rules.js';
import { requestsWithinLimitsRule } from './pod-fields.js';

/*
 * Field builders shared by the spec. Single-field bounds are OpenAPI constraints (the apiserver
 * words those itself), so the zod messages here follow its wording with a hint added; rules that
 * need a meaning (durations, exclusive ranges, either/or) are CEL rules, see rules.ts.
 */

/** A type error that says "is required" when the field is missing, and what it must be otherwise. */
export function typeError(hint: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? `is required: ${hint.replace(/^must be /, '')}` : hint);
}

export function wholeNumber(min: number, max: number) {
  return z
    .int({ error: typeError(`must be a whole number from ${min} to ${max}`) })
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
}

export function numberIn(min: number, max: number, hint: string) {
  return z
    .number({ error: typeError(`must be a number from ${min} to ${max}${hint}`) })
    .min(min, `must be at least ${min}${hint}`)
    .max(max, `must be at most ${max}${hint}`);
}

export function numberWithin(bounds: NumberBounds, hint: string) {
  const { min, max } = bounds;
  const typed = z.number({ error: typeError(`must be a number ${boundsText(bounds)}${hint}`) });
  const above = bounds.minExcluded ? typed.gt(min, `must be greater than ${min}${hint}`) : typed.min(min, `must be at least ${min}${hint}`);
  return bounds.maxExcluded ? above.lt(max, `must be less than ${max}${hint}`) : above.max(max, `must be at most ${max}${hint}`);
}

/** Durations are strings so YAML "30s" reads the same in kubectl, the CLI and CEL's duration(). */
export function durationText() {
  return z
    .string({ error: typeError(DURATION_HINT) })
    .max(32, 'must be at most 32 characters')
    .regex(new RegExp(DURATION_PATTERN), { message: DURATION_HINT, abort: true });
}

/** "must be longer than 0" for a duration field; CEL compares the parsed durations. */
export function positiveDuration(path: string, example: string): Rule<string> {
  return {
    path,
    cel: "duration(self) > duration('0s')",
    message: `must be longer than 0s, e.g. "${example}"`,
    // A value that is not a duration was already refused by the pattern (abort: true).
    check: (self) => !isDuration(self) || durationMs(self) > 0,
  };
}

/**
 * A Kubernetes resource quantity ("500m", "2", "1Gi"), int-or-string as in core/v1: YAML `cpu: 1`
 * is an integer and must be accepted. The pattern is the one Kubernetes publishes for Quantity,
 * less the minus sign: a container's request or limit may not be negative.
 */
export const QUANTITY_PATTERN =
  '^\\+?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
export const INT_OR_STRING = 'x-kubernetes-int-or-string';

export function quantity(description: string) {
  return z
    .union([
      z.int().min(0, 'must not be negative'),
      z.string().regex(new RegExp(QUANTITY_PATTERN), 'must be a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi" (not negative)'),
    ], { error: 'must be a Kubernetes quantity such as "500m", "2", "512Mi" or "1Gi"' })
    .meta({ description, [INT_OR_STRING]: true, pattern: QUANTITY_PATTERN });
}

function cpuAndMemory(what: string) {
  return z
    .strictObject({
      cpu: quantity(`CPU ${what}, e.g. "500m" or 2.`).optional(),
      memory: quantity(`Memory ${what}, e.g. "512Mi" or "2Gi".`).optional(),
    })
    .describe(`CPU and memory ${what}.`);
}

/** The rule on each resources field (path: where it sits), for the tests and docs. */
export const RESOURCES_RULES = {
  target: requestsWithinLimitsRule('spec.target.resources'),
  generator: requestsWithinLimitsRule('spec.generator.resources'),
};

export function resources(whose: string, rule: Rule<z.output<ReturnType<typeof resourcesShape>>>) {
  return enforce(resourcesShape(whose), [rule]);
}

function resourcesShape(whose: string) {
  return z
    .strictObject({
      requests: cpuAndMemory('requested (what the scheduler reserves)').optional(),
      limits: cpuAndMemory('limit (what the container may use at most)').optional(),
    })
    .describe(`CPU and memory requests and limits for ${whose}, as in a container's resources.`);
}
