import { analyzeRun, type AnalysisResult } from '../analysis/analyze.js';
import type { PrometheusClient } from '../analysis/prometheus-client.js';
import { resourceSelector, runSelector } from '../contract/names.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { buildTrafficPlan, type TrafficPlan } from '../traffic/plan.js';
import type { OperatorConfig } from './config.js';
import { analysisTimeline, type Checkpoint } from './run-units.js';

type AnalysisConfig = Pick<OperatorConfig, 'analysis' | 'databaseMetricsSelector' | 'databaseResourceSelector'>;

/** What the operator analyses a run with, from the parts of its configuration that matter (`loadlab report` reads them from the operator's Deployment). */
export function clusterAnalysisSettings(
  target: { namespace: string; name: string; experiment: LoadExperiment },
  runId: string,
  config: AnalysisConfig,
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

/**
 * analyzeRun over a LoadExperiment's recorded timeline, as the operator analyses it: its own run
 * (the analysis step, a search step's judgement), a baseline experiment's last run, `loadlab report`.
 * Throws RetryableError / TerminalError / AnalysisInputError.
 */
export function analyseRecordedRun(
  run: { namespace: string; name: string; experiment: LoadExperiment; runId: string; checkpoints: readonly Checkpoint[]; plan?: TrafficPlan },
  prometheus: PrometheusClient,
  config: AnalysisConfig,
): Promise<AnalysisResult> {
  return analyzeRun({
    prometheus,
    timeline: analysisTimeline(run.plan ?? buildTrafficPlan(run.experiment), run.checkpoints, run.experiment.spec.target.replicas),
    ...clusterAnalysisSettings(run, run.runId, config),
  });
}
