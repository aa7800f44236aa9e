import { AnalysisInputError } from './errors.js';
import { durationSeconds } from '../schema/duration.js';
import { findBreakingPoint, type BreakingPoint } from './breaking-point.js';
import { isMissing, PrometheusClient, TerminalError } from './prometheus-client.js';
import { buildCatalog, defaultRateWindowS, engineOf, type CatalogOptions, type CatalogQuery, type Source } from './queries.js';
import type { LoadEngine } from '../schema/spec.js';
import type { Series } from './series.js';
import { summariseStages, type Slo, type StageSummary } from './stages.js';
import { buildSummary, type AnalysisSummary } from './summary.js';
import { resolveThresholds, type Thresholds } from '../schema/thresholds.js';
import { validateTimeline, type TimelineStage } from './timeline.js';
import { capacityByReplicas, fitUsl, type UslFit } from './usl.js';
import { decideVerdict, type Verdict } from './verdict.js';

/*
 * The entry point: run the catalog's range queries over the whole run (one query per signal, a
 * few at a time), cut the stages out locally, find the breaking point, decide the bottleneck,
 * and return everything the report writers and the status need.
 */

/** The SLO as a LoadExperiment spells it (spec.slo), or already in seconds. */
export type SloInput = Slo | { latencyPercentile: number; latencyThreshold: string; maxErrorRate: number };

export interface AnalyzeRunOptions {
  /** A client (its query count is shared) or Prometheus' base URL. */
  prometheus: PrometheusClient | string;
  /** Label matchers selecting this run, e.g. `experiment="quickstart",run="3"`. */
  selector: string;
  timeline: readonly TimelineStage[];
  slo: SloInput;
  source: Source;
  /** The load generator whose metrics the run has (default: engineOf(source)). */
  engine?: LoadEngine;
  /** Resolution of the range queries, seconds (default 15). */
  step?: number;
  /** How often Prometheus scraped the targets (default: 5 s locally, 15 s in a cluster). */
  scrapeIntervalS?: number;
  /** rate() window; default max(step, 4 × scrape interval). */
  rateWindowS?: number;
  thresholds?: Partial<Thresholds>;
  containers?: CatalogOptions['containers'];
  /** Matchers for cAdvisor / kube-state-metrics series (see CatalogOptions.resourceSelector). */
  resourceSelector?: string;
  /** Matchers for postgres_exporter series (see CatalogOptions.databaseSelector). */
  databaseSelector?: string;
  /** Matchers for the database container's cAdvisor series (see CatalogOptions.databaseResourceSelector). */
  databaseResourceSelector?: string;
  /** Range queries in flight at once (default 4). */
  concurrency?: number;
}

/** A queried series, named by its catalog query: the rows of the CSV export. */
export interface QueriedSeries extends Series {
  name: string;
}

export interface AnalysisResult {
  stages: StageSummary[];
  breakingPoint: BreakingPoint;
  verdict: Verdict;
  summary: AnalysisSummary;
  series: QueriedSeries[];
  /** Fitted when the run covered three or more replica counts. */
  usl?: UslFit;
  catalog: CatalogQuery[];
  /** Catalog queries that returned no series (their exporter was absent, or the metric unused). */
  missing: string[];
  /** Catalog queries Prometheus refused (terminal errors), with its message. */
  failed: { name: string; error: string }[];
  /** Requests made, time in them (summed over concurrent ones), and wall time of the two phases. */
  queries: { count: number; timeMs: number };
  timing: { queryWallMs: number; analysisMs: number };
  settings: {
    selector: string;
    source: Source;
    engine: LoadEngine;
    stepS: number;
    rateWindowS: number;
    startUnixS: number;
    endUnixS: number;
    slo: Slo;
    thresholds: Thresholds;
  };
}

export const DEFAULT_STEP_S = 15;

