import { buildTrafficPlan } from '../traffic/plan.js';
import { analyze } from './analysis-step.js';
import { cleanup, finalize } from './cleanup.js';
import { REGRESSED, SLO_MET, SUCCEEDED, setConditions, rfc3339 } from './conditions.js';
import { deleteOwned, DONE, endInFlight, runGrafanaUrl, stopLoad, writeStatus, type Deps, type ExperimentObject, type Result, type Status, type StepContext } from './context.js';
import { LOAD_OBJECT_RESOURCES, RESOURCES, isConflict, isNotFound } from './kube.js';
import { databaseSchemaName, FINALIZER } from '../contract/names.js';
import { policyProblems } from './policy.js';
import { parseSpec } from './parse-spec.js';
import { pending, provision } from './provision.js';
import { run } from './load-step.js';
import { atStudyCount, runStart } from './scaling-step.js';

/*
 * The level-triggered reconcile of one LoadExperiment, like a kubebuilder controller's Reconcile:
 * read the object from the cache (never from the event), compare what is with what should be,
 * take ONE step, and return: done (the next watch event brings us back), requeue after a delay, or
 * throw (retried with exponential backoff). The lifecycle is a switch on status.phase with one
 * small helper per step, as k6-operator does for its stages:
 *
 *   Pending -> Provisioning -> Running -> Analyzing -> Succeeded | Failed
 *   pending()  provision()     run()      analyze()    cleanup()
 *
 * A spec edit (metadata.generation != status.observedGeneration) starts a new run: a finished
 * run's summary is kept as status.previousSummary; a run still going is stopped first (its
 * TestRuns or Jobs are deleted, which stops the load) and started again from Pending with the new spec.
 */

const TERMINAL = new Set(['Succeeded', 'Failed']);

export async function reconcile(key: string, deps: Deps, signal: AbortSignal): Promise<Result> {
  const slash = key.indexOf('/');
  const namespace = key.slice(0, slash);
  const name = key.slice(slash + 1);
  const object = deps.caches.experiments.get(namespace, name);
  if (!object) return DONE;
  const rawSpec = object.spec as { cleanup?: string } | undefined;
  if (object.metadata.deletionTimestamp) return finalize(object, deps, rawSpec?.cleanup);

  if (!(object.metadata.finalizers ?? []).includes(FINALIZER)) return addFinalizer(object, deps);

  const uid = object.metadata.uid ?? '';
  const generation = object.metadata.generation ?? 1;
  const status: Status = object.status ?? {};
  const parsed = parseSpec(object);
  const base = { key, object, uid, generation, namespace, name, deps, signal, status };

  const plan = parsed.ok ? buildTrafficPlan(parsed.experiment) : undefined;
  const refused = parsed.ok ? policyProblems(parsed.experiment, plan!, deps.config) : [];
  if (!parsed.ok || refused.length > 0) {
    if (status.observedGeneration === generation && status.phase === 'Failed') return cleanupInvalid(base, object.spec);
    const why = parsed.ok ? `refused by this installation's policy: ${refused.join('; ')}` : `the spec is invalid (the CRD's validation cannot check everything): ${parsed.message}`;
    return invalidSpec({ ...base, experiment: undefined as never, plan: undefined as never }, why);
  }
  if (status.phase === undefined || status.observedGeneration !== generation) return startRun({ ...base, experiment: parsed.experiment, plan: plan! });
  // A scaling study's run at its current replica count is a run of the experiment with target.replicas that count.
  const ctx: StepContext = { ...base, experiment: atStudyCount(parsed.experiment, status), plan: plan! };

  switch (status.phase) {
    case 'Pending':
      return pending(ctx);
    case 'Provisioning':
      return provision(ctx);
    case 'Running':
      return run(ctx);
    case 'Analyzing':
      return analyze(ctx);
    case 'Succeeded':
    case 'Failed':
      return cleanup(ctx);
    default:
      return DONE;
  }
}

async function addFinalizer(object: ExperimentObject, deps: Deps): Promise<Result> {
  try {
    const patched = await deps.client.mergePatch<ExperimentObject>(RESOURCES.loadExperiments, object.metadata.namespace ?? 'default', object.metadata.name, {
      metadata: { finalizers: [...(object.metadata.finalizers ?? []), FINALIZER], resourceVersion: object.metadata.resourceVersion },
    });
    deps.caches.experiments.observe(patched);
  } catch (error) {
    // Changed meanwhile (the watch brings it) or gone.
    if (isConflict(error) || isNotFound(error)) return DONE;
    throw error;
  }
  return DONE;
}

