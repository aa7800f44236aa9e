import assert from 'node:assert/strict';
import { CONDITION_TYPES } from '../src/controller/conditions.js';
import { describe, it } from 'node:test';
import { DEFAULT_THRESHOLDS, THRESHOLD_DOCS } from '../src/schema/thresholds.js';
import {
  PRINTER_COLUMNS,
  ROOT_RULES,
  SPEC_RULES,
  crdOpenApiSchema,
  loadExperimentCrd,
  structuralProblems,
  type OpenApiSchema,
} from '../src/schema/index.js';

/** The schema node a rule path names: "spec.load.stages[].duration" -> properties/items/properties. */
function nodeAt(root: OpenApiSchema, path: string): OpenApiSchema {
  let node = root;
  for (const segment of path ? path.split('.') : []) {
    const name = segment.replace(/\[\]$/, '');
    node = (node.properties as Record<string, OpenApiSchema> | undefined)?.[name] as OpenApiSchema;
    assert.ok(node, `no schema node at ${path} (${name})`);
    if (segment.endsWith('[]')) node = node.items as OpenApiSchema;
  }
  return node;
}

function allValidations(node: unknown): unknown[] {
  if (typeof node !== 'object' || node === null) return [];
  const own = (node as OpenApiSchema)['x-kubernetes-validations'];
  return [...(Array.isArray(own) ? own : []), ...Object.values(node).flatMap(allValidations)];
}

