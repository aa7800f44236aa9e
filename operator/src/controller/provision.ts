import { API_READY, DATABASE_READY, LOAD_COMPLETE, SUCCEEDED, conditionDiffers, type ConditionUpdate } from './conditions.js';
import {
  apiSecretName,
  buildApiDeployment,
  buildApiSecret,
  buildApiService,
  deploymentAvailable,
  SPEC_HASH_ANNOTATION,
} from './builders.js';
import { fail, getIfExists, requeueAfter, timedOut, transition, untilDeadline, type Result, type StepContext } from './context.js';
import { ensureExperimentDatabase, experimentDatabaseUrl, migrationsApplied, prepareExperimentData, type ExperimentDatabase } from './experiment-database.js';
import { isAlreadyExists, RESOURCES, type KubeObject, type Resource } from './kube.js';
import { experimentConnectionLimit } from './policy.js';
import { apiName, databasePasswordFor, databaseSchemaName, FIELD_MANAGER, tokenSecretFor, LABELS } from '../contract/names.js';
import { nameConflictMessage, ownedBy } from './ownership.js';

/*
 * Pending and Provisioning: the experiment's own database schema, then its API (a Deployment and a
 * Service owned by the experiment), then — once the API is available, which means its migrations
 * have run in that schema — the data: reset, the fleet's devices registered with the ids the load
 * generators mint tokens for, and the preloaded history.
 */

export function experimentDatabase(ctx: StepContext): ExperimentDatabase {
  const schema = databaseSchemaName(ctx.namespace, ctx.name, ctx.uid);
  return { schema, url: experimentDatabaseUrl(ctx.deps.config.databaseUrl, schema, databasePasswordFor(ctx.deps.secretKey, ctx.uid)) };
}

/**
 * The API's TOKEN_SECRET for this run, which the generators mint device tokens with: a reference to
 * the Secret the API Deployment of this run names (what the API really reads), else to the Secret
 * the operator builds for it now.
 */
