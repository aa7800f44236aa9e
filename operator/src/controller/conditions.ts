import type { LoadExperimentStatus } from '../schema/load-experiment.js';

/*
 * status.conditions per the Kubernetes API conventions: a list keyed by type; status True, False
 * or Unknown; a CamelCase reason and a message for a person; the generation it was computed from;
 * and a lastTransitionTime that moves only when status flips (a new reason or message alone does
 * not move it).
 */

export type Condition = NonNullable<LoadExperimentStatus['conditions']>[number];
export type ConditionStatus = Condition['status'];

/** The summary condition of a bounded job: Unknown while it runs, True or False once it ended. */
export const SUCCEEDED = 'Succeeded';
export const API_READY = 'ApiReady';
export const DATABASE_READY = 'DatabaseReady';
export const LOAD_COMPLETE = 'LoadComplete';
export const ANALYZED = 'Analyzed';
export const CLEANED_UP = 'CleanedUp';
/**
 * The SLO gate (analysis/slo-gate.ts): True when the SLO was met, False when it broke (or a
 * search held less than spec.slo.minDevices), Unknown until the run is analysed or when nothing
 * could be judged. Succeeded says the experiment ran; this says whether the API passed.
 */
export const SLO_MET = 'SloMet';

/**
 * The comparison with spec.baseline (analysis/compare): True when a difference is worse beyond both
 * runs' noise and its minimum effect, False when none is, Unknown until compared or when the
 * baseline could not be read (not found, not finished, its series gone from Prometheus).
 */
export const REGRESSED = 'Regressed';

export const CONDITION_TYPES = [SUCCEEDED, SLO_MET, REGRESSED, API_READY, DATABASE_READY, LOAD_COMPLETE, ANALYZED, CLEANED_UP] as const;

export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

const REASON = /^[A-Z][A-Za-z0-9]*$/;

/** The list with `update` applied; other types are kept in place. */
export function setCondition(conditions: readonly Condition[] | undefined, update: ConditionUpdate, generation: number, now: Date): Condition[] {
  if (!REASON.test(update.reason)) throw new TypeError(`condition reason "${update.reason}" must be CamelCase`);
  const list = [...(conditions ?? [])];
  const index = list.findIndex((condition) => condition.type === update.type);
  const existing = index >= 0 ? list[index] : undefined;
  const lastTransitionTime = existing && existing.status === update.status && existing.lastTransitionTime ? existing.lastTransitionTime : rfc3339(now);
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message.slice(0, 1024),
    lastTransitionTime,
    observedGeneration: generation,
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  // A stable order (the summary condition first) keeps `kubectl describe` readable.
  const order = (type: string) => {
    const position = (CONDITION_TYPES as readonly string[]).indexOf(type);
    return position < 0 ? CONDITION_TYPES.length : position;
  };
  return list.sort((a, b) => order(a.type) - order(b.type));
}

export function setConditions(conditions: readonly Condition[] | undefined, updates: readonly ConditionUpdate[], generation: number, now: Date): Condition[] {
  return updates.reduce<Condition[]>((list, update) => setCondition(list, update, generation, now), [...(conditions ?? [])]);
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

/** Whether applying `update` would change anything but the time. */
export function conditionDiffers(conditions: readonly Condition[] | undefined, update: ConditionUpdate, generation: number): boolean {
  const existing = findCondition(conditions, update.type);
  return !existing || existing.status !== update.status || existing.reason !== update.reason || existing.message !== update.message.slice(0, 1024) || existing.observedGeneration !== generation;
}

/** RFC 3339 in seconds, as metav1.Time serialises. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
