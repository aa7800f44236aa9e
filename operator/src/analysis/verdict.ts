import type { BreakingPoint } from './breaking-point.js';
import { formatNumber, formatValue } from './format.js';
import { CPU_SHARE_ROLES, measuresFor, SATURABLE_RESOURCES, type MeasureInfo, type SaturableResource, type UseCategory } from './measures.js';
import type { LoadEngine } from '../schema/spec.js';
import { engineOf, type Source } from './queries.js';
import type { Slo, StageSummary } from './stages.js';
import type { Thresholds } from '../schema/thresholds.js';
import { judgedStages } from './timeline.js';

/*
 * The bottleneck, by the USE method: at the breaking stage, every resource's utilisation,
 * saturation and errors against its thresholds (measures.ts); the bottleneck is the FIRST
 * resource to saturate — the one whose current run of saturated stages, ending at the break,
 * started earliest — with ties broken by how far over its threshold it is at the break.
 *
 * Rules on top of that:
 * - The load generator comes first. If it fell behind at any judged stage up to the break, the
 *   verdict is load-generator and the API is not blamed: the load the API was judged on is not
 *   the load the experiment claims.
 * - A symptom is not a cause: event-loop saturation is explained by API CPU saturation that began
 *   no later (a CPU-bound Node process has a busy loop), and DB-pool waiting by a slow database
 *   (connections held long make the pool wait), so those yield to their cause.
 * - A shared CPU is a resource too: when the machine (or the API's node) was busy, the API's event
 *   loop waited for a CPU, and most of the busy CPU went to others (the generator, the database,
 *   processes outside the experiment), the API's event-loop saturation is host-cpu's consequence,
 *   and the verdict names who took the CPU. An API whose offered load needs a core of its own
 *   (CPU used × offered / served) is api-cpu in its own right, shared host or not.
 * - db-pool needs both of its signals (callers waiting most of the time AND slow acquires).
 * - A resource that saturated and then recovered before the break is not the bottleneck.
 */

export const BOTTLENECKS = ['load-generator', 'host-cpu', 'api-cpu', 'event-loop', 'db-pool', 'database', 'memory-gc', 'unknown', 'none'] as const;
export type Bottleneck = (typeof BOTTLENECKS)[number];

interface ResourceRule {
  needs: 'any' | 'all';
  explainedBy: readonly SaturableResource[];
  /** Measures without which the resource is not assessed at all. */
  requires?: readonly string[];
}

export const RESOURCE_RULES: Readonly<Record<SaturableResource, ResourceRule>> = {
  'load-generator': { needs: 'any', explainedBy: [] },
  // All three: the host busy, the API waiting for a CPU, and most of the busy CPU someone else's.
  // A host the API itself fills is api-cpu; a busy host the API does not wait on is not a limit.
  // Without the API's own wait there is no telling whether it lacked a CPU: not assessed.
  // An API whose offered load needs a core of its own is CPU-bound whoever shares the host:
  // contention that began no earlier is reported beside it, not instead.
  'host-cpu': { needs: 'all', explainedBy: ['api-cpu'], requires: ['api_cpu_wait.mean'] },
  // An API whose offered load needs a core of its own is CPU-bound whoever else shares the host.
  'api-cpu': { needs: 'any', explainedBy: [] },
  'event-loop': { needs: 'any', explainedBy: ['api-cpu', 'host-cpu'] },
  'db-pool': { needs: 'all', explainedBy: ['database'] },
  // The hold time is timed in the API process: while its event loop is saturated, a reply waits
  // there before it is read, so a busy loop inflates it without the database being slow.
  database: { needs: 'any', explainedBy: ['event-loop', 'api-cpu', 'host-cpu'] },
  'memory-gc': { needs: 'any', explainedBy: [] },
};

export interface Evidence {
  resource: SaturableResource;
  /** The measure key (e.g. pool_acquire.p95) and the catalog query it comes from. */
  measure: string;
  query: string;
  label: string;
  unit: MeasureInfo['unit'];
  value: number;
  threshold?: number;
  crossed: boolean;
  stageIndex: number;
  stageName: string;
  devices: number;
  /** The replica that showed it, when several did and the measure is the hottest one's. */
  replica?: string;
}

