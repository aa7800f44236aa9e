import { loadExperimentSchema, type LoadExperiment } from '../schema/load-experiment.js';
import { formatPath } from '../schema/parse.js';
import type { ExperimentObject } from './context.js';

/** A LoadExperiment object's spec, validated as the CRD's schema does (and more: the rules CEL cannot express). */
export function parseSpec(object: ExperimentObject): { ok: true; experiment: LoadExperiment } | { ok: false; message: string } {
  const { name, namespace, labels, annotations } = object.metadata;
  const result = loadExperimentSchema.safeParse({
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: { name, namespace, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
    spec: object.spec,
  });
  if (result.success) return { ok: true, experiment: result.data };
  return { ok: false, message: result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`).join('; ') };
}
