import type { AnalysisResult } from './analyze.js';
import { AnalysisInputError } from './errors.js';
import { formatNumber } from './format.js';
import { fitUsl, uslCapacity, type UslFit } from './usl.js';

/*
 * A scaling study: the same load run once per replica count, and what the capacities say about
 * how the API scales. Capacity at a count is the most any judged stage served (the plateau a
 * saturated system reaches); when the run never broke the SLO it is only a lower bound, which
 * says how much load was offered rather than what the API serves, so it is left out of the speedup
 * and the fit (a fit over lower bounds "finds" a peak wherever the offered load was flat). Three or
 * more saturated counts give a Universal Scalability Law fit (usl.ts); fewer, a speedup and no more.
 */

export interface ScalingRun {
  replicas: number;
  /** Requests per second served at the best judged stage; undefined when nothing could be judged. */
  capacityRps?: number;
  /** The stage that served it. */
  stage?: string;
  /** The SLO broke (the API was pushed past what it serves): the capacity is the API's own. */
  saturated: boolean;
  bottleneck: string;
  verdict: string;
  /** Where this count's own report is. */
  reportDir?: string;
}

export interface ScalingStudy {
  runs: ScalingRun[];
  fit?: UslFit;
  /** The most the fit predicts any replica count serves: at N* when κ > 0, else Amdahl's λ/σ. */
  predictedMaxRps?: number;
  /** What the data can and cannot tell, for people. */
  notes: string[];
}

/** A run's capacity: its best judged stage's served rate, and whether it was pushed past the SLO. */
export function runCapacity(analysis: AnalysisResult): Pick<ScalingRun, 'capacityRps' | 'stage' | 'saturated'> {
  const holds = analysis.stages.filter((stage) => stage.kind === 'hold');
  const candidates = (holds.length > 0 ? holds : analysis.stages).filter((stage) => stage.achievedRps !== undefined);
  const best = candidates.reduce<(typeof candidates)[number] | undefined>((top, stage) => (top && top.achievedRps! >= stage.achievedRps! ? top : stage), undefined);
  return {
    ...(best ? { capacityRps: best.achievedRps!, stage: best.name } : {}),
    saturated: analysis.breakingPoint.status === 'broke',
  };
}

export function scalingStudy(runs: readonly ScalingRun[]): ScalingStudy {
  const measured = runs.filter((run) => run.saturated && run.capacityRps !== undefined && run.capacityRps > 0);
  const notes: string[] = [];
  for (const run of runs) {
    if (run.capacityRps === undefined || run.capacityRps <= 0) notes.push(`${replicasText(run.replicas)}: nothing could be judged, so no capacity; the fit leaves this count out.`);
    else if (!run.saturated) notes.push(`${replicasText(run.replicas)}: the SLO held at every stage, so ${formatNumber(run.capacityRps)} rps is a lower bound; the fit leaves this count out (raise the load until it breaks).`);
  }
  const study: ScalingStudy = { runs: [...runs], notes };
  if (measured.length < 2) {
    notes.push('Fewer than two replica counts were pushed past the SLO: the study cannot say how the API scales.');
    return study;
  }
  const first = measured[0]!;
  const last = measured.at(-1)!;
  const speedup = last.capacityRps! / first.capacityRps!;
  const efficiency = speedup / (last.replicas / first.replicas);
  notes.push(
    `From ${replicasText(first.replicas)} to ${last.replicas}: ${formatNumber(speedup)}× the throughput for ${formatNumber(last.replicas / first.replicas)}× the replicas ` +
      `(${formatNumber(efficiency * 100)} % scaling efficiency).`,
  );
  if (measured.length < 3) {
    notes.push('Two saturated replica counts give a speedup, not the contention (σ) and coherency (κ) behind it: add a third for a Universal Scalability Law fit.');
    return study;
  }
  let fit: UslFit;
  try {
    fit = fitUsl(measured.map((run) => ({ n: run.replicas, capacity: run.capacityRps! })));
  } catch (error) {
    if (!(error instanceof AnalysisInputError)) throw error;
    notes.push(`No Universal Scalability Law fit: ${error.message}.`);
    return study;
  }
  study.fit = fit;
  if (fit.peakN !== undefined && fit.peakCapacity !== undefined) {
    study.predictedMaxRps = fit.peakCapacity;
    notes.push(
      `Capacity peaks at N* ≈ ${formatNumber(fit.peakN)} replicas (${formatNumber(fit.peakCapacity)} rps predicted); past it, more replicas serve less ` +
        `(κ = ${formatNumber(fit.kappa)}: the replicas' coordination costs more than they add).`,
    );
  } else if (fit.sigma > 0) {
    study.predictedMaxRps = fit.lambda / fit.sigma;
    notes.push(`No coherency cost measured (κ = 0): capacity keeps rising with replicas, towards Amdahl's limit λ/σ ≈ ${formatNumber(study.predictedMaxRps)} rps.`);
  } else {
    notes.push('Capacity grew linearly with replicas over the counts measured (σ = κ = 0): the limit is beyond them.');
  }
  if (fit.rSquared < 0.9) notes.push(`The fit is loose (R² ${formatNumber(fit.rSquared)}): the capacities are noisy or do not follow the law; measure more counts, or longer holds.`);
  const largest = Math.max(...measured.map((run) => run.replicas));
  if (fit.peakN !== undefined && fit.peakN > 2 * largest) notes.push(`N* is beyond twice the largest count measured (${largest}): an extrapolation.`);
  return study;
}

/** The fitted capacity at n, or undefined without a fit. */
export function predictedCapacity(study: ScalingStudy, n: number): number | undefined {
  return study.fit ? uslCapacity(study.fit, n) : undefined;
}

export function replicasText(n: number): string {
  return `${n} replica${n === 1 ? '' : 's'}`;
}
