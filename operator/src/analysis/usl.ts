/*
 * The Universal Scalability Law (N. J. Gunther, "Guerrilla Capacity Planning", Springer 2007,
 * ch. 4–5): capacity with N replicas is
 *
 *     C(N) = λN / (1 + σ(N − 1) + κN(N − 1))
 *
 * λ: the capacity of one replica; σ: contention (the serial fraction, Amdahl); κ: coherency
 * (crosstalk between replicas, which makes capacity fall past N* = √((1 − σ)/κ)).
 *
 * The fit follows Gunther's recipe, then refines it: λ from the smallest N; the linearised form
 * y = N/R(N) − 1 = κx² + (σ + κ)x with x = N − 1 and R = C/λ, by least squares through the origin;
 * then Levenberg–Marquardt on (λ, σ, κ) together, kept non-negative, minimising the squared error
 * of C itself (the linearisation weights small N too little and fixes λ too early).
 */

import { AnalysisInputError } from './errors.js';

export interface UslPoint {
  /** Replicas (or processors, users): N ≥ 1. */
  n: number;
  /** Throughput at that N, e.g. requests per second at the last step that held the SLO. */
  capacity: number;
}

export interface UslFit {
  lambda: number;
  sigma: number;
  kappa: number;
  /** 1 − SSE/SST of the capacities. */
  rSquared: number;
  /** Root mean square error, in capacity units. */
  rmse: number;
  /** N at which capacity peaks (κ > 0), and that capacity. */
  peakN?: number;
  peakCapacity?: number;
  points: number;
  iterations: number;
}

export function uslCapacity(fit: Pick<UslFit, 'lambda' | 'sigma' | 'kappa'>, n: number): number {
  return (fit.lambda * n) / (1 + fit.sigma * (n - 1) + fit.kappa * n * (n - 1));
}

export function fitUsl(points: readonly UslPoint[]): UslFit {
  const data = points.filter((point) => Number.isFinite(point.n) && Number.isFinite(point.capacity));
  if (data.some((point) => point.n < 1 || point.capacity <= 0)) {
    throw new AnalysisInputError('USL points need n >= 1 and a positive capacity');
  }
  const distinct = new Set(data.map((point) => point.n)).size;
  if (distinct < 3) {
    throw new AnalysisInputError(`a USL fit needs capacities at 3 or more different replica counts (λ, σ, κ); got ${distinct}`);
  }
  let params = initialGuess(data);
  let error = sse(data, params);
  let damping = 1e-3;
  let iterations = 0;
  let converged = false;
  for (; iterations < 500 && !converged; iterations++) {
    const { normal, gradient } = normalEquations(data, params);
    let improved = false;
    // Try increasing damping until the step lowers the error (Marquardt's scaling by diag(JᵀJ)).
    for (let attempt = 0; attempt < 30 && !improved; attempt++) {
      const damped = normal.map((row, i) => row.map((value, j) => (i === j ? value + damping * Math.max(value, 1e-12) : value)));
      const step = solve3(damped, gradient);
      if (!step) {
        damping *= 10;
        continue;
      }
      const candidate = params.map((value, i) => Math.max(0, value + step[i]!)) as Params;
      const candidateError = sse(data, candidate);
      if (candidateError < error) {
        const relative = (error - candidateError) / Math.max(error, Number.MIN_VALUE);
        params = candidate;
        error = candidateError;
        damping = Math.max(damping / 10, 1e-12);
        improved = true;
        converged = relative < 1e-14;
      } else {
        damping *= 10;
      }
    }
    if (!improved) break;
  }
  const [lambda, sigma, kappa] = params;
  const mean = data.reduce((sum, point) => sum + point.capacity, 0) / data.length;
  const total = data.reduce((sum, point) => sum + (point.capacity - mean) ** 2, 0);
  const fit: UslFit = {
    lambda, sigma, kappa,
    rSquared: total > 0 ? 1 - error / total : 1,
    rmse: Math.sqrt(error / data.length),
    points: data.length,
    iterations,
  };
  if (kappa > 0 && sigma < 1) {
    fit.peakN = Math.sqrt((1 - sigma) / kappa);
    fit.peakCapacity = uslCapacity(fit, fit.peakN);
  }
  return fit;
}

type Params = [number, number, number];