export interface UseEntry {
  category: UseCategory;
  measure: string;
  label: string;
  unit: MeasureInfo['unit'];
  value?: number;
  threshold?: number;
  crossed: boolean;
}

export interface UseRow {
  resource: SaturableResource;
  /** At least one of its thresholded measures had data. */
  assessed: boolean;
  saturated: boolean;
  /** First stage of the saturated run that reaches the judged stage. */
  saturatedSince?: { index: number; name: string; devices: number };
  entries: UseEntry[];
}

export interface Verdict {
  bottleneck: Bottleneck;
  /** One paragraph for people, at most ~1000 characters. */
  text: string;
  evidence: Evidence[];
  /** The USE table at the stage judged (the break, or the last judged stage). */
  use: UseRow[];
  stageIndex?: number;
  notes: string[];
}

export interface VerdictOptions {
  thresholds: Thresholds;
  source: Source;
  /** Default: engineOf(source). */
  engine?: LoadEngine;
  /** With it, a generator that fell behind only because the API answered too slowly is not blamed. */
  slo?: Slo;
}

interface ResourceState {
  assessed: boolean;
  saturated: boolean;
  /** When saturated: the measures over their thresholds; otherwise every measure assessed. */
  evidence: Evidence[];
}

export function decideVerdict(stages: readonly StageSummary[], breakingPoint: BreakingPoint, options: VerdictOptions): Verdict {
  const measures = measuresFor(options.source, engineOf(options));
  const judged = judgedStages(stages);
  const limit = breakingPoint.breaking?.index ?? judged[judged.length - 1]?.index ?? -1;
  const considered = judged.filter((stage) => stage.index <= limit);
  const states = considered.map((stage) => resourceStates(stage, measures, options.thresholds));
  const at = considered.length - 1;
  const atStage = considered[at];
  const use = atStage ? useTable(atStage, states, considered, measures, options.thresholds) : [];
  const notes = contextNotes(atStage, use, options);

  if (breakingPoint.status === 'undetermined' || !atStage) {
    return {
      bottleneck: 'unknown',
      text: 'No stage could be judged: neither latency, errors nor throughput were found for this run. Check the selector and that Prometheus scraped the API and the load generator.',
      evidence: [], use, notes,
    };
  }

  const generatorAt = states.findIndex((state, i) => generatorLimited(state, considered[i]!, options.slo));
  if (generatorAt >= 0) {
    const stage = considered[generatorAt]!;
    const evidence = strongest(states[generatorAt]!.get('load-generator')!.evidence);
    const alsoBroke = breakingPoint.breaking ? ` The SLO breach at ${breakingPoint.breaking.name} is not blamed on the API.` : '';
    const k6Hint = engineOf(options) === 'k6'
      ? ' k6 drops iterations when all its VUs are busy: raise spec.generator.maxVUs or parallelism and run again.'
      : options.source === 'kubernetes'
        ? ' Give the driver pods more CPU (spec.generator.resources), more of them (spec.generator.parallelism) or more requests in flight (spec.generator.maxVUs), and run again. ' +
          'A driver pod that started after its Job\'s start time also counts what it missed as dropped: the operator\'s DRIVER_START_DELAY_SECONDS gives the pods longer.'
        : ' Give the driver more CPU or concurrency (or fewer other processes on the machine) and run again.';
    return {
      bottleneck: 'load-generator',
      text: `The load generator fell behind at ${stage.name} (${formatNumber(stage.devices)} devices): ${describe(evidence)}. ` +
        `From there on the offered load was not what the experiment asked for.${alsoBroke}${k6Hint}`,
      evidence, use, stageIndex: stage.index, notes,
    };
  }

  if (breakingPoint.status === 'held') {
    const closest = closestToThreshold(states[at]!);
    return {
      bottleneck: 'none',
      text: `None within the tested range: the SLO held up to ${formatNumber(atStage.devices)} devices` +
        (atStage.achievedRps !== undefined ? ` (${formatNumber(atStage.achievedRps)} rps served)` : '') +
        (closest.length > 0 ? `. Closest to saturation: ${describe(closest)}.` : '.'),
      evidence: closest, use, stageIndex: atStage.index, notes,
    };
  }

  const candidates = SATURABLE_RESOURCES.filter((resource) => resource !== 'load-generator' && states[at]!.get(resource)!.saturated);
  const since = new Map(candidates.map((resource) => [resource, saturatedSince(states, resource)] as const));
  const causes = candidates.filter(
    (resource) => !RESOURCE_RULES[resource].explainedBy.some((cause) => since.has(cause) && since.get(cause)! <= since.get(resource)!),
  );
  const breaking = breakingPoint.breaking!;
  const breakText = `Broke at ${breaking.name} (${formatNumber(breaking.devices)} devices, ${formatNumber(breaking.offeredRps)} rps offered` +
    (breaking.achievedRps !== undefined ? `, ${formatNumber(breaking.achievedRps)} served` : '') +
    `): ${breaking.reasons.map((reason) => reason.text).join('; ')}.`;

  if (causes.length === 0) {
    const closest = closestToThreshold(states[at]!);
    return {
      bottleneck: 'unknown',
      text: `${breakText} No resource crossed its threshold` + (closest.length > 0 ? `; closest: ${describe(closest)}.` : '.'),
      evidence: closest, use, stageIndex: atStage.index, notes,
    };
  }

  const overAtBreak = (resource: SaturableResource) => Math.max(...states[at]!.get(resource)!.evidence.map(overRatio));
  causes.sort((a, b) => since.get(a)! - since.get(b)! || overAtBreak(b) - overAtBreak(a));
  const bottleneck = causes[0]!;
  const first = considered[since.get(bottleneck)!]!;
  const evidence = strongest(states[at]!.get(bottleneck)!.evidence);
  const others = causes.slice(1);
  const symptoms = candidates.filter((resource) => !causes.includes(resource));
  return {
    bottleneck,
    text: `${breakText} Bottleneck: ${bottleneck}, saturated since ${first.name} (${formatNumber(first.devices)} devices): ${describe(evidence)}.` +
      (bottleneck === 'host-cpu' ? ` ${hostCpuText(atStage, options.source)}` : '') +
      (bottleneck === 'host-cpu' && states[at]!.get('load-generator')!.saturated ? ' The load generator fell behind too: it was starved on the same CPUs.' : '') +
      (others.length > 0 ? ` Also saturated at the break: ${others.join(', ')}.` : '') +
      (symptoms.length > 0 ? ` Saturated as a consequence: ${symptoms.join(', ')}.` : ''),
    evidence, use, stageIndex: atStage.index, notes,
  };
}