describe('the LoadExperiment CRD', () => {
  const schema = crdOpenApiSchema();

  it('has a structural schema: a type on every node, a description on every field, no forbidden keywords', () => {
    assert.deepEqual(structuralProblems(schema), []);
  });

  describe('the structural checker itself', () => {
    for (const [name, bad, problem] of [
      ['a node without a type', { type: 'object', properties: { a: { description: 'x' } } }, 'a: has no type'],
      ['a field without a description', { type: 'object', properties: { a: { type: 'string' } } }, 'a: has no description (kubectl explain shows nothing)'],
      ['a $ref', { type: 'object', properties: { a: { description: 'x', $ref: '#/x' } } }, 'a: uses $ref'],
      ['oneOf', { type: 'object', properties: { a: { type: 'string', description: 'x', oneOf: [] } } }, 'a: uses oneOf'],
      ['additionalProperties: false', { type: 'object', properties: { a: { type: 'string', description: 'x' } }, additionalProperties: false }, '<root>: additionalProperties: false is not allowed'],
      ['a free anyOf', { type: 'object', properties: { a: { description: 'x', anyOf: [{ type: 'string' }] } } }, 'a: anyOf is only allowed as the int-or-string form'],
      ['a numeric exclusiveMinimum', { type: 'object', properties: { a: { type: 'number', description: 'x', exclusiveMinimum: 0 } } }, 'a: exclusiveMinimum/exclusiveMaximum must be booleans in OpenAPI v3.0'],
      ['a rule without a message', { type: 'object', properties: { a: { type: 'string', description: 'x', 'x-kubernetes-validations': [{ rule: 'true' }] } } }, 'a: rule true has no message'],
      ['an empty object', { type: 'object', properties: { a: { type: 'object', description: 'x' } } }, 'a: an object without properties would be pruned to {}'],
    ] as const) {
      it(`finds ${name}`, () => {
        assert.ok(structuralProblems(bad as OpenApiSchema).includes(problem), JSON.stringify(structuralProblems(bad as OpenApiSchema)));
      });
    }
  });

  it('carries every CEL rule, with its message, on the node the rule names', () => {
    const celRules = [...SPEC_RULES, ...ROOT_RULES].filter((rule) => rule.cel !== undefined);
    for (const rule of celRules) {
      const validations = (nodeAt(schema, rule.path)['x-kubernetes-validations'] ?? []) as unknown[];
      const expected = { rule: rule.cel, message: rule.message, ...(rule.field ? { fieldPath: `.${rule.field}` } : {}) };
      assert.ok(
        validations.some((validation) => JSON.stringify(validation) === JSON.stringify(expected)),
        `${rule.path || '<root>'} lacks ${JSON.stringify(expected)}`,
      );
    }
    // Nothing else: a rule the CLI does not also check would make the two disagree.
    assert.equal(allValidations(schema).length, celRules.length);
  });

  it('names the rules CEL cannot express, and why', () => {
    const jsOnly = SPEC_RULES.filter((rule) => rule.cel === undefined);
    assert.deepEqual(jsOnly.map((rule) => rule.path), ['spec.load.search', 'spec']);
    for (const rule of jsOnly) assert.ok(rule.celGap && rule.celGap.length > 10, `${rule.path} must say why CEL cannot express it`);
  });

  it('defaults what the spec defaults', () => {
    assert.equal(nodeAt(schema, 'spec.fleet.reportInterval').default, '30s');
    assert.equal(nodeAt(schema, 'spec.slo.latencyPercentile').default, 95);
    assert.equal(nodeAt(schema, 'spec.target.image').default, 'loadlab/api:dev');
    assert.equal(nodeAt(schema, 'spec.load.stages[].shape').default, 'ramp');
    // An object that defaults to {} so the apiserver applies its fields' defaults, as zod's prefault does.
    assert.deepEqual(nodeAt(schema, 'spec.slo').default, {});
  });

  it('offers every analysis threshold under spec.analysis.thresholds, bounded and documented, and defaults none of them', () => {
    const thresholds = nodeAt(schema, 'spec.analysis.thresholds');
    assert.deepEqual(Object.keys(thresholds.properties as object).sort(), Object.keys(DEFAULT_THRESHOLDS).sort());
    assert.equal(nodeAt(schema, 'spec.analysis').default, undefined, 'absent: the analysis\' defaults, not a stored copy');
    assert.equal(thresholds.default, undefined);
    for (const [key, doc] of Object.entries(THRESHOLD_DOCS)) {
      const node = nodeAt(schema, `spec.analysis.thresholds.${key}`);
      const bounds = { type: node.type, minimum: node.minimum, exclusiveMinimum: node.exclusiveMinimum, maximum: node.maximum, exclusiveMaximum: node.exclusiveMaximum };
      assert.deepEqual(bounds, {
        type: 'number', minimum: doc.min, exclusiveMinimum: doc.minExcluded, maximum: doc.max, exclusiveMaximum: doc.maxExcluded,
      }, key);
      assert.equal(node.default, undefined, key);
      assert.ok(String(node.description).startsWith(doc.meaning), key);
      assert.ok(String(node.description).includes(`Default ${DEFAULT_THRESHOLDS[key as keyof typeof DEFAULT_THRESHOLDS]};`), `${key}: ${String(node.description)}`);
    }
  });

  it('is a namespaced, served and stored v1alpha1 with the status subresource, names and columns', () => {
    const crd = loadExperimentCrd();
    assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
    assert.equal(crd.metadata.name, 'loadexperiments.loadlab.dev');
    assert.equal(crd.spec.scope, 'Namespaced');
    assert.deepEqual(crd.spec.names, {
      kind: 'LoadExperiment',
      listKind: 'LoadExperimentList',
      plural: 'loadexperiments',
      singular: 'loadexperiment',
      shortNames: ['lex'],
      categories: ['loadlab'],
    });
    const [version] = crd.spec.versions;
    assert.ok(version);
    assert.equal(version.name, 'v1alpha1');
    assert.equal(version.served && version.storage, true);
    assert.deepEqual(version.subresources, { status: {} });
    assert.deepEqual(version.schema.openAPIV3Schema, schema);
    const columns = version.additionalPrinterColumns;
    assert.deepEqual(
      columns.filter((column) => !column.priority).map((column) => column.name),
      ['Phase', 'Outcome', 'Devices', 'RPS', 'P95-ms', 'Errors', 'Breaks-At', 'Bottleneck', 'Age'],
    );
    assert.ok(columns.some((column) => column.priority === 1), 'extras for -o wide');
  });

  it('points every printer column at a field the schema has', () => {
    for (const column of PRINTER_COLUMNS) {
      if (column.jsonPath === '.metadata.creationTimestamp') continue;
      // A condition's field by its type (.status.conditions[?(@.type=="SloMet")].reason): the
      // field of the list's items, and the type one the operator writes.
      const filter = /^(.*)\[\?\(@\.type=="(\w+)"\)\](.*)$/.exec(column.jsonPath);
      if (filter) assert.ok((CONDITION_TYPES as readonly string[]).includes(filter[2]!), `${column.name}: the operator writes no ${filter[2]} condition`);
      const path = filter ? `${filter[1]!.slice(1)}[]${filter[3]}` : column.jsonPath.slice(1);
      const node = nodeAt(schema, path);
      const expectedType = column.type === 'integer' || column.type === 'number' ? column.type : 'string';
      assert.equal(node.type, expectedType, `${column.name}: ${path} is ${String(node.type)}`);
    }
  });
});
