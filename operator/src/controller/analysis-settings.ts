import { resourceSelector, runSelector } from '../contract/names.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import type { OperatorConfig } from './config.js';

/** What the operator analyses a run with, from the parts of its configuration that matter (`loadlab report` reads them from the operator's Deployment). */
export function clusterAnalysisSettings(
  target: { namespace: string; name: string; experiment: LoadExperiment },
  runId: string,
  config: Pick<OperatorConfig, 'analysis' | 'databaseMetricsSelector' | 'databaseResourceSelector'>,
) {
  return {
    slo: target.experiment.spec.slo,
    thresholds: target.experiment.spec.analysis?.thresholds,
    selector: runSelector(target.namespace, target.name, runId),
    resourceSelector: resourceSelector(target.namespace, target.name),
    databaseSelector: config.databaseMetricsSelector,
    databaseResourceSelector: config.databaseResourceSelector,
    source: 'kubernetes' as const,
    engine: target.experiment.spec.generator.engine,
    step: config.analysis.stepS,
    scrapeIntervalS: config.analysis.scrapeIntervalS,
  };
}