/**
 * An open-model generator has a concurrency cap (the driver's maxInFlight, k6's maxVUs): when the API
 * answers slower than the SLO allows, requests pile up to the cap and later arrivals are dropped.
 * Those drops are a consequence of the API's saturation, not a generator limit. So the generator
 * is blamed when its own CPU saturated, or when it fell behind while the API itself answered within
 * the SLO and the host's CPUs were not contended (a generator starved of CPU alongside the API is
 * host-cpu's consequence), and not only by dropping while the API's CPU or event loop saturated;
 * otherwise the search goes on among the API's resources.
 */
function generatorLimited(states: ReadonlyMap<SaturableResource, ResourceState>, stage: StageSummary, slo: Slo | undefined): boolean {
  const state = states.get('load-generator')!;
  if (!state.saturated) return false;
  const ownCpu = state.evidence.some((entry) => entry.measure.startsWith('generator_cpu'));
  if (ownCpu) return true;
  // Behind on a host whose CPUs others took (the API waited for one too): the generator was starved
  // like the API, and host-cpu is the verdict.
  if (states.get('host-cpu')!.saturated) return false;
  // Only drops (the cap was full) while the API's CPU or event loop saturated and its answers came
  // back later than the SLO allows: the requests the API held filled the cap. Its own latency
  // cannot show it (a saturated event loop delays requests before the handler's timer starts; seen:
  // one CPU-bound replica at 80 of 300 rps, and 3 or 4 sharing two cores, judged load-generator).
  // Prompt answers mean the cap itself was too small for the rate (maxVUs 1 at 1,000 rps), whatever
  // CPU the offered load would need of the API, a figure the generator's shortfall inflates.
  // A schedule that lags is the generator's own, whatever the API does.
  const onlyDrops = state.evidence.every((entry) => entry.measure === 'generator_dropped_fraction');
  const answeredLate = slo !== undefined && (stage.latency.slo ?? 0) > slo.latencyThresholdS;
  if (onlyDrops && answeredLate && (states.get('api-cpu')!.saturated || states.get('event-loop')!.saturated)) return false;
  if (!slo) return true;
  const serverLatency = stage.serverLatency.slo;
  return serverLatency === undefined || serverLatency <= slo.latencyThresholdS;
}

