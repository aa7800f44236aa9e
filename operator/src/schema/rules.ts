import type { z } from 'zod';

/**
 * A validation both the apiserver (as a CEL rule in the CRD) and the CLI (as a zod refinement)
 * enforce. Each rule is written once so the two can never disagree on what is valid or on the
 * message a person reads.
 *
 * `check` receives the same value CEL calls `self`: the node at `path`. That lets zod run the rule
 * where the apiserver would, so one bad field does not hide an unrelated error elsewhere.
 */
export interface Rule<Self = never> {
  /** Where the rule sits: "spec.load.search", with "[]" for each item of a list ("spec.load.stages[].duration"). */
  readonly path: string;
  /** The field the error points at, relative to `path` (CEL's fieldPath); omitted: `path` itself. */
  readonly field?: string;
  /** The CEL expression; omitted when CEL cannot express the rule, then `celGap` says why. */
  readonly cel?: string;
  readonly celGap?: string;
  readonly message: string;
  /** True when `self` satisfies the rule. */
  check(self: Self): boolean;
}

/** What goes into the CRD next to the node: `x-kubernetes-validations`. */
export interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
}

export const CEL_VALIDATIONS = 'x-kubernetes-validations';

export function celValidations(rules: readonly Rule<never>[]): CelValidation[] {
  return rules.flatMap((rule) =>
    rule.cel === undefined
      ? []
      : [{ rule: rule.cel, message: rule.message, ...(rule.field ? { fieldPath: `.${rule.field}` } : {}) }],
  );
}

/**
 * Attaches rules to a node: as zod refinements (run only once the node itself parsed, like CEL runs
 * on a value that passed the OpenAPI checks) and as metadata the CRD generator turns into
 * `x-kubernetes-validations` on the same node.
 */
export function enforce<S extends z.ZodType>(schema: S, rules: readonly Rule<z.output<S>>[]): S {
  const refined = schema.superRefine((self, ctx) => {
    for (const rule of rules) {
      if (!rule.check(self)) {
        ctx.addIssue({ code: 'custom', message: rule.message, path: rule.field ? rule.field.split('.') : [], input: self });
      }
    }
  });
  const validations = celValidations(rules as readonly Rule<never>[]);
  if (validations.length === 0) return refined;
  return refined.meta({ ...schema.meta(), [CEL_VALIDATIONS]: validations });
}
