import { z } from 'zod';
import { INT_OR_STRING } from './fields.js';
import { GROUP, KIND, VERSION, loadExperimentSchema } from './load-experiment.js';

/** An OpenAPI v3 schema node as the CRD carries it (a JSON object). */
export type OpenApiSchema = { [keyword: string]: unknown };

export const PLURAL = 'loadexperiments';
export const SINGULAR = 'loadexperiment';
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/**
 * The CRD's openAPIV3Schema, generated from the same zod schema the CLI validates with. zod's
 * OpenAPI 3.0 output is close to structural already; this removes what the apiserver refuses or
 * that only zod needs, and rewrites quantities into the one anyOf form Kubernetes allows.
 */
export function crdOpenApiSchema(): OpenApiSchema {
  const generated = z.toJSONSchema(loadExperimentSchema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' });
  const root = structural(generated as OpenApiSchema);
  const properties = root.properties as Record<string, OpenApiSchema>;
  // The apiserver owns these three: metadata may carry no schema beyond name restrictions.
  properties.apiVersion = {
    type: 'string',
    description: 'APIVersion defines the versioned schema of this representation of an object; here loadlab.dev/v1alpha1.',
  };
  properties.kind = { type: 'string', description: 'Kind is the type of this object; here LoadExperiment.' };
  properties.metadata = { type: 'object' };
  root.required = ['spec'];
  return root;
}

const SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

function structural(node: OpenApiSchema): OpenApiSchema {
  const out: OpenApiSchema = {};
  for (const [keyword, value] of Object.entries(node)) {
    if (keyword === '$schema') continue;
    // Unknown fields are pruned by the apiserver (and refused by kubectl's strict field validation);
    // `additionalProperties: false` itself is not allowed in a structural schema.
    if (keyword === 'additionalProperties' && value === false) continue;
    // zod bounds every integer by the JavaScript safe range; Kubernetes integers are int64 already.
    if ((keyword === 'minimum' || keyword === 'maximum') && SAFE_INTEGER_BOUNDS.has(value as number)) continue;
    out[keyword] = value;
  }
  if (out[INT_OR_STRING] === true) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    return out;
  }
  if (isObject(out.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties).map(([name, child]) => [name, structural(child as OpenApiSchema)]),
    );
  }
  if (isObject(out.items)) out.items = structural(out.items as OpenApiSchema);
  if (isObject(out.additionalProperties)) out.additionalProperties = structural(out.additionalProperties as OpenApiSchema);
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

/** `kubectl get loadexperiments`: the design's columns; priority 1 adds the extras for `-o wide`. */
export const PRINTER_COLUMNS: readonly PrinterColumn[] = [
  { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Where the experiment is.' },
  { name: 'Outcome', type: 'string', jsonPath: '.status.conditions[?(@.type=="SloMet")].reason', description: 'The SLO gate: SloHeld or SloBroken (stages), HeldAboveFloor or BelowMinDevices (a search), NotJudged, NotJudgedYet.' },
  { name: 'Devices', type: 'integer', jsonPath: '.spec.fleet.devices', description: 'Devices in the fleet.' },
  { name: 'RPS', type: 'number', jsonPath: '.status.summary.rps', description: 'Requests per second served at the highest load that held the SLO.' },
  { name: 'P95-ms', type: 'number', jsonPath: '.status.summary.p95Ms', description: '95th percentile latency at that load, ms.' },
  { name: 'Errors', type: 'number', jsonPath: '.status.summary.errorRate', description: 'Fraction of failed requests at that load.' },
  { name: 'Breaks-At', type: 'integer', jsonPath: '.status.summary.devicesAtBreak', description: 'Fleet size at which the SLO first broke.' },
  { name: 'Bottleneck', type: 'string', jsonPath: '.status.summary.bottleneck', description: 'The first resource to saturate.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'When the experiment was created.' },
  { name: 'Break-RPS', type: 'number', jsonPath: '.status.summary.breakingPointRps', description: 'Requests per second when the SLO first broke.', priority: 1 },
  { name: 'Replicas', type: 'integer', jsonPath: '.spec.target.replicas', description: 'API replicas.', priority: 1 },
  { name: 'Peak-Replicas', type: 'number', jsonPath: '.status.scaling.fit.peakReplicas', description: 'A scaling study: N*, the replica count at which the fitted capacity peaks (empty: no peak, or no fit).', priority: 1 },
  { name: 'Engine', type: 'string', jsonPath: '.spec.generator.engine', description: 'What generates the load: k6 (k6-operator TestRuns) or loadlab (driver Jobs).', priority: 1 },
  { name: 'Verdict', type: 'string', jsonPath: '.status.summary.verdict', description: 'Where it broke, why, and the evidence.', priority: 1 },
];

/** The apiextensions.k8s.io/v1 CustomResourceDefinition that `kubectl apply` installs. */
export function loadExperimentCrd() {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: ['lex'],
        categories: ['loadlab'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: crdOpenApiSchema() },
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS.map((column) => ({ ...column })),
        },
      ],
    },
  };
}
