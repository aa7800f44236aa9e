import type { LoadExperiment } from '../schema/load-experiment.js';
import { durationSeconds } from '../schema/duration.js';
import { searchStepDevices } from '../schema/search-steps.js';

/**
 * The fleet's traffic as an open model: every device talks to the API on its own clock, so the
 * offered rate is the fleet size divided by the interval, whatever the API's latency. This module
 * turns an experiment into that schedule: phases with fleet sizes and rates, and exact totals.
 */

/** The two periodic requests of a device: POST /v1/measurements and GET /v1/command. */
export type Endpoint = 'measurements' | 'command';

export type PerEndpoint = Record<Endpoint, number>;

export interface PlanPhase {
  /** Position in plan.phases. */
  index: number;
  /** ramp: the fleet changes linearly from devicesAtStart to devicesAtEnd; hold: it stays at devicesAtEnd. */
  kind: 'ramp' | 'hold';
  /** The stage (index in spec.load.stages) this phase runs, for an explicit load. */
  stage?: number;
  /** The search step (0-based) this phase belongs to, for a search. */
  step?: number;
  startS: number;
  durationS: number;
  endS: number;
  devicesAtStart: number;
  devicesAtEnd: number;
  /** Requests per second offered at the start and at the end of the phase (linear in between). */
  ratesAtStart: PerEndpoint;
  ratesAtEnd: PerEndpoint;
  /** Requests the phase offers: the integral of the rate over the phase. */
  expectedRequests: PerEndpoint;
}

export interface TrafficPlan {
  source: 'stages' | 'search';
  seed: number;
  jitter: number;
  /** Seconds between two requests of one device, per endpoint. */
  intervalS: PerEndpoint;
  phases: readonly PlanPhase[];
  durationS: number;
  /** The largest fleet the plan reaches: also how many devices log in at least once. */
  peakDevices: number;
  /** Requests offered over the whole plan (a search's runner may stop earlier). */
  totals: PerEndpoint;
}

interface Segment {
  kind: 'ramp' | 'hold';
  durationS: number;
  from: number;
  to: number;
  stage?: number;
  step?: number;
}

export function buildTrafficPlan(experiment: LoadExperiment): TrafficPlan {
  const { fleet, load } = experiment.spec;
  const intervalS: PerEndpoint = {
    measurements: durationSeconds(fleet.reportInterval),
    command: durationSeconds(fleet.pollInterval),
  };
  const segments = load.search ? searchSegments(load.search) : stageSegments(load.stages ?? []);
  const phases: PlanPhase[] = [];
  let startS = 0;
  for (const segment of segments) {
    const perEndpoint = (f: (interval: number) => number) =>
      ({ measurements: f(intervalS.measurements), command: f(intervalS.command) }) satisfies PerEndpoint;
    phases.push({
      index: phases.length,
      kind: segment.kind,
      ...(segment.stage !== undefined ? { stage: segment.stage } : {}),
      ...(segment.step !== undefined ? { step: segment.step } : {}),
      startS,
      durationS: segment.durationS,
      endS: startS + segment.durationS,
      devicesAtStart: segment.from,
      devicesAtEnd: segment.to,
      ratesAtStart: perEndpoint((interval) => segment.from / interval),
      ratesAtEnd: perEndpoint((interval) => segment.to / interval),
      // A linear ramp's integral is exact: mean fleet times duration, over the interval.
      expectedRequests: perEndpoint((interval) => ((segment.from + segment.to) / 2) * (segment.durationS / interval)),
    });
    startS += segment.durationS;
  }
  const sum = (endpoint: Endpoint) => phases.reduce((total, phase) => total + phase.expectedRequests[endpoint], 0);
  return {
    source: load.search ? 'search' : 'stages',
    seed: fleet.seed,
    jitter: fleet.jitter,
    intervalS,
    phases,
    durationS: startS,
    peakDevices: phases.reduce((peak, phase) => Math.max(peak, phase.devicesAtStart, phase.devicesAtEnd), 0),
    totals: { measurements: sum('measurements'), command: sum('command') },
  };
}

function stageSegments(stages: NonNullable<LoadExperiment['spec']['load']['stages']>): Segment[] {
  let previous = 0;
  return stages.map((stage, index) => {
    // A hold sets the fleet at once (a step change) and keeps it; a ramp moves linearly.
    const from = stage.shape === 'hold' ? stage.devices : previous;
    previous = stage.devices;
    return { kind: stage.shape, durationS: durationSeconds(stage.duration), from, to: stage.devices, stage: index };
  });
}

function searchSegments(search: NonNullable<LoadExperiment['spec']['load']['search']>): Segment[] {
  const rampS = durationSeconds(search.rampUp);
  const holdS = durationSeconds(search.hold);
  let previous = 0;
  return searchStepDevices(search).flatMap((devices, step) => {
    const segments: Segment[] = [];
    if (rampS > 0) segments.push({ kind: 'ramp', durationS: rampS, from: previous, to: devices, step });
    segments.push({ kind: 'hold', durationS: holdS, from: devices, to: devices, step });
    previous = devices;
    return segments;
  });
}

/** The phase running at time t (seconds from the start), or undefined outside the plan. */
export function phaseAt(plan: TrafficPlan, t: number): PlanPhase | undefined {
  if (!(t >= 0 && t < plan.durationS)) return undefined;
  let low = 0;
  let high = plan.phases.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (plan.phases[middle]!.startS <= t) low = middle;
    else high = middle - 1;
  }
  return plan.phases[low];
}

/** Fleet size at time t: fractional during a ramp, 0 before and after the plan. */
export function fleetAt(plan: TrafficPlan, t: number): number {
  const phase = phaseAt(plan, t);
  return phase ? fleetInPhase(phase, t) : 0;
}

export function fleetInPhase(phase: PlanPhase, t: number): number {
  if (phase.kind === 'hold' || phase.durationS === 0) return phase.devicesAtEnd;
  const progress = Math.min(1, Math.max(0, (t - phase.startS) / phase.durationS));
  return phase.devicesAtStart + (phase.devicesAtEnd - phase.devicesAtStart) * progress;
}

/**
 * How many devices are online at t: devices 0..n-1 with n the fleet size rounded to the nearest
 * whole device (rounding rather than flooring keeps a ramp's request count unbiased).
 */
export function activeDevicesAt(plan: TrafficPlan, t: number): number {
  return Math.round(fleetAt(plan, t));
}

/** Offered requests per second for an endpoint at time t. */
export function rateAt(plan: TrafficPlan, endpoint: Endpoint, t: number): number {
  return fleetAt(plan, t) / plan.intervalS[endpoint];
}