export async function analyzeRun(options: AnalyzeRunOptions): Promise<AnalysisResult> {
  validateTimeline(options.timeline);
  const thresholds = resolveThresholds(options.thresholds);
  const slo = toSlo(options.slo);
  const stepS = options.step ?? DEFAULT_STEP_S;
  if (!(stepS > 0)) throw new AnalysisInputError(`step must be a positive number of seconds, got ${stepS}`);
  const scrapeIntervalS = options.scrapeIntervalS ?? (options.source === 'local' ? 5 : 15);
  const rateWindowS = options.rateWindowS ?? defaultRateWindowS(stepS, scrapeIntervalS);
  const client = typeof options.prometheus === 'string' ? new PrometheusClient({ baseUrl: options.prometheus }) : options.prometheus;
  const countBefore = client.queryCount;
  const timeBefore = client.queryTimeMs;

  // Prometheus keeps times to the millisecond and rounds a range query's start; the stage windows
  // are cut on the same grid, so it must be the grid Prometheus answers on (a point a fraction of
  // a millisecond outside a window's edge would count as zero).
  const startUnixS = Math.round(options.timeline[0]!.startUnixS * 1000) / 1000;
  const endUnixS = options.timeline[options.timeline.length - 1]!.endUnixS;
  const engine = engineOf(options);
  const catalog = buildCatalog({
    selector: options.selector,
    source: options.source,
    engine,
    rateWindowS,
    ...(options.containers ? { containers: options.containers } : {}),
    ...(options.resourceSelector ? { resourceSelector: options.resourceSelector } : {}),
    ...(options.databaseSelector ? { databaseSelector: options.databaseSelector } : {}),
    ...(options.databaseResourceSelector ? { databaseResourceSelector: options.databaseResourceSelector } : {}),
  });

  const queryStarted = performance.now();
  const results = new Map<string, Series[]>();
  const missing: string[] = [];
  const failed: { name: string; error: string }[] = [];
  await forEachLimited(catalog, options.concurrency ?? 4, async (query) => {
    try {
      const result = await client.range(query.promql, startUnixS, endUnixS, stepS);
      if (isMissing(result)) missing.push(query.name);
      else results.set(query.name, result);
    } catch (error) {
      // One query Prometheus cannot evaluate must not hide what the others show; an outage
      // (retryable) aborts the whole analysis so the caller retries it later.
      if (error instanceof TerminalError && error.kind !== 'cancelled') failed.push({ name: query.name, error: error.message });
      else throw error;
    }
  });
  if (failed.length === catalog.length) {
    throw new TerminalError(`Prometheus refused every analysis query; the first: ${failed[0]!.error}. Check the selector ${JSON.stringify(options.selector)}.`, 'bad-query', catalog[0]!.promql);
  }

  const analysisStarted = performance.now();
  const stages = summariseStages(options.timeline, results, {
    catalog, source: options.source, engine, slo, thresholds, stepS, rateWindowS, queryStartUnixS: startUnixS,
  });
  const breakingPoint = findBreakingPoint(stages, slo, thresholds);
  const verdict = decideVerdict(stages, breakingPoint, { thresholds, source: options.source, engine, slo });
  const summary = buildSummary(stages, breakingPoint, verdict);
  const usl = fitUslIfVaried(stages);

  const order = new Map(catalog.map((query, position) => [query.name, position]));
  const series = [...results.entries()]
    .sort(([a], [b]) => order.get(a)! - order.get(b)!)
    .flatMap(([name, list]) => list.map((entry) => ({ name, labels: entry.labels, samples: entry.samples })));

  const analysisMs = performance.now() - analysisStarted;
  return {
    stages, breakingPoint, verdict, summary, series,
    ...(usl ? { usl } : {}),
    catalog,
    missing: missing.sort((a, b) => order.get(a)! - order.get(b)!),
    failed,
    queries: { count: client.queryCount - countBefore, timeMs: client.queryTimeMs - timeBefore },
    timing: { queryWallMs: analysisStarted - queryStarted, analysisMs },
    settings: { selector: options.selector, source: options.source, engine, stepS, rateWindowS, startUnixS, endUnixS, slo, thresholds },
  };
}

export function toSlo(input: SloInput): Slo {
  const slo: Slo = 'latencyThreshold' in input
    ? { percentile: input.latencyPercentile, latencyThresholdS: durationSeconds(input.latencyThreshold), maxErrorRate: input.maxErrorRate }
    : input;
  if (!(slo.percentile > 0 && slo.percentile < 100)) throw new AnalysisInputError(`slo percentile must be between 0 and 100, got ${slo.percentile}`);
  if (!(slo.latencyThresholdS > 0)) throw new AnalysisInputError(`slo latency threshold must be positive, got ${slo.latencyThresholdS} s`);
  if (!(slo.maxErrorRate >= 0 && slo.maxErrorRate <= 1)) throw new AnalysisInputError(`slo maxErrorRate must be a fraction from 0 to 1, got ${slo.maxErrorRate}`);
  return slo;
}

function fitUslIfVaried(stages: readonly StageSummary[]): UslFit | undefined {
  const points = capacityByReplicas(stages);
  return points.length >= 3 ? fitUsl(points) : undefined;
}

async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
