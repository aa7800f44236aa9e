import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capacityByReplicas, fitUsl, uslCapacity, type UslPoint } from '../src/analysis/index.js';
import { random } from './support/fixtures.js';

/*
 * The Universal Scalability Law fit: checked against a published dataset (below), and on capacities
 * generated from known λ, σ, κ (with and without deterministic noise), which the fit must recover.
 */

/**
 * The Cisco benchmark (throughput at concurrency 1..32) and the model fitted to it, as published in
 * Baron Schwartz, "Practical Scalability Analysis with the Universal Scalability Law" (VividCortex,
 * 2015); the same table and values are the test vectors of the Apache-2.0 usl4j library.
 */
const CISCO: [number, number][] = [
  [1, 955.16], [2, 1878.91], [3, 2688.01], [4, 3548.68], [5, 4315.54], [6, 5130.43], [7, 5931.37], [8, 6531.08],
  [9, 7219.8], [10, 7867.61], [11, 8278.71], [12, 8646.7], [13, 9047.84], [14, 9426.55], [15, 9645.37], [16, 9897.24],
  [17, 10097.6], [18, 10240.5], [19, 10532.39], [20, 10798.52], [21, 11151.43], [22, 11518.63], [23, 11806], [24, 12089.37],
  [25, 12075.41], [26, 12177.29], [27, 12211.41], [28, 12158.93], [29, 12155.27], [30, 12118.04], [31, 12140.4], [32, 12074.39],
];
const CISCO_BOOK = { sigma: 0.02671591, kappa: 7.690945e-4, lambda: 995.6486 };

describe('the USL fit on a published dataset', () => {
  it('recovers the book\'s σ, κ and λ for the Cisco benchmark (within 0.02%)', () => {
    const fit = fitUsl(CISCO.map(([n, capacity]) => ({ n, capacity })));
    for (const key of ['sigma', 'kappa', 'lambda'] as const) {
      const relative = Math.abs(fit[key] - CISCO_BOOK[key]) / CISCO_BOOK[key];
      assert.ok(relative < 2e-4, `${key}: fitted ${fit[key]}, published ${CISCO_BOOK[key]} (${(relative * 100).toFixed(3)}% off)`);
    }
    // The book's peak: about 12,341 at N ≈ 35 (N* = sqrt((1 − σ) / κ)).
    const peakN = Math.sqrt((1 - fit.sigma) / fit.kappa);
    assert.ok(Math.abs(peakN - 35) < 1, `peak concurrency ${peakN}`);
    assert.ok(Math.abs(uslCapacity(fit, 35) - 12341) / 12341 < 0.01, `peak capacity ${uslCapacity(fit, 35)}`);
  });
});


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
