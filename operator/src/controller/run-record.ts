import { gunzipSync, gzipSync } from 'node:zlib';
import { COMPARABLE_VERSION, type ComparableRun } from '../analysis/compare/record.js';
import { FIELD_MANAGER, labelsFor, runRecordName } from '../contract/names.js';
import { ownerReference } from '../contract/objects.js';
import type { StepContext } from './context.js';
import { isNotFound, RESOURCES, type KubeClient, type KubeObject } from './kube.js';
import { ownedBy } from './ownership.js';

/*
 * What a comparison needs of an experiment's runs, kept by the operator: a ConfigMap
 * <experiment>-runs (owned by the experiment, left by cleanup, gone with the experiment) holding the
 * per-interval record (analysis/compare/record.ts) of its last analysed run and of the one before,
 * gzipped. spec.baseline reads it (previousRun: this experiment's; experiment: another's), and so
 * does `loadlab compare --previous`. A record does not depend on Prometheus' retention, and the
 * previous run's can no longer be analysed anyway: its spec (and so its stage windows) is gone.
 */

export const RECORD_KEYS = { current: 'current.json.gz', previous: 'previous.json.gz' } as const;
const RUN_ANNOTATIONS = { current: 'loadlab.dev/current-run', previous: 'loadlab.dev/previous-run' } as const;
/** Per record, gzipped: two fit a ConfigMap (1 MiB) with room to spare; a bigger run is not kept. */
export const MAX_RECORD_BYTES = 400 * 1024;

type RecordConfigMap = KubeObject & { binaryData?: Record<string, string> };

export interface StoredRecord {
  record: ComparableRun;
  runId: string;
}

/** The experiment's last analysed run (current) or the one before it (previous); undefined when none is kept. */
export async function readRunRecord(client: KubeClient, namespace: string, experimentName: string, which: keyof typeof RECORD_KEYS): Promise<StoredRecord | undefined> {
  let configMap: RecordConfigMap;
  try {
    configMap = await client.get<RecordConfigMap>(RESOURCES.configMaps, namespace, runRecordName(experimentName));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const data = configMap.binaryData?.[RECORD_KEYS[which]];
  const runId = configMap.metadata.annotations?.[RUN_ANNOTATIONS[which]];
  if (!data || !runId) return undefined;
  const record = JSON.parse(gunzipSync(Buffer.from(data, 'base64')).toString('utf8')) as ComparableRun;
  if (record.version !== COMPARABLE_VERSION || !Array.isArray(record.stages)) return undefined;
  return { record, runId };
}

/** Keeps this run's record as the current one, the current one becoming the previous; says why when it did not. */
export async function writeRunRecord(ctx: StepContext, record: ComparableRun): Promise<string | undefined> {
  const runId = ctx.status.runId ?? '';
  const current = gzipSync(Buffer.from(JSON.stringify(record)));
  if (current.length > MAX_RECORD_BYTES) return `the run's record is ${Math.round(current.length / 1024)} KiB gzipped, over ${MAX_RECORD_BYTES / 1024} KiB: not kept (compare it with loadlab report and loadlab compare)`;
  const name = runRecordName(ctx.name);
  let existing: RecordConfigMap | undefined;
  try {
    existing = await ctx.deps.client.get<RecordConfigMap>(RESOURCES.configMaps, ctx.namespace, name);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  if (existing && !ownedBy(existing, ctx.uid)) return `a ConfigMap ${ctx.namespace}/${name} exists that this experiment does not own: the run's record was not kept`;
  const binaryData: Record<string, string> = { [RECORD_KEYS.current]: current.toString('base64') };
  const annotations: Record<string, string> = { [RUN_ANNOTATIONS.current]: runId };
  const before = existing?.metadata.annotations?.[RUN_ANNOTATIONS.current];
  // The analysis of one run can be written twice (a status write that lost a race): keep the run before it as previous.
  const previousRunId = before === runId ? existing?.metadata.annotations?.[RUN_ANNOTATIONS.previous] : before;
  const previous = before === runId ? existing?.binaryData?.[RECORD_KEYS.previous] : existing?.binaryData?.[RECORD_KEYS.current];
  if (previous && previousRunId) {
    binaryData[RECORD_KEYS.previous] = previous;
    annotations[RUN_ANNOTATIONS.previous] = previousRunId;
  }
  await ctx.deps.client.apply(RESOURCES.configMaps, ctx.namespace, name, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: ctx.namespace,
      labels: labelsFor(ctx.experiment, runId, 'run-record'),
      annotations,
      ownerReferences: [ownerReference(ctx.experiment, ctx.uid)],
    },
    binaryData,
  }, FIELD_MANAGER);
  return undefined;
}
