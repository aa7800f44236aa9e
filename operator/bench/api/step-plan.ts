import { formatErrors, parseExperiment, type LoadExperiment } from '../../src/schema/index.js';
import { buildTrafficPlan, type Endpoint, type TrafficPlan } from '../../src/traffic/index.js';

/*
 * The benchmark's load as the traffic model's data: a fleet of `devices` in which every device
 * reports and polls once per interval, the interval chosen so the fleet offers the step's rate.
 * One step is a plan of two holds, the warm-up and the measured window; the generator runs its
 * arrivals (traffic/arrivals.ts), so the benchmark sends exactly what local mode and k6 would send
 * for that fleet: evenly spaced arrivals, each device on its own schedule, the same payloads.
 */

/**
 * `mix`: the device mix, POST /v1/measurements and GET /v1/command in equal parts; `polls`: GET
 * /v1/command only (identical SQL in both servers, no batching); `ingest`: POST /v1/measurements
 * only (the API's ingest capacity, for the ceiling comparison).
 */
export type LoadMode = 'mix' | 'polls' | 'ingest';

export const MODE_ENDPOINTS: Readonly<Record<LoadMode, readonly Endpoint[]>> = {
  mix: ['measurements', 'command'],
  polls: ['command'],
  ingest: ['measurements'],
};

/** What the benchmark's requests look like; also what registers the fleet (dataset/prepare.ts). */
export function benchExperiment(devices: number, intervalS = 30, holdsS: readonly number[] = [1]): LoadExperiment {
  // Durations in seconds with microsecond digits: the offered rate is the asked one to 1e-6.
  const seconds = (s: number) => `${Number(s.toFixed(6))}s`;
  const manifest = {
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name: 'api-bench' },
    spec: {
      fleet: { devices, reportInterval: seconds(intervalS), pollInterval: seconds(intervalS) },
      load: { stages: holdsS.map((s) => ({ devices, duration: seconds(s), shape: 'hold' })) },
      timeout: '24h',
    },
  };
  const parsed = parseExperiment(JSON.stringify(manifest), 'api-bench');
  if (!parsed.ok) throw new Error(`the benchmark's fleet is not a valid experiment: ${formatErrors(parsed.errors)}`);
  return parsed.experiment;
}

/** A step at `rate` requests/s in total: phase 0 the warm-up, phase 1 the measured window. */
export function stepPlan(devices: number, mode: LoadMode, rate: number, warmupS: number, measureS: number): TrafficPlan {
  // Each endpoint of the mode gets an equal share of the rate; one request per device per interval.
  const perEndpointRate = rate / MODE_ENDPOINTS[mode].length;
  return buildTrafficPlan(benchExperiment(devices, devices / perEndpointRate, [warmupS, measureS]));
}
