import { createHash, createHmac } from 'node:crypto';
import type { LoadExperiment } from '../schema/load-experiment.js';
import type { LoadObjectKind } from '../schema/status.js';

/*
 * Every name the operator gives is derived from the experiment (its name, uid and generation), so
 * a reconcile that runs twice, or a restarted operator, finds the objects it made instead of making
 * new ones. Secrets are derived the same way, from a key only the operator holds.
 */

/** Labels every object of an experiment carries; a run's objects add the run. */
export const LABELS = {
  experiment: 'loadlab.dev/experiment',
  run: 'loadlab.dev/run',
} as const;

export function labelsFor(experiment: LoadExperiment, runId: string, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'loadlab',
    'app.kubernetes.io/instance': experiment.metadata.name,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'loadlab',
    'app.kubernetes.io/managed-by': 'loadlab-operator',
    [LABELS.experiment]: experiment.metadata.name,
    [LABELS.run]: runId,
  };
}

export const RUN_ID_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_RUN_ID_LENGTH = 24;

export function checkRunId(runId: string): void {
  if (runId.length > MAX_RUN_ID_LENGTH || !RUN_ID_PATTERN.test(runId)) {
    throw new RangeError(
      `run id "${runId}" must be at most ${MAX_RUN_ID_LENGTH} lowercase letters, digits and "-", ` +
        'starting and ending with a letter or digit (e.g. r1 or step-3)',
    );
  }
}

/**
 * k6-operator names its own children after the TestRun: Jobs <name>-initializer / -starter / -<n> and
 * Services <name>-service-<n>, which must stay DNS labels of at most 63 characters; so the TestRun's
 * name is kept to 51 (63 - "-initializer"), shortening the experiment part and adding a hash if needed.
 */
export const MAX_TESTRUN_NAME = 51;

/**
 * A Job's name is its pods' job-name label (at most 63 characters), and an Indexed Job's pods are
 * named and host-named <job>-<index>: with at most 64 runners, 60 leaves room for "-63".
 */
export const MAX_DRIVER_JOB_NAME = 60;

/** <experiment>-<run><suffix> within `max` characters: the experiment part shortened, with a hash to keep names apart, if needed. */
function runChildName(experiment: LoadExperiment, runId: string, suffix: string, max: number): string {
  checkRunId(runId);
  const tail = `-${runId}${suffix}`;
  const full = `${experiment.metadata.name}${tail}`;
  if (full.length <= max) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  const room = max - tail.length - hash.length - 1;
  return `${experiment.metadata.name.slice(0, room).replace(/-+$/, '')}-${hash}${tail}`;
}

/** The TestRun's name (and its ConfigMap's): <experiment>-<run>-k6, at most 51 characters. */
export function testRunName(experiment: LoadExperiment, runId: string): string {
  return runChildName(experiment, runId, '-k6', MAX_TESTRUN_NAME);
}

/** The driver Job's name (and its config ConfigMap's): <experiment>-<run>-driver, at most 60 characters. */
export function driverJobName(experiment: LoadExperiment, runId: string): string {
  return runChildName(experiment, runId, '-driver', MAX_DRIVER_JOB_NAME);
}

/** Annotations on the objects of a run, for people and for the checks that read them back. */
export const ANNOTATIONS = {
  /** The plan phases the object runs, FROM-TO inclusive (as `loadlab render --phases` takes them). */
  phases: 'loadlab.dev/phases',
  scriptSha256: 'loadlab.dev/script-sha256',
  /** When a driver Job's runners start their schedule (RFC 3339): the unit's start in status.timeline. */
  startAt: 'loadlab.dev/start-at',
} as const;

export function phasesAnnotation(range: { from: number; to: number }): string {
  return `${range.from}-${range.to - 1}`;
}

export const FINALIZER = 'loadlab.dev/database-schema';
export const FIELD_MANAGER = 'loadlab-operator';
export const REPORTING_CONTROLLER = 'loadlab.dev/operator';

/** The API Deployment and its Service: <experiment>-api (the k6 script's default API URL uses it). */
export function apiName(experimentName: string): string {
  return `${experimentName}-api`;
}

/** The ConfigMap keeping the per-interval records of an experiment's last two analysed runs (controller/run-record.ts). */
export function runRecordName(experimentName: string): string {
  return `${experimentName}-runs`;
}

/** Short and stable per experiment object: a deleted and re-created experiment gets new ones. */
export function uidTag(uid: string): string {
  return createHash('sha256').update(uid).digest('hex').slice(0, 6);
}

/** The run of one spec generation: r<generation>-<uid tag>, e.g. r3-1a2b3c (at most 24 characters). */
export function runIdFor(uid: string, generation: number): string {
  return `r${generation}-${uidTag(uid)}`;
}

/**
 * The run at one replica count of a scaling study: <generation's run id>-n<replicas>, e.g.
 * r3-1a2b3c-n4, so each count has its own objects, token secret and series. Within the 24
 * characters of a run id with a search step's -s<step> up to a million edits of the spec.
 */
export function scalingRunIdFor(uid: string, generation: number, replicas: number): string {
  return `${runIdFor(uid, generation)}-n${replicas}`;
}

/** A search runs one TestRun or Job per step; a run of stages has one, named by the run id alone. */
export function unitRunId(runId: string, source: 'stages' | 'search', unit: number): string {
  return source === 'search' ? `${runId}-s${unit}` : runId;
}

