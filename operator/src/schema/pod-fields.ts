import { z } from 'zod';
import { enforce, type Rule } from './rules.js';

/*
 * Fields that end up in a pod spec (the API's image and resources, the generators' placement and
 * resources). Each is checked here as the kubelet, the pod validation or the image pull would check
 * it later, so a value a pod would refuse is refused at admission with a message, instead of an
 * experiment that stalls in the cluster. Patterns are RE2 (CEL's matches()) and JavaScript alike:
 * no backslashes, no lookaround.
 */

const DNS_LABEL = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
const NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
/** A label key or taint key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
const QUALIFIED_NAME = `^(${DNS_LABEL}([.]${DNS_LABEL})*/)?${NAME}$`;
/** The prefix of a qualified name is at most 253 characters. */
const PREFIX_LENGTH = '^[^/]{0,253}/';
const LABEL_VALUE = `^(${NAME})?$`;

const isQualifiedName = (key: string) => new RegExp(QUALIFIED_NAME).test(key) && (!key.includes('/') || new RegExp(PREFIX_LENGTH).test(key));
const celQualifiedName = (self: string) => `${self}.matches('${QUALIFIED_NAME}') && (!${self}.contains('/') || ${self}.matches('${PREFIX_LENGTH}'))`;

// ----------------------------------------------------------------------------------------- image

/*
 * The reference grammar of the container image libraries (distribution/reference): an optional
 * registry host[:port], lower-case path components, an optional tag and an optional digest.
 */
const DOMAIN_COMPONENT = '([a-zA-Z0-9]|[a-zA-Z0-9][-a-zA-Z0-9]*[a-zA-Z0-9])';
const PATH_COMPONENT = '[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*';
const IMAGE_REFERENCE =
  `^(${DOMAIN_COMPONENT}([.]${DOMAIN_COMPONENT})*(:[0-9]+)?/)?${PATH_COMPONENT}(/${PATH_COMPONENT})*` +
  '(:[A-Za-z0-9_][-A-Za-z0-9_.]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$';

export function imageReferenceRule(path: string): Rule<string> {
  return {
    path,
    cel: `self.matches('${IMAGE_REFERENCE}')`,
    message: 'must be an image reference such as registry.example.com/team/api:1.2 or loadlab/api@sha256:<64 hex digits> (lower-case repository, optional tag and digest)',
    check: (self) => new RegExp(IMAGE_REFERENCE).test(self),
  };
}

// -------------------------------------------------------------------------------- nodeSelector

const MAX_SELECTOR_LABELS = 20;

const selectorRules = (path: string) => ({
  keys: {
    path,
    cel: `self.all(k, ${celQualifiedName('k')})`,
    message: 'every key must be a label key such as loadlab.dev/role or zone (an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)',
    check: (self: Readonly<Record<string, string>>) => Object.keys(self).every(isQualifiedName),
  } satisfies Rule<Readonly<Record<string, string>>>,
  values: {
    path,
    cel: `self.all(k, self[k].matches('${LABEL_VALUE}'))`,
    message: 'every value must be a label value: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit (or empty)',
    check: (self: Readonly<Record<string, string>>) => Object.values(self).every((value) => new RegExp(LABEL_VALUE).test(value)),
  } satisfies Rule<Readonly<Record<string, string>>>,
});

export const NODE_SELECTOR_RULES = selectorRules('spec.generator.nodeSelector');

export const nodeSelectorSchema = enforce(
  z
    .record(z.string(), z.string({ error: 'must be a string' }).max(63, 'must be at most 63 characters'), { error: 'must be a map of label to value' })
    .refine((self) => Object.keys(self).length <= MAX_SELECTOR_LABELS, `must have at most ${MAX_SELECTOR_LABELS} labels`)
    .meta({ maxProperties: MAX_SELECTOR_LABELS }),
  Object.values(NODE_SELECTOR_RULES),
);

// --------------------------------------------------------------------------------- tolerations

export type Toleration = { key?: string | undefined; operator?: 'Exists' | 'Equal' | undefined; value?: string | undefined; effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' | undefined; tolerationSeconds?: number | undefined };

const has = (value: string | undefined) => value !== undefined && value !== '';

export const TOLERATION_RULES = {
  key: {
    path: 'spec.generator.tolerations[]',
    field: 'key',
    cel: `!has(self.key) || self.key == '' || (${celQualifiedName('self.key')})`,
    message: 'must be a taint key such as loadlab.dev/role (an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_" or ".")',
    check: (self: Toleration) => !has(self.key) || isQualifiedName(self.key!),
  } satisfies Rule<Toleration>,
  emptyKeyNeedsExists: {
    path: 'spec.generator.tolerations[]',
    field: 'operator',
    cel: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
    message: 'must be Exists when key is empty (an empty key with Exists tolerates every taint); or give the taint\'s key',
    check: (self: Toleration) => has(self.key) || self.operator === 'Exists',
  } satisfies Rule<Toleration>,
  existsHasNoValue: {
    path: 'spec.generator.tolerations[]',
    field: 'value',
    cel: "!(has(self.operator) && self.operator == 'Exists' && has(self.value) && self.value != '')",
    message: 'must be empty with operator Exists (Exists matches any value); use operator Equal to match this value',
    check: (self: Toleration) => !(self.operator === 'Exists' && has(self.value)),
  } satisfies Rule<Toleration>,
  value: {
    path: 'spec.generator.tolerations[]',
    field: 'value',
    cel: `!has(self.value) || self.value.matches('${LABEL_VALUE}')`,
    message: 'must be a label value: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
    check: (self: Toleration) => self.value === undefined || new RegExp(LABEL_VALUE).test(self.value),
  } satisfies Rule<Toleration>,
  secondsNeedNoExecute: {
    path: 'spec.generator.tolerations[]',
    field: 'tolerationSeconds',
    cel: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
    message: 'is only allowed with effect NoExecute (how long a pod stays on a node after a NoExecute taint appears)',
    check: (self: Toleration) => self.tolerationSeconds === undefined || self.effect === 'NoExecute',
  } satisfies Rule<Toleration>,
};

export const tolerationSchema = enforce(
  z
    .strictObject({
      key: z.string({ error: 'must be a string' }).max(317, 'must be at most 317 characters').optional().describe('The taint key to tolerate; empty with operator Exists: every taint.'),
      operator: z
        .enum(['Exists', 'Equal'], { error: 'must be "Exists" or "Equal"' })
        .optional()
        .describe('Exists or Equal (the default).'),
      value: z.string({ error: 'must be a string' }).max(63, 'must be at most 63 characters').optional().describe('The taint value, for operator Equal.'),
      effect: z
        .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'], { error: 'must be NoSchedule, PreferNoSchedule or NoExecute' })
        .optional()
        .describe('Which taint effect to tolerate; empty: all.'),
      tolerationSeconds: z.int({ error: 'must be a whole number of seconds' }).optional().describe('For NoExecute: how long the pod stays after the taint appears.'),
    })
    .describe('A toleration, as in a pod spec.'),
  Object.values(TOLERATION_RULES),
);

// ----------------------------------------------------------------------------------- resources

/**
 * A Kubernetes quantity ("500m", "2", "1Gi", "1e3"), already matched by the Quantity pattern, as a
 * number: enough to compare a request with its limit.
 */
function quantityValue(quantity: number | string): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^([+-]?[0-9.]+)(.*)$/.exec(quantity);
  if (!match) return Number.NaN;
  const mantissa = Number(match[1]);
  const suffix = match[2]!;
  const binary: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
  const decimal: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
  let exponent: number;
  if (suffix in binary) return mantissa * 1024 ** binary[suffix]!;
  if (suffix in decimal) exponent = decimal[suffix]!;
  else if (/^[eE][+-]?[0-9]+$/.test(suffix)) exponent = Number(suffix.slice(1));
  else return Number.NaN;
  // Dividing for negative exponents keeps "100m" equal to "0.1" exactly.
  return exponent >= 0 ? mantissa * 10 ** exponent : mantissa / 10 ** -exponent;
}

type Resources = {
  requests?: { cpu?: number | string | undefined; memory?: number | string | undefined } | undefined;
  limits?: { cpu?: number | string | undefined; memory?: number | string | undefined } | undefined;
};

const celWithinLimit = (resource: 'cpu' | 'memory') =>
  `(!has(self.requests.${resource}) || !has(self.limits.${resource}) || !isQuantity(string(self.requests.${resource})) || !isQuantity(string(self.limits.${resource})) || ` +
  `quantity(string(self.requests.${resource})).compareTo(quantity(string(self.limits.${resource}))) <= 0)`;

export function requestsWithinLimitsRule(path: string): Rule<Resources> {
  return {
    path,
    cel: `!has(self.requests) || !has(self.limits) || (${celWithinLimit('cpu')} && ${celWithinLimit('memory')})`,
    message: 'requests must not exceed limits: each of cpu and memory requested must be at most its limit (a pod asking for more than its limit is refused)',
    check: (self) =>
      (['cpu', 'memory'] as const).every((resource) => {
        const request = self.requests?.[resource];
        const limit = self.limits?.[resource];
        return request === undefined || limit === undefined || !(quantityValue(request) > quantityValue(limit));
      }),
  };
}