export function runTokenSecret(ctx: StepContext): { secretName: string; key: string } {
  const deployment = ctx.deps.caches.deployments.get(ctx.namespace, apiName(ctx.name));
  if (deployment && ownedBy(deployment, ctx.uid) && deployment.metadata.labels?.[LABELS.run] === ctx.status.runId) {
    type Env = { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
    const template = (deployment.spec as { template?: { spec?: { containers?: { env?: Env[] }[] } } } | undefined)?.template;
    const ref = template?.spec?.containers?.[0]?.env?.find((entry) => entry.name === 'TOKEN_SECRET')?.valueFrom?.secretKeyRef;
    if (ref) return { secretName: ref.name, key: ref.key };
  }
  return { secretName: apiSecretName(ctx.experiment, apiSecrets(ctx)), key: 'TOKEN_SECRET' };
}

/** What the API's Secret holds for this run: the experiment role's connection and the run's token secret. */
function apiSecrets(ctx: StepContext): { databaseUrl: string; tokenSecret: string } {
  return { databaseUrl: experimentDatabase(ctx).url, tokenSecret: tokenSecretFor(ctx.deps.secretKey, ctx.uid, ctx.status.runId ?? '') };
}

/**
 * Creates the API's Secret. Its name is its content's hash (apiSecretName), so one that exists
 * already holds these values: made by an earlier attempt of this step.
 */
async function createApiSecret(ctx: StepContext, secret: ReturnType<typeof buildApiSecret>): Promise<void> {
  try {
    await ctx.deps.client.create(RESOURCES.secrets, ctx.namespace, secret, ctx.signal);
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
  }
}

/** Pending → Provisioning: the schema and role exist (created or found). */
export async function pending(ctx: StepContext): Promise<Result> {
  if (timedOut(ctx)) return fail(ctx, 'Timeout', `the experiment's database could not be prepared within spec.timeout (${ctx.experiment.spec.timeout})`);
  const schema = databaseSchemaName(ctx.namespace, ctx.name, ctx.uid);
  await ensureExperimentDatabase(ctx.deps.config.databaseUrl, schema, databasePasswordFor(ctx.deps.secretKey, ctx.uid), experimentConnectionLimit(ctx.experiment), ctx.deps.fence);
  return transition(ctx, {
    to: 'Provisioning',
    fields: { databaseSchema: schema },
    conditions: [
      { type: SUCCEEDED, status: 'Unknown', reason: 'Provisioning', message: 'provisioning the API and its database' },
      { type: DATABASE_READY, status: 'False', reason: 'SchemaCreated', message: `schema ${schema} and its role exist; waiting for the API's migrations` },
    ],
    event: { type: 'Normal', reason: 'Provisioning', note: `database schema ${schema} ready; creating the API Deployment ${apiName(ctx.name)}`, action: 'Provision' },
  });
}

/** An object of the API's name that is not ours: fail, leaving it untouched. */
function nameConflict(ctx: StepContext, resource: Resource, object: KubeObject): Promise<Result> {
  const message = nameConflictMessage(resource, object, { name: ctx.name, uid: ctx.uid });
  return fail(ctx, 'NameConflict', message, [{ type: API_READY, status: 'False', reason: 'NameConflict', message }]);
}

/** Updates conditions only when they change (a wait that reconciles again writes nothing). */
async function report(ctx: StepContext, updates: ConditionUpdate[]): Promise<void> {
  if (updates.some((update) => conditionDiffers(ctx.status.conditions, update, ctx.generation))) {
    await transition(ctx, { to: ctx.status.phase ?? 'Provisioning', conditions: updates });
  }
}

export async function provision(ctx: StepContext): Promise<Result> {
  if (timedOut(ctx)) {
    return fail(ctx, 'Timeout', `the API did not become available within spec.timeout (${ctx.experiment.spec.timeout})`, [
      { type: API_READY, status: 'False', reason: 'Timeout', message: 'the API Deployment never became available' },
    ]);
  }
  const { client, caches, config } = ctx.deps;
  const database = experimentDatabase(ctx);
  const build = { ownerUid: ctx.uid, runId: ctx.status.runId ?? '', ...apiSecrets(ctx), ...(config.apiImage ? { defaultImage: config.apiImage } : {}) };
  const deployment = buildApiDeployment(ctx.experiment, build);
  const name = deployment.metadata.name;
  const cached = caches.deployments.get(ctx.namespace, name);
  if (cached && !ownedBy(cached, ctx.uid)) return nameConflict(ctx, RESOURCES.deployments, cached);

  const wanted = deployment.metadata.annotations?.[SPEC_HASH_ANNOTATION];
  if (!cached || cached.metadata.annotations?.[SPEC_HASH_ANNOTATION] !== wanted) {
    const service = buildApiService(ctx.experiment, build);
    // Server-side apply with force takes over whatever has the name. The cache holds only the
    // Deployments labelled as the operator's, so one somebody else made is not in it (and no
    // Service is cached): read them before applying.
    for (const [resource, found] of [
      [RESOURCES.deployments, cached ?? (await getIfExists(ctx, RESOURCES.deployments, name))],
      [RESOURCES.services, await getIfExists(ctx, RESOURCES.services, service.metadata.name)],
    ] as const) {
      if (found && !ownedBy(found, ctx.uid)) return nameConflict(ctx, resource, found);
    }
    // The role's password follows the key the Deployment is built with (idempotent).
    await ensureExperimentDatabase(config.databaseUrl, database.schema, databasePasswordFor(ctx.deps.secretKey, ctx.uid), experimentConnectionLimit(ctx.experiment), ctx.deps.fence);
    await createApiSecret(ctx, buildApiSecret(ctx.experiment, build));
    await client.apply(RESOURCES.services, ctx.namespace, service.metadata.name, service, FIELD_MANAGER);
    const applied = await client.apply(RESOURCES.deployments, ctx.namespace, name, deployment, FIELD_MANAGER);
    caches.deployments.observe(applied);
    const target = ctx.experiment.spec.target;
    await report(ctx, [{ type: API_READY, status: 'False', reason: 'RollingOut', message: `applied Deployment ${name} (${target.replicas} replica${target.replicas > 1 ? 's' : ''}, pool ${target.dbPoolSize}); waiting until it is available` }]);
    return untilDeadline(ctx);
  }

  const rollout = deploymentAvailable(cached);
  if (!rollout.available) {
    await report(ctx, [{ type: API_READY, status: 'False', reason: 'DeploymentNotAvailable', message: rollout.message }]);
    return untilDeadline(ctx);
  }
  if (!(await migrationsApplied(database.url))) {
    await report(ctx, [
      { type: API_READY, status: 'True', reason: 'DeploymentAvailable', message: rollout.message },
      { type: DATABASE_READY, status: 'False', reason: 'WaitingForMigrations', message: `the API has not created its tables in schema ${database.schema} yet` },
    ]);
    return requeueAfter(2000);
  }

  const started = Date.now();
  const lines: string[] = [];
  await prepareExperimentData(ctx.deps.config.databaseUrl, database, ctx.experiment, (line) => lines.push(line), ctx.deps.fence, ctx.signal);
  const { devices } = ctx.experiment.spec.fleet;
  const { mode, preloadDays } = ctx.experiment.spec.database;
  const prepared = `${mode === 'reset' ? 'reset, ' : ''}${devices} devices registered${preloadDays > 0 ? `, ${preloadDays} days preloaded` : ''} in schema ${database.schema} (${Date.now() - started} ms)`;
  ctx.deps.log.info('database prepared', { key: ctx.key, detail: prepared, progress: lines.slice(-3) });
  return transition(ctx, {
    to: 'Running',
    conditions: [
      { type: SUCCEEDED, status: 'Unknown', reason: 'Running', message: 'the load is running' },
      { type: API_READY, status: 'True', reason: 'DeploymentAvailable', message: rollout.message },
      { type: DATABASE_READY, status: 'True', reason: 'Prepared', message: prepared },
      { type: LOAD_COMPLETE, status: 'Unknown', reason: 'Starting', message: 'creating the load generators' },
    ],
    event: { type: 'Normal', reason: 'Provisioned', note: `API ${name} available (${rollout.message}); database ${prepared}`, action: 'Provision' },
  });
}