/** The load object (TestRun or driver Job, and its ConfigMap) of one unit of the run. */
export function unitLoadObjectName(kind: LoadObjectKind, experiment: LoadExperiment, runId: string, source: 'stages' | 'search', unit: number): string {
  const unitRun = unitRunId(runId, source, unit);
  return kind === 'Job' ? driverJobName(experiment, unitRun) : testRunName(experiment, unitRun);
}

/**
 * A value inside a PromQL string literal ("..."): backslashes, quotes and line breaks escaped, so a
 * label value can never end the literal and become query. Names and run ids are already limited
 * (the CRD's patterns); this makes the queries safe whatever reaches them.
 */
export function promString(value: string): string {
  return value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
}

/** A value matched literally inside a PromQL regex (=~ "..."): RE2's metacharacters escaped, then as a string. */
export function promRegexLiteral(value: string): string {
  return promString(value.replace(/[.*+?^${}()|[\]\\]/g, (c) => `\\${c}`));
}

/** Every series of the run (k6's tags; the API's and the drivers' relabelled pod labels) matches this. */
export function runSelector(namespace: string, name: string, runId: string): string {
  return `experiment="${promString(`${namespace}/${name}`)}",run=~"${promRegexLiteral(runId)}(-s[0-9]+)?"`;
}

/** runSelector with the Grafana dashboard's variables, which Grafana fills in (unescaped here: they are not values yet). */
export const DASHBOARD_RUN_SELECTOR = 'experiment="$namespace/$experiment",run=~"$run(-s[0-9]+)?"';

/** resourceSelector with the dashboard's variables. */
export const DASHBOARD_RESOURCE_SELECTOR = 'namespace="$namespace",pod=~"$experiment-.*"';

/**
 * The job label of the load driver's series, locally (local mode's Prometheus) and in a cluster
 * (the load-generator PodMonitor): the analysis reads the driver's own process metrics by it, and
 * keeps its Node.js metrics (event loop, GC, heap) apart from the API's.
 */
export const DRIVER_JOB = 'driver';

/** The driver Job's container: cAdvisor's `container` label of the loadlab engine's CPU in a cluster. */
export const DRIVER_CONTAINER = 'driver';

/** cAdvisor / kube-state-metrics series carry only namespace and pod: the API's and the load generators' pods. */
export function resourceSelector(namespace: string, name: string): string {
  return `namespace="${promString(namespace)}",pod=~"${promRegexLiteral(name)}-.*"`;
}

/**
 * The shared TimescaleDB's postgres_exporter series carry no experiment label: they are selected by
 * the job the cdk8s PodMonitor gives them (the default of DATABASE_METRICS_SELECTOR).
 */
export const DATABASE_METRICS_SELECTOR = 'job="timescaledb"';

/**
 * cAdvisor's series of the shared TimescaleDB's pod (its CPU), which is not among an experiment's
 * pods: selected by where the charts run it (the StatefulSet timescaledb in loadlab-system).
 */
export const DATABASE_RESOURCE_SELECTOR = 'namespace="loadlab-system",pod=~"timescaledb-[0-9]+"';

const PG_IDENTIFIER_MAX = 63;

/**
 * The PostgreSQL schema (and role of the same name) of an experiment object, derived from its
 * namespace, name and whole uid and never read back from anywhere (status is writable by whoever
 * may write the status subresource, and the operator runs DROP SCHEMA ... CASCADE and DROP ROLE
 * on this name as the database admin):
 *   loadlab_<namespace>_<name, - as _, cut to fit>_<uid's 32 hex digits>
 * at most 63 characters (PostgreSQL's identifier limit). The uid makes it unique among every
 * object the cluster ever had (so no experiment, however named, can be made to collide with
 * another's); the readable part is only for people looking at the database.
 */
export function databaseSchemaName(namespace: string, experimentName: string, uid: string): string {
  let id = uid.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (id.length === 0) throw new Error('databaseSchemaName: the experiment has no uid yet');
  if (id.length > 32) id = createHash('sha256').update(uid).digest('hex').slice(0, 32);
  const room = PG_IDENTIFIER_MAX - 'loadlab__'.length - id.length;
  const readable = `${namespace}_${experimentName}`.replace(/[^a-z0-9]/g, '_').slice(0, room).replace(/_+$/, '');
  return `loadlab_${readable}_${id}`;
}

/**
 * A secret derived from the operator's key: stable across restarts (so the API's TOKEN_SECRET and
 * the runners' LOADLAB_TOKEN_SECRET agree, and the experiment's database role keeps its password)
 * without storing it anywhere the operator would have to read back.
 */
export function deriveSecret(key: string, purpose: string): string {
  return createHmac('sha256', key).update(purpose).digest('base64url').slice(0, 32);
}

export function tokenSecretFor(key: string, uid: string, runId: string): string {
  return deriveSecret(key, `token-secret/${uid}/${runId}`);
}

export function databasePasswordFor(key: string, uid: string): string {
  return deriveSecret(key, `database-password/${uid}`);
}

/** Names of Events: one per (run, what happened), so a retried step does not report twice. */
export function eventName(experimentName: string, runId: string, reason: string, detail?: string | number): string {
  const suffix = [runId, reason.toLowerCase(), detail].filter((part) => part !== undefined && part !== '').join('.');
  const name = `${experimentName}.${suffix}`.replace(/[^a-z0-9.-]/g, '-');
  if (name.length <= 253) return name;
  return `${name.slice(0, 240)}.${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
}