function resourceStates(stage: StageSummary, measures: readonly MeasureInfo[], thresholds: Thresholds): Map<SaturableResource, ResourceState> {
  const states = new Map<SaturableResource, ResourceState>();
  for (const resource of SATURABLE_RESOURCES) {
    const checks = measures.filter((measure) => measure.resource === resource && measure.threshold !== undefined);
    const assessed: Evidence[] = [];
    if (RESOURCE_RULES[resource].requires?.some((key) => stage.measures[key] === undefined)) {
      states.set(resource, { assessed: false, saturated: false, evidence: [] });
      continue;
    }
    for (const measure of checks) {
      const value = stage.measures[measure.key];
      if (value === undefined) continue;
      const threshold = thresholds[measure.threshold!];
      assessed.push({
        resource, measure: measure.key, query: measure.query, label: measure.label, unit: measure.unit,
        value, threshold, crossed: crosses(value, threshold),
        stageIndex: stage.index, stageName: stage.name, devices: stage.devices,
        ...(stage.hottest[measure.query] !== undefined ? { replica: stage.hottest[measure.query] } : {}),
      });
    }
    const crossings = assessed.filter((entry) => entry.crossed);
    const saturated = assessed.length > 0 && (RESOURCE_RULES[resource].needs === 'all' ? crossings.length === assessed.length : crossings.length > 0);
    states.set(resource, { assessed: assessed.length > 0, saturated, evidence: saturated ? crossings : assessed });
  }
  return states;
}

/** value ≥ threshold; a threshold of 0 means "any at all". */
export function crosses(value: number, threshold: number): boolean {
  return threshold > 0 ? value >= threshold : value > 0;
}

function overRatio(entry: Evidence): number {
  if (entry.threshold === undefined) return 0;
  return entry.threshold > 0 ? entry.value / entry.threshold : entry.value > 0 ? Infinity : 0;
}

/**
 * Position (in the considered stages) where the resource's saturated run ending at the last stage
 * began. A stage without data for the resource neither extends nor ends the run.
 */
function saturatedSince(states: readonly Map<SaturableResource, ResourceState>[], resource: SaturableResource): number {
  let since = states.length - 1;
  for (let position = states.length - 2; position >= 0; position--) {
    const state = states[position]!.get(resource)!;
    if (!state.assessed) continue;
    if (!state.saturated) break;
    since = position;
  }
  return since;
}

function strongest(entries: readonly Evidence[]): Evidence[] {
  return [...entries].sort((a, b) => overRatio(b) - overRatio(a));
}

/** The measures nearest their thresholds (one per resource), for "none" and "unknown". */
function closestToThreshold(states: Map<SaturableResource, ResourceState>): Evidence[] {
  const best: Evidence[] = [];
  for (const resource of SATURABLE_RESOURCES) {
    const top = strongest(states.get(resource)!.evidence)[0];
    if (top) best.push(top);
  }
  return strongest(best).slice(0, 3);
}