/** A new run for the current generation; a run still going is stopped first. */
async function startRun(ctx: StepContext): Promise<Result> {
  const previous = ctx.status;
  const active = previous.phase !== undefined && !TERMINAL.has(previous.phase);
  if (active) {
    // Stop the load of the superseded run, and remove its TestRuns or Jobs and their ConfigMaps: nothing of it is analysed.
    await stopLoad(ctx);
    for (const checkpoint of previous.timeline ?? []) {
      await deleteOwned(ctx, LOAD_OBJECT_RESOURCES[checkpoint.kind], checkpoint.name);
      await deleteOwned(ctx, RESOURCES.configMaps, checkpoint.name);
    }
  }
  const now = ctx.deps.now();
  const { runId, scaling } = runStart(ctx.experiment, ctx.uid, ctx.generation);
  const previousSummary: Status['previousSummary'] =
    previous.phase && TERMINAL.has(previous.phase) && previous.summary
      ? {
          ...previous.summary,
          ...(previous.runId ? { runId: previous.runId } : {}),
          ...(previous.observedGeneration !== undefined ? { generation: previous.observedGeneration } : {}),
          phase: previous.phase,
          ...(previous.completionTime ? { completionTime: previous.completionTime } : {}),
          ...(previous.grafanaUrl ? { grafanaUrl: previous.grafanaUrl } : {}),
        }
      : previous.previousSummary;
  const message = active
    ? `spec changed to generation ${ctx.generation} while run ${previous.runId} was ${previous.phase}: stopped it and started run ${runId}`
    : previous.phase
      ? `spec changed to generation ${ctx.generation}: starting run ${runId} (the previous run's summary is kept in status.previousSummary)`
      : `starting run ${runId}`;
  const written = await writeStatus(ctx, (status) => {
    const next: Status = {
      phase: 'Pending',
      observedGeneration: ctx.generation,
      runId,
      startTime: rfc3339(now),
      databaseSchema: databaseSchemaName(ctx.namespace, ctx.name, ctx.uid),
      // Conditions of the previous run describe objects that are about to change: start over,
      // keeping the summary condition's transition time when its status does not flip.
      conditions: setConditions((status.conditions ?? []).filter((condition) => condition.type === SUCCEEDED), [
        { type: SUCCEEDED, status: 'Unknown', reason: 'Pending', message },
        { type: SLO_MET, status: 'Unknown', reason: 'NotJudgedYet', message: `run ${runId} has not been analysed yet` },
        ...(ctx.experiment.spec.baseline ? [{ type: REGRESSED, status: 'Unknown' as const, reason: 'NotComparedYet', message: `run ${runId} is compared with ${ctx.experiment.spec.baseline.experiment} once it has been analysed` }] : []),
      ], ctx.generation, now),
      ...(previousSummary ? { previousSummary } : {}),
      ...(scaling ? { scaling } : {}),
    };
    const grafanaUrl = runGrafanaUrl(ctx, next);
    if (grafanaUrl) next.grafanaUrl = grafanaUrl;
    return next;
  });
  if (!written) return { requeueAfterMs: 1000 };
  await ctx.deps.events.record(written, { type: active ? 'Warning' : 'Normal', reason: active ? 'RunRestarted' : 'RunStarted', note: message, action: 'Start', runId });
  ctx.deps.log.info('run started', { key: ctx.key, run: runId, generation: ctx.generation, superseded: active ? previous.runId : undefined });
  return DONE;
}

/**
 * A run ended by an invalid spec is cleaned up like any other failed run, per its spec.cleanup;
 * the spec did not parse, so what cleanup reads (the policy and database.mode) is taken as written
 * where it is one of the allowed values, else the defaults.
 */
function cleanupInvalid(base: Omit<StepContext, 'experiment' | 'plan'>, rawSpec: unknown): Promise<Result> {
  const raw = (rawSpec ?? {}) as { cleanup?: unknown; database?: { mode?: unknown } };
  const policy = ['always', 'onSuccess', 'never'].includes(raw.cleanup as string) ? (raw.cleanup as 'always' | 'onSuccess' | 'never') : 'onSuccess';
  const mode = raw.database?.mode === 'keep' ? 'keep' : 'reset';
  const experiment = { metadata: base.object.metadata, spec: { cleanup: policy, database: { mode } } } as unknown as StepContext['experiment'];
  return cleanup({ ...base, experiment, plan: undefined as never });
}

async function invalidSpec(ctx: StepContext, message: string): Promise<Result> {
  // An edit made while a run is going: its load must not go on unanalysed (nothing will follow it).
  const stopped = ctx.status.phase !== undefined && !TERMINAL.has(ctx.status.phase) ? await stopLoad(ctx) : undefined;
  const now = ctx.deps.now();
  const text = `${message}${stopped ? `; the load of run ${ctx.status.runId} was stopped (${stopped.kind} ${stopped.name} deleted)` : ''}`;
  const written = await writeStatus(ctx, (status) => ({
    ...status,
    phase: 'Failed',
    observedGeneration: ctx.generation,
    completionTime: rfc3339(now),
    ...(stopped && status.timeline ? { timeline: endInFlight(status.timeline, now, 'Stopped') } : {}),
    conditions: setConditions(status.conditions, [{ type: SUCCEEDED, status: 'False', reason: 'InvalidSpec', message: text }], ctx.generation, now),
  }));
  if (written) await ctx.deps.events.record(written, { type: 'Warning', reason: 'InvalidSpec', note: text, action: 'Validate', runId: `g${ctx.generation}` });
  return DONE;
}
