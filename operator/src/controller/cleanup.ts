import { CLEANED_UP, findCondition } from './conditions.js';
import { deleteOwned, DONE, getIfExists, transition, type ExperimentObject, type Result, type StepContext } from './context.js';
import { DatabaseUnavailableError, dropExperimentDatabase } from './experiment-database.js';
import type { Deps } from './context.js';
import { isConflict, isNotFound, LOAD_OBJECT_RESOURCES, RESOURCES } from './kube.js';
import { apiName, databaseSchemaName, FINALIZER } from '../contract/names.js';
import { ownedBy } from './ownership.js';

/*
 * The end of a run, per spec.cleanup (always; onSuccess: keep a failed run to inspect it; never):
 * the run's TestRuns or driver Jobs (their pods go with them) and their ConfigMaps, the API
 * Deployment and Service, and — with
 * database.mode reset, whose data the next run would empty anyway — the experiment's schema.
 * With mode keep the schema stays for the next run until the experiment is deleted.
 *
 * Deleting the experiment: everything it owns goes with it through ownerReferences (the garbage
 * collector); the one thing outside Kubernetes, its database schema and role, is dropped by the
 * finalizer (unless spec.cleanup is never), and only then is the finalizer removed.
 */

export async function cleanup(ctx: StepContext): Promise<Result> {
  if (findCondition(ctx.status.conditions, CLEANED_UP)) return DONE;
  const policy = ctx.experiment.spec.cleanup;
  const succeeded = ctx.status.phase === 'Succeeded';
  if (policy === 'never' || (policy === 'onSuccess' && !succeeded)) {
    const why = policy === 'never' ? 'spec.cleanup is never' : 'spec.cleanup is onSuccess and the run failed: kept for inspection';
    return transition(ctx, { to: ctx.status.phase!, conditions: [{ type: CLEANED_UP, status: 'False', reason: 'KeptByPolicy', message: `${why}; deleting the experiment deletes them` }] });
  }
  const { client, caches } = ctx.deps;
  const deleted: string[] = [];
  for (const checkpoint of ctx.status.timeline ?? []) {
    const resource = LOAD_OBJECT_RESOURCES[checkpoint.kind];
    if (await deleteOwned(ctx, resource, checkpoint.name)) deleted.push(`${resource.kind.toLowerCase()}/${checkpoint.name}`);
    // The script's or the experiment's ConfigMap has the TestRun's or Job's name.
    if (await deleteOwned(ctx, RESOURCES.configMaps, checkpoint.name)) deleted.push(`configmap/${checkpoint.name}`);
  }
  // The API's name may be somebody else's (provisioning then failed with NameConflict): delete
  // only what this experiment owns, and only that very object (uid precondition). A Deployment
  // not in the cache, which holds only the operator's, and the Service are read first.
  const api = apiName(ctx.name);
  const kept: string[] = [];
  for (const resource of [RESOURCES.deployments, RESOURCES.services]) {
    const object = (resource === RESOURCES.deployments ? caches.deployments.get(ctx.namespace, api) : undefined) ?? (await getIfExists(ctx, resource, api));
    const what = `${resource.kind.toLowerCase()}/${api}`;
    if (!object) continue;
    if (!ownedBy(object, ctx.uid)) kept.push(what);
    else if (await client.delete(resource, ctx.namespace, api, object.metadata.uid)) deleted.push(what);
  }
  const schema = databaseSchemaName(ctx.namespace, ctx.name, ctx.uid);
  let database = '';
  if (ctx.experiment.spec.database.mode === 'reset') {
    await dropExperimentDatabase(ctx.deps.config.databaseUrl, schema, ctx.deps.fence);
    database = `; dropped database schema ${schema}`;
  }
  const notOurs = kept.length > 0 ? `; left ${kept.join(', ')} alone: not this experiment's` : '';
  const message = `deleted ${deleted.length > 0 ? deleted.join(', ') : 'nothing (already gone)'}${notOurs}${database}`;
  return transition(ctx, {
    to: ctx.status.phase!,
    conditions: [{ type: CLEANED_UP, status: 'True', reason: 'Deleted', message }],
    event: { type: 'Normal', reason: 'CleanedUp', note: message, action: 'Cleanup' },
  });
}

/** The experiment is being deleted: drop its schema (per spec.cleanup), then let it go. */
export async function finalize(object: ExperimentObject, deps: Deps, cleanupPolicy: string | undefined): Promise<Result> {
  const finalizers = object.metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return DONE;
  const namespace = object.metadata.namespace ?? 'default';
  const name = object.metadata.name;
  const schema = databaseSchemaName(namespace, name, object.metadata.uid ?? '');
  const runId = object.status?.runId ?? 'deleted';
  if (cleanupPolicy === 'never') {
    await deps.events.record(object, { type: 'Normal', reason: 'DatabaseKept', note: `spec.cleanup is never: database schema and role ${schema} are kept; drop them with DROP SCHEMA ${schema} CASCADE; DROP ROLE ${schema}`, action: 'Finalize', runId });
  } else {
    try {
      await dropExperimentDatabase(deps.config.databaseUrl, schema, deps.fence);
    } catch (error) {
      if (!(error instanceof DatabaseUnavailableError)) throw error;
      // Retried with the reconcile's backoff; meanwhile whoever waits on the deletion sees why.
      await deps.events.record(object, {
        type: 'Warning', reason: 'FinalizerBlocked', action: 'Finalize', runId,
        note: `${error.message}; retrying with backoff: the experiment stays until its schema and role ${schema} are dropped (to give them up, remove the finalizer ${FINALIZER} by hand and drop them later)`,
      });
      throw error;
    }
    await deps.events.record(object, { type: 'Normal', reason: 'DatabaseDropped', note: `dropped database schema and role ${schema}`, action: 'Finalize', runId });
  }
  try {
    // The resourceVersion makes this a conditional write: nobody's finalizer change is lost.
    const patched = await deps.client.mergePatch<ExperimentObject>(RESOURCES.loadExperiments, namespace, name, {
      metadata: { finalizers: finalizers.filter((entry) => entry !== FINALIZER), resourceVersion: object.metadata.resourceVersion },
    });
    deps.caches.experiments.observe(patched);
  } catch (error) {
    if (isNotFound(error)) return DONE;
    if (isConflict(error)) return { requeueAfterMs: 200 };
    throw error;
  }
  deps.log.info('finalized', { key: `${namespace}/${name}`, schema, kept: cleanupPolicy === 'never' });
  return DONE;
}
