import { Testing, type Chart } from 'cdk8s';
import { buildApp } from '../src/app.js';
import type { Manifest } from '../src/objects.js';

/** Every chart's manifests as plain data, by chart id. */
export function renderedCharts(): Map<string, Manifest[]> {
  const app = buildApp(Testing.app().outdir);
  return new Map(app.charts.map((chart: Chart) => [chart.node.id, Testing.synth(chart) as Manifest[]]));
}

export function allManifests(): Manifest[] {
  return [...renderedCharts().values()].flat();
}

type PodSpec = {
  securityContext?: Record<string, unknown>;
  containers: Container[];
  initContainers?: Container[];
};
export type Container = { name: string; securityContext?: Record<string, unknown>; resources?: { requests?: Record<string, string>; limits?: Record<string, string> } };

/** The pod templates of the workloads among the manifests, named kind/name. */
export function podTemplates(manifests: readonly Manifest[]): { name: string; spec: PodSpec }[] {
  return manifests
    .filter((manifest) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(manifest.kind))
    .map((manifest) => ({ name: `${manifest.kind}/${manifest.metadata.name}`, spec: (manifest.spec as { template: { spec: PodSpec } }).template.spec }));
}
