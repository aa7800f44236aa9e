import { z } from 'zod';

/*
 * What the operator reports. Fixed size on purpose (Argo Rollouts learned that unbounded
 * measurement lists overflow etcd): a phase, a handful of conditions and one summary; raw series go
 * to the report. Fields are permissive (all optional) because the analysis fills them in stages.
 */

export const PHASES = ['Pending', 'Provisioning', 'Running', 'Analyzing', 'Succeeded', 'Failed'] as const;

export const conditionSchema = z
  .object({
    type: z.string().max(64).describe('The aspect this condition reports, in CamelCase, e.g. Succeeded or ApiReady.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
    reason: z.string().max(128).optional().describe('Why, as a CamelCase word, e.g. SloBroken or Timeout.'),
    message: z.string().max(1024).optional().describe('Why, for a person.'),
    lastTransitionTime: z.string().max(64).optional().describe('When status last changed (RFC 3339).'),
    observedGeneration: z.int().min(0).optional().describe('The spec generation this condition was computed from.'),
  })
  .describe('One condition, as in the Kubernetes API conventions.');

export const summarySchema = z
  .object({
    devicesAtBreak: z.int().min(0).optional().describe('Fleet size at which the SLO first broke; unset: it held throughout.'),
    breakingPointRps: z.number().min(0).optional().describe('Requests per second the API served when the SLO first broke.'),
    rps: z.number().min(0).optional().describe('Requests per second served at the highest load that held the SLO.'),
    p95Ms: z.number().min(0).optional().describe('95th percentile latency at that load, in milliseconds.'),
    errorRate: z.number().min(0).max(1).optional().describe('Fraction of failed requests at that load.'),
    bottleneck: z.string().max(64).optional().describe('The first resource to saturate, e.g. db-pool, api-cpu, event-loop, load-generator.'),
    verdict: z.string().max(1024).optional().describe('One sentence: where it broke, why, and the evidence.'),
  })
  .describe('The outcome in numbers; the full per-stage results are in the report.');

export const loadExperimentStatusSchema = z
  .object({
    phase: z.enum(PHASES).optional().describe('Where the experiment is: Pending, Provisioning, Running, Analyzing, Succeeded or Failed.'),
    observedGeneration: z.int().min(0).optional().describe('The spec generation the operator last acted on.'),
    conditions: z
      .array(conditionSchema)
      .max(16)
      .optional()
      .describe('Conditions, one per type.')
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
    summary: summarySchema.optional(),
  })
  .describe('What the operator observed; written by the operator only.');