function describe(evidence: readonly Evidence[]): string {
  return evidence
    .slice(0, 3)
    .map((entry) => `${entry.label}${entry.replica ? ` on ${entry.replica}` : ''} ${formatValue(entry.value, entry.unit)}` + (entry.threshold !== undefined ? ` (threshold ${formatValue(entry.threshold, entry.unit)})` : ''))
    .join(', ');
}

function useTable(
  stage: StageSummary,
  states: readonly Map<SaturableResource, ResourceState>[],
  considered: readonly StageSummary[],
  measures: readonly MeasureInfo[],
  thresholds: Thresholds,
): UseRow[] {
  const last = states[states.length - 1]!;
  return SATURABLE_RESOURCES.map((resource) => {
    const state = last.get(resource)!;
    const entries: UseEntry[] = measures
      .filter((measure) => measure.resource === resource)
      .map((measure) => {
        const value = stage.measures[measure.key];
        const threshold = measure.threshold !== undefined ? thresholds[measure.threshold] : undefined;
        return {
          category: measure.use, measure: measure.key, label: measure.label, unit: measure.unit,
          ...(value !== undefined ? { value } : {}),
          ...(threshold !== undefined ? { threshold } : {}),
          crossed: value !== undefined && threshold !== undefined && crosses(value, threshold),
        };
      });
    const row: UseRow = { resource, assessed: state.assessed, saturated: state.saturated, entries };
    if (state.saturated) {
      const first = considered[saturatedSince(states, resource)]!;
      row.saturatedSince = { index: first.index, name: first.name, devices: first.devices };
    }
    return row;
  });
}

const ROLE_NAMES: Readonly<Record<string, string>> = {
  api: 'the API', database: 'the database', generator: 'the load generator', monitoring: 'Prometheus and the exporters', other: 'everything else',
};

/** Who took the CPU the API waited for, and what to change. */
function hostCpuText(stage: StageSummary, source: Source): string {
  const where = source === 'local' ? 'the machine' : 'the API\'s node';
  const shares = CPU_SHARE_ROLES
    .map((role) => ({ role, cores: stage.measures[`host_cpu_share.${role}`] }))
    .filter((share): share is { role: (typeof CPU_SHARE_ROLES)[number]; cores: number } => share.cores !== undefined);
  const cores = stage.measures['host_cpu_cores.mean'];
  const takers = shares.filter((share) => share.role !== 'api' && share.cores >= 0.05).sort((a, b) => b.cores - a.cores);
  const list = shares.map((share) => `${ROLE_NAMES[share.role]} ${formatValue(share.cores, 'cores')}`).join(', ');
  const advice = source === 'local'
    ? 'Run the generator on another machine, or give the API a core of its own (loadlab run --api-cpus), and run again.'
    : 'Put the generator and the database on other nodes than the API (spec.generator.nodeSelector, the charts\' node roles), give the API pods a dedicated node or a guaranteed CPU request, and run again.';
  return `The API did not get the CPU it asked for: ${where}` + (cores !== undefined ? `'s ${formatNumber(cores)} CPUs` : '\'s CPUs') +
    ` were shared (${list})` + (takers.length > 0 ? `, and ${takers.slice(0, 2).map((share) => ROLE_NAMES[share.role]).join(' and ')} took the most` : '') +
    `. ${advice}`;
}

function contextNotes(stage: StageSummary | undefined, use: readonly UseRow[], options: VerdictOptions): string[] {
  const notes: string[] = [];
  const unassessed = use.filter((row) => !row.assessed).map((row) => row.resource);
  if (unassessed.length > 0) notes.push(`Not assessed (no data for their thresholded signals): ${unassessed.join(', ')}.`);
  if (options.source === 'local' && stage && stage.measures['host_cpu_share.database'] === undefined && stage.measures['host_cpu_busy.mean'] !== undefined) {
    notes.push('The database\'s own CPU was not measured (its processes were not found on this machine): it is counted in "everything else".');
  }
  if (stage?.latencySource === 'server') notes.push('Latency is the API\'s own (server-side) measurement: the client\'s view was not available, so time queued before the API\'s timer starts is not included.');
  return notes;
}
