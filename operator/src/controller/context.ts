import type { Fence } from './experiment-database.js';
import { isDeepStrictEqual } from 'node:util';
import type { LoadExperiment, LoadExperimentStatus } from '../schema/load-experiment.js';
import { durationMs } from '../schema/duration.js';
import type { TrafficPlan } from '../traffic/plan.js';
import { LOAD_COMPLETE, SUCCEEDED, setConditions, rfc3339, type ConditionUpdate } from './conditions.js';
import type { OperatorConfig } from './config.js';
import type { EventRecorder, EventSpec } from './events.js';
import { grafanaLink } from './grafana.js';
import type { Informer } from './informer.js';
import { isConflict, isNotFound, LOAD_OBJECT_RESOURCES, RESOURCES, type KubeClient, type KubeObject, type Resource } from './kube.js';
import type { Logger } from './log.js';
import { ownedBy } from './ownership.js';
import { loadSpanMs, type Checkpoint } from './run-units.js';

/*
 * What every lifecycle step gets, and the few things they all do: write status (after re-reading
 * the object, through /status), move to another phase with an Event, fail with a reason.
 */

export type Phase = NonNullable<LoadExperimentStatus['phase']>;
export type Status = LoadExperimentStatus;

export interface ExperimentObject extends KubeObject {
  spec?: unknown;
  status?: Status;
}

export interface TestRunObject extends KubeObject {
  spec?: unknown;
  status?: { stage?: string; testRunId?: string; conditions?: { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }[] };
}

/** A batch/v1 Job (the loadlab engine's driver Job) as far as the operator reads it. */
export interface JobObject extends KubeObject {
  spec?: { parallelism?: number; completions?: number };
  status?: {
    startTime?: string;
    completionTime?: string;
    active?: number;
    ready?: number;
    succeeded?: number;
    failed?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }[];
  };
}

export interface DeploymentObject extends KubeObject {
  spec?: { replicas?: number };
  status?: import('./builders.js').DeploymentStatus;
}

export interface Caches {
  experiments: Informer<ExperimentObject>;
  deployments: Informer<DeploymentObject>;
  testRuns: Informer<TestRunObject>;
  jobs: Informer<JobObject>;
}

export interface Deps {
  client: KubeClient;
  config: OperatorConfig;
  caches: Caches;
  events: EventRecorder;
  log: Logger;
  /** Derives the per-experiment secrets (API token secret, database password). */
  secretKey: string;
  /** This leadership term's fence: every destructive database statement checks it (none without leader election). */
  fence?: Fence;
  now: () => Date;
}

/** What a step returns: done (wait for the next event) or look again after a delay. */
export interface Result {
  requeueAfterMs?: number;
}

export const DONE: Result = {};
export const requeueAfter = (ms: number): Result => ({ requeueAfterMs: Math.max(0, Math.round(ms)) });

export interface StepContext {
  key: string;
  object: ExperimentObject;
  experiment: LoadExperiment;
  plan: TrafficPlan;
  status: Status;
  uid: string;
  generation: number;
  namespace: string;
  name: string;
  deps: Deps;
  signal: AbortSignal;
}

export function runIdOf(ctx: StepContext): string {
  return ctx.status.runId ?? 'unknown';
}

/** When the current run must be over (startTime + spec.timeout). */
export function deadlineMs(ctx: StepContext): number {
  const start = ctx.status.startTime ? Date.parse(ctx.status.startTime) : ctx.deps.now().getTime();
  return start + durationMs(ctx.experiment.spec.timeout);
}

/** Look again at the deadline at the latest (capped at an hour: long runs re-check now and then). */
export function untilDeadline(ctx: StepContext): Result {
  return requeueAfter(Math.min(3_600_000, deadlineMs(ctx) - ctx.deps.now().getTime() + 10));
}

export function timedOut(ctx: StepContext): boolean {
  return ctx.deps.now().getTime() >= deadlineMs(ctx);
}

