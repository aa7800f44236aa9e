import type { BreakingPoint, StageRef } from './breaking-point.js';

/**
 * The SLO gate: did the API meet its objective, as a pass/fail a pipeline can act on (loadlab run's
 * exit status, the LoadExperiment's SloMet condition)?
 * - stages: met when every judged stage held, broken when one broke;
 * - a search: its job is to find where the SLO breaks, so a break alone does not fail it; it fails
 *   when the fleet it held (its last good step) is below `minDevices`, when that is set;
 * - unknown when nothing could be judged (no data for any stage).
 */
export interface SloGate {
  outcome: 'met' | 'broken' | 'unknown';
  /** CamelCase, for a condition's reason. */
  reason: 'SloHeld' | 'SloBroken' | 'HeldAboveFloor' | 'BelowMinDevices' | 'NotJudged';
  message: string;
}

export function sloGate(breakingPoint: BreakingPoint, source: 'stages' | 'search', minDevices?: number): SloGate {
  const { status, breaking, lastGood } = breakingPoint;
  if (status === 'undetermined') return { outcome: 'unknown', reason: 'NotJudged', message: 'no stage could be judged (no data for it): the SLO is neither met nor broken' };
  const broke = breaking ? `${breaking.name} (${devices(breaking)}) broke it: ${breaking.reasons.map((r) => r.text).join('; ')}` : '';
  if (source === 'stages') {
    return status === 'broke'
      ? { outcome: 'broken', reason: 'SloBroken', message: broke }
      : { outcome: 'met', reason: 'SloHeld', message: `held in every judged stage${lastGood ? `, up to ${devices(lastGood)}` : ''}` };
  }
  const held = lastGood?.devices ?? 0;
  const where = status === 'broke' ? `; ${broke}` : ', and it never broke';
  if (minDevices !== undefined && held < minDevices) {
    return { outcome: 'broken', reason: 'BelowMinDevices', message: `held ${lastGood ? `up to ${devices(lastGood)}` : 'at no step'}, below the floor of ${minDevices.toLocaleString('en')} devices${where}` };
  }
  return { outcome: 'met', reason: 'HeldAboveFloor', message: `held ${lastGood ? `up to ${devices(lastGood)}` : 'at no step'}${minDevices !== undefined ? `, at or above the floor of ${minDevices.toLocaleString('en')}` : ' (no floor set: spec.slo.minDevices)'}${where}` };
}

function devices(stage: StageRef | undefined): string {
  return stage ? `${stage.devices.toLocaleString('en')} devices` : 'no devices';
}
