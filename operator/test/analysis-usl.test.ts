import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capacityByReplicas, fitUsl, uslCapacity, type UslPoint } from '../src/analysis/index.js';

/*
 * The Universal Scalability Law fit. A published dataset would be the better check (Gunther's
 * ray-tracer benchmark in "Guerrilla Capacity Planning", or the SPEC SDM91 example), but I cannot
 * recall their exact throughputs and fitted σ/κ with the certainty a test needs, so these tests
 * generate capacities from known λ, σ, κ (with and without deterministic noise) and check that the
 * fit recovers them.
 */

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REPLICAS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32];

function generate(truth: { lambda: number; sigma: number; kappa: number }, noise = 0, seed = 7, ns = REPLICAS): UslPoint[] {
  const next = random(seed);
  return ns.map((n) => ({ n, capacity: uslCapacity(truth, n) * (1 + noise * (2 * next() - 1)) }));
}

describe('Universal Scalability Law fit', () => {
  const cases = [
    { name: 'contention and coherency', truth: { lambda: 850, sigma: 0.04, kappa: 0.0015 } },
    { name: 'contention only (Amdahl: κ = 0)', truth: { lambda: 1200, sigma: 0.08, kappa: 0 } },
    { name: 'nearly linear', truth: { lambda: 300, sigma: 0.002, kappa: 0.00001 } },
    { name: 'strong coherency (retrograde past N* ≈ 5)', truth: { lambda: 500, sigma: 0.1, kappa: 0.035 } },
  ];

  for (const { name, truth } of cases) {
    it(`recovers λ, σ, κ from exact data: ${name}`, () => {
      const fit = fitUsl(generate(truth));
      assert.ok(Math.abs(fit.lambda - truth.lambda) / truth.lambda < 1e-6, `λ ${fit.lambda}`);
      assert.ok(Math.abs(fit.sigma - truth.sigma) < 1e-6, `σ ${fit.sigma}`);
      assert.ok(Math.abs(fit.kappa - truth.kappa) < 1e-7, `κ ${fit.kappa}`);
      assert.ok(fit.rSquared > 0.999999);
    });

    it(`recovers them within tolerance from data with ±3% noise: ${name}`, () => {
      for (const seed of [1, 2, 3]) {
        const fit = fitUsl(generate(truth, 0.03, seed));
        assert.ok(Math.abs(fit.lambda - truth.lambda) / truth.lambda < 0.05, `seed ${seed}: λ ${fit.lambda}`);
        assert.ok(Math.abs(fit.sigma - truth.sigma) < 0.02, `seed ${seed}: σ ${fit.sigma}`);
        assert.ok(Math.abs(fit.kappa - truth.kappa) < 0.2 * truth.kappa + 0.0003, `seed ${seed}: κ ${fit.kappa}`);
        assert.ok(fit.sigma >= 0 && fit.kappa >= 0, 'parameters stay physical');
        // What the fit is for: predicting capacity at a replica count that was not measured.
        const predicted = uslCapacity(fit, 10);
        assert.ok(Math.abs(predicted - uslCapacity(truth, 10)) / uslCapacity(truth, 10) < 0.04, `seed ${seed}: C(10) ${predicted}`);
      }
    });
  }

  it('places the peak at N* = √((1 − σ)/κ)', () => {
    const truth = { lambda: 500, sigma: 0.1, kappa: 0.035 };
    const fit = fitUsl(generate(truth));
    assert.ok(Math.abs(fit.peakN! - Math.sqrt(0.9 / 0.035)) < 1e-4);
    assert.ok(Math.abs(fit.peakCapacity! - uslCapacity(truth, fit.peakN!)) < 1e-6);
    assert.equal(fitUsl(generate({ lambda: 100, sigma: 0.1, kappa: 0 })).peakN, undefined, 'no peak without coherency');
  });

  it('fits without a single-replica measurement (λ is then estimated, not read off)', () => {
    const truth = { lambda: 850, sigma: 0.04, kappa: 0.0015 };
    const fit = fitUsl(generate(truth, 0, 7, [2, 4, 8, 16, 32]));
    assert.ok(Math.abs(fit.lambda - truth.lambda) / truth.lambda < 1e-5, `λ ${fit.lambda}`);
  });

  it('refuses what it cannot fit, saying why', () => {
    assert.throws(() => fitUsl([{ n: 1, capacity: 100 }, { n: 2, capacity: 180 }]), /3 or more different replica counts/);
    assert.throws(() => fitUsl([{ n: 1, capacity: 100 }, { n: 1, capacity: 101 }, { n: 2, capacity: 180 }]), /got 2/);
    assert.throws(() => fitUsl([{ n: 0, capacity: 100 }, { n: 2, capacity: 180 }, { n: 3, capacity: 200 }]), /n >= 1/);
  });

  it('takes the capacity per replica count from stage summaries (the most served)', () => {
    assert.deepEqual(
      capacityByReplicas([
        { replicas: 2, achievedRps: 150 }, { replicas: 1, achievedRps: 90 }, { replicas: 2, achievedRps: 170 },
        { replicas: 1, achievedRps: 100 }, { achievedRps: 999 }, { replicas: 4 },
      ]),
      [{ n: 1, capacity: 100 }, { n: 2, capacity: 170 }],
    );
  });
});