/** An object of the experiment's namespace read from the apiserver (what the caches do not hold); undefined when there is none. */
export async function getIfExists<T extends KubeObject>(ctx: StepContext, resource: Resource, name: string): Promise<T | undefined> {
  try {
    return await ctx.deps.client.get<T>(resource, ctx.namespace, name, ctx.signal);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Deletes the object of this name only when this experiment owns it (an ownerReference with its
 * uid), and only that very object (uid precondition): names come from status, which whoever may
 * write the status subresource can change, and a newer object of the same name may be somebody
 * else's. True when it was deleted.
 */
export async function deleteOwned(ctx: StepContext, resource: Resource, name: string): Promise<boolean> {
  const object = await getIfExists(ctx, resource, name);
  if (!object || !ownedBy(object, ctx.uid)) return false;
  return ctx.deps.client.delete(resource, ctx.namespace, name, object.metadata.uid);
}

export class StaleObjectError extends Error {
  override name = 'StaleObjectError';
}

/**
 * Re-reads the experiment, checks the step's premise still holds (same object, generation, run and
 * phase as the cached copy the step looked at), applies `mutate` to the fresh status and writes it
 * through /status (optimistic: the fresh resourceVersion). Returns the written object, the fresh one
 * when nothing changed, or undefined when the cache was behind (the watch brings the newer copy
 * and reconciles again).
 */
export async function writeStatus(ctx: StepContext, mutate: (status: Status) => Status): Promise<ExperimentObject | undefined> {
  const { client, caches, log } = ctx.deps;
  let fresh: ExperimentObject;
  try {
    fresh = await client.get<ExperimentObject>(RESOURCES.loadExperiments, ctx.namespace, ctx.name, ctx.signal);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const before = fresh.status ?? {};
  if (
    fresh.metadata.uid !== ctx.uid ||
    fresh.metadata.generation !== ctx.generation ||
    before.phase !== ctx.status.phase ||
    before.runId !== ctx.status.runId
  ) {
    log.debug('cache behind the apiserver; waiting for the watch', { key: ctx.key, cachedPhase: ctx.status.phase, phase: before.phase });
    return undefined;
  }
  const next = mutate(structuredClone(before));
  if (isDeepStrictEqual(next, before)) return fresh;
  // Stopped (leadership lost, shutdown) while this step ran: another process may act now.
  if (ctx.signal.aborted) throw new StaleObjectError('the controller stopped; not writing status');
  try {
    const written = await client.replace<ExperimentObject>(RESOURCES.loadExperiments, ctx.namespace, ctx.name, { ...fresh, status: next }, 'status');
    caches.experiments.observe(written);
    return written;
  } catch (error) {
    if (isConflict(error)) return undefined;
    throw error;
  }
}

export interface TransitionSpec {
  to: Phase;
  conditions?: ConditionUpdate[];
  /** Other status fields to set (undefined removes a field). */
  fields?: Partial<Status>;
  event?: Omit<EventSpec, 'runId'>;
  /** Recorded after `event`, e.g. the comparison's next to the analysis'. */
  moreEvents?: Omit<EventSpec, 'runId'>[];
}

/** Moves the run to another phase (or updates it in place), then records the Event. */
export async function transition(ctx: StepContext, spec: TransitionSpec): Promise<Result> {
  const now = ctx.deps.now();
  const written = await writeStatus(ctx, (status) => {
    const next: Status = { ...status, ...spec.fields, phase: spec.to, observedGeneration: ctx.generation };
    for (const [key, value] of Object.entries(spec.fields ?? {})) if (value === undefined) delete (next as Record<string, unknown>)[key];
    next.conditions = setConditions(status.conditions, spec.conditions ?? [], ctx.generation, now);
    if ((spec.to === 'Succeeded' || spec.to === 'Failed') && !next.completionTime) next.completionTime = rfc3339(now);
    next.grafanaUrl = runGrafanaUrl(ctx, next) ?? next.grafanaUrl;
    if (next.grafanaUrl === undefined) delete next.grafanaUrl;
    return next;
  });
  if (!written) return requeueAfter(1000);
  for (const event of [...(spec.event ? [spec.event] : []), ...(spec.moreEvents ?? [])]) {
    await ctx.deps.events.record(written, { ...event, runId: written.status?.runId ?? runIdOf(ctx) });
  }
  ctx.deps.log.info('status', { key: ctx.key, run: written.status?.runId, phase: written.status?.phase, from: ctx.status.phase, reason: spec.event?.reason });
  return DONE;
}

export function runGrafanaUrl(ctx: StepContext, status: Status): string | undefined {
  const { grafanaUrl, grafanaDashboard } = ctx.deps.config;
  if (!grafanaUrl || !status.runId) return undefined;
  const span = loadSpanMs(status.timeline ?? []);
  const fromMs = span?.fromMs ?? (status.startTime ? Date.parse(status.startTime) : ctx.deps.now().getTime());
  const toMs = span?.toMs ?? (status.completionTime ? Date.parse(status.completionTime) : undefined);
  return grafanaLink({ baseUrl: grafanaUrl, dashboard: grafanaDashboard, namespace: ctx.namespace, experiment: ctx.name, runId: status.runId, fromMs, ...(toMs !== undefined ? { toMs } : {}) });
}

/** The load object (TestRun or Job) of a checkpoint still running, if any. */
export function inFlight(status: Status): Checkpoint | undefined {
  const last = status.timeline?.at(-1);
  return last && !last.endTime ? last : undefined;
}

/**
 * Deletes the TestRun or Job of the checkpoint in flight: the one way to stop load (k6-operator
 * stops a deleted TestRun's runners; a deleted Job's pods are deleted with it, in the background).
 */
export async function stopLoad(ctx: StepContext): Promise<Checkpoint | undefined> {
  const running = inFlight(ctx.status);
  if (!running) return undefined;
  await deleteOwned(ctx, LOAD_OBJECT_RESOURCES[running.kind], running.name);
  return running;
}

/** The timeline with its checkpoint in flight (the last, not ended) ended now with `outcome`. */
export function endInFlight(timeline: readonly Checkpoint[], now: Date, outcome: NonNullable<Checkpoint['outcome']>): Checkpoint[] {
  return timeline.map((checkpoint, index, all) => (index === all.length - 1 && !checkpoint.endTime ? { ...checkpoint, endTime: now.toISOString(), outcome } : checkpoint));
}

/**
 * The run failed: stop its load, record why (phase Failed, Succeeded=False with the reason), and
 * report it. Cleanup follows per spec.cleanup in the next reconcile. With `loadEnded` the load
 * object in flight has already stopped by itself (a failed Job: its controller ended every pod):
 * it is recorded as Error and left as it is, pods and logs, for inspection.
 */
export async function fail(ctx: StepContext, reason: string, message: string, extra: ConditionUpdate[] = [], options: { loadEnded?: boolean } = {}): Promise<Result> {
  const stopped = options.loadEnded ? inFlight(ctx.status) : await stopLoad(ctx);
  const now = ctx.deps.now();
  const outcome = options.loadEnded ? ('Error' as const) : ('Stopped' as const);
  const timeline = stopped ? endInFlight(ctx.status.timeline ?? [], now, outcome) : ctx.status.timeline;
  return transition(ctx, {
    to: 'Failed',
    conditions: [
      ...(stopped ? [{ type: LOAD_COMPLETE, status: 'False' as const, reason, message: `${options.loadEnded ? 'load failed' : 'load stopped'}: ${message}` }] : []),
      ...extra,
      { type: SUCCEEDED, status: 'False', reason, message },
    ],
    fields: { ...(timeline ? { timeline } : {}) },
    event: { type: 'Warning', reason, note: message, action: 'Fail' },
  });
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