function initialGuess(data: readonly UslPoint[]): Params {
  const smallest = Math.min(...data.map((point) => point.n));
  const atSmallest = data.filter((point) => point.n === smallest);
  // C(1) = λ; from a larger smallest N, capacity per replica is a lower bound of λ.
  const lambda = atSmallest.reduce((sum, point) => sum + point.capacity / point.n, 0) / atSmallest.length;
  let sxx = 0;
  let sxxx = 0;
  let sxxxx = 0;
  let sxy = 0;
  let sxxy = 0;
  for (const point of data) {
    const x = point.n - 1;
    if (x <= 0) continue;
    const y = point.n / (point.capacity / lambda) - 1;
    sxx += x * x;
    sxxx += x * x * x;
    sxxxx += x * x * x * x;
    sxy += x * y;
    sxxy += x * x * y;
  }
  // y = a·x² + b·x through the origin: [Σx⁴ Σx³; Σx³ Σx²] [a b]ᵀ = [Σx²y Σxy]ᵀ
  const determinant = sxxxx * sxx - sxxx * sxxx;
  const a = determinant !== 0 ? (sxxy * sxx - sxxx * sxy) / determinant : 0;
  const b = determinant !== 0 ? (sxxxx * sxy - sxxx * sxxy) / determinant : 0;
  const kappa = Math.max(0, a);
  return [lambda, Math.max(0, b - kappa), kappa];
}

function sse(data: readonly UslPoint[], [lambda, sigma, kappa]: Params): number {
  return data.reduce((sum, point) => sum + (point.capacity - uslCapacity({ lambda, sigma, kappa }, point.n)) ** 2, 0);
}

/** JᵀJ and Jᵀr for the residuals r = C − f(N). */
function normalEquations(data: readonly UslPoint[], [lambda, sigma, kappa]: Params): { normal: number[][]; gradient: number[] } {
  const normal = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  const gradient = [0, 0, 0];
  for (const { n, capacity } of data) {
    const denominator = 1 + sigma * (n - 1) + kappa * n * (n - 1);
    const model = (lambda * n) / denominator;
    const jacobian = [n / denominator, (-lambda * n * (n - 1)) / denominator ** 2, (-lambda * n * n * (n - 1)) / denominator ** 2];
    const residual = capacity - model;
    for (let i = 0; i < 3; i++) {
      gradient[i]! += jacobian[i]! * residual;
      for (let j = 0; j < 3; j++) normal[i]![j]! += jacobian[i]! * jacobian[j]!;
    }
  }
  return { normal, gradient };
}

/** Gaussian elimination with partial pivoting; undefined when singular. */
function solve3(matrix: number[][], vector: number[]): number[] | undefined {
  const a = matrix.map((row, i) => [...row, vector[i]!]);
  for (let column = 0; column < 3; column++) {
    let pivot = column;
    for (let row = column + 1; row < 3; row++) if (Math.abs(a[row]![column]!) > Math.abs(a[pivot]![column]!)) pivot = row;
    if (Math.abs(a[pivot]![column]!) < 1e-300) return undefined;
    [a[column], a[pivot]] = [a[pivot]!, a[column]!];
    for (let row = column + 1; row < 3; row++) {
      const factor = a[row]![column]! / a[column]![column]!;
      for (let k = column; k < 4; k++) a[row]![k]! -= factor * a[column]![k]!;
    }
  }
  const x = [0, 0, 0];
  for (let row = 2; row >= 0; row--) {
    let sum = a[row]![3]!;
    for (let k = row + 1; k < 3; k++) sum -= a[row]![k]! * x[k]!;
    x[row] = sum / a[row]![row]!;
  }
  return x.every(Number.isFinite) ? x : undefined;
}

/**
 * Capacity per replica count from stage summaries of runs that varied replicas: the most any
 * judged stage at that count served (the plateau a saturated system reaches).
 */
export function capacityByReplicas(stages: readonly { replicas?: number; achievedRps?: number }[]): UslPoint[] {
  const best = new Map<number, number>();
  for (const stage of stages) {
    if (stage.replicas === undefined || stage.achievedRps === undefined) continue;
    best.set(stage.replicas, Math.max(best.get(stage.replicas) ?? 0, stage.achievedRps));
  }
  return [...best.entries()].sort(([a], [b]) => a - b).map(([n, capacity]) => ({ n, capacity }));
}
