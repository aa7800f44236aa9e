import type { OpenApiSchema } from './crd.js';

/*
 * A checker for the rules the apiserver applies to a CRD's openAPIV3Schema ("structural schema",
 * apiextensions.k8s.io/v1), plus our own: every field carries a description for kubectl explain,
 * every CEL rule a message. It runs in unit tests so a schema change that the apiserver would
 * refuse fails here first; the real apiserver test remains the final word.
 */

const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
/** Keywords a structural schema may not use (or that Kubernetes does not support at all). */
const FORBIDDEN = [
  '$ref', '$schema', '$defs', 'definitions', 'id', '$id', 'oneOf', 'allOf', 'not', 'const', 'patternProperties',
  'dependencies', 'dependentRequired', 'dependentSchemas', 'if', 'then', 'else', 'prefixItems', 'contains',
  'examples', 'unevaluatedProperties', 'unevaluatedItems', 'propertyNames', 'additionalItems',
];
const INT_OR_STRING_ANY_OF = JSON.stringify([{ type: 'integer' }, { type: 'string' }]);

/** Every problem found, as "path: what is wrong"; empty when the schema is structural. */
export function structuralProblems(root: OpenApiSchema): string[] {
  const problems: string[] = [];
  visit(root, '', problems, true);
  return problems;
}

function visit(node: OpenApiSchema, path: string, problems: string[], isRoot = false): void {
  const at = path || '<root>';
  for (const keyword of FORBIDDEN) if (keyword in node) problems.push(`${at}: uses ${keyword}`);
  if (node.uniqueItems === true) problems.push(`${at}: uniqueItems: true is not allowed`);
  if (typeof node.exclusiveMinimum === 'number' || typeof node.exclusiveMaximum === 'number') {
    problems.push(`${at}: exclusiveMinimum/exclusiveMaximum must be booleans in OpenAPI v3.0`);
  }

  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserveUnknown = node['x-kubernetes-preserve-unknown-fields'] === true;
  if ('anyOf' in node && !(intOrString && JSON.stringify(node.anyOf) === INT_OR_STRING_ANY_OF)) {
    problems.push(`${at}: anyOf is only allowed as the int-or-string form`);
  }
  if (node.type === undefined) {
    if (!intOrString && !preserveUnknown) problems.push(`${at}: has no type`);
  } else if (!TYPES.has(node.type as string)) {
    problems.push(`${at}: unknown type ${JSON.stringify(node.type)}`);
  }

  if ('additionalProperties' in node) {
    if (node.additionalProperties === false) problems.push(`${at}: additionalProperties: false is not allowed`);
    if ('properties' in node) problems.push(`${at}: properties and additionalProperties are mutually exclusive`);
  }
  if (node.type === 'object' && !isRoot && path !== 'metadata' && !('properties' in node) && !('additionalProperties' in node) && !preserveUnknown) {
    problems.push(`${at}: an object without properties would be pruned to {}`);
  }
  if (isPlainObject(node.default) && Object.keys(node.default).length === 0 && Array.isArray(node.required) && node.required.length > 0) {
    problems.push(`${at}: defaults to {} but requires ${node.required.join(', ')}`);
  }

  const validations = node['x-kubernetes-validations'];
  if (validations !== undefined) {
    if (!Array.isArray(validations)) problems.push(`${at}: x-kubernetes-validations must be a list`);
    else {
      for (const validation of validations as Record<string, unknown>[]) {
        if (typeof validation.rule !== 'string' || !validation.rule) problems.push(`${at}: a validation has no rule`);
        if (typeof validation.message !== 'string' || !validation.message) problems.push(`${at}: rule ${String(validation.rule)} has no message`);
      }
    }
  }
  if (node['x-kubernetes-list-type'] === 'map') {
    const keys = node['x-kubernetes-list-map-keys'];
    const required = ((node.items as OpenApiSchema | undefined)?.required ?? []) as string[];
    if (!Array.isArray(keys) || keys.length === 0) problems.push(`${at}: list-type map needs x-kubernetes-list-map-keys`);
    else for (const key of keys as string[]) if (!required.includes(key)) problems.push(`${at}: map key ${key} must be required`);
  }

  if (isPlainObject(node.properties)) {
    for (const [name, child] of Object.entries(node.properties)) {
      const childPath = path ? `${path}.${name}` : name;
      // The apiserver owns metadata's schema; it may carry no description of ours.
      const exempt = isRoot && name === 'metadata';
      if (!exempt && !(typeof (child as OpenApiSchema).description === 'string' && (child as OpenApiSchema).description)) {
        problems.push(`${childPath}: has no description (kubectl explain shows nothing)`);
      }
      if (!isPlainObject(child)) problems.push(`${childPath}: is not a schema`);
      else visit(child, childPath, problems);
    }
  }
  if (node.type === 'array') {
    if (!isPlainObject(node.items)) problems.push(`${at}: an array needs items`);
    else visit(node.items, `${path}[]`, problems);
  }
  if (isPlainObject(node.additionalProperties)) visit(node.additionalProperties, `${path}{}`, problems);
}

function isPlainObject(value: unknown): value is OpenApiSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
