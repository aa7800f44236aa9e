import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scalingStudy, uslCapacity, type ScalingRun } from '../src/analysis/index.js';
import { scalingChart } from '../src/analysis/report/scaling.js';

/* The scaling study's reading of capacities (pure: the real local sweep is in local-scaling.test.ts). */

const run = (replicas: number, capacityRps: number | undefined, saturated = true): ScalingRun => ({
  replicas, ...(capacityRps !== undefined ? { capacityRps, stage: 'stage 2 hold' } : {}), saturated, bottleneck: 'api-cpu', verdict: '',
});

describe('scaling study', () => {
  it('fits the USL to three or more counts and reads N* and the predicted maximum from it', () => {
    const truth = { lambda: 100, sigma: 0.05, kappa: 0.02 };
    const study = scalingStudy([1, 2, 4, 8].map((n) => run(n, uslCapacity(truth, n))));
    assert.ok(study.fit);
    assert.ok(Math.abs(study.fit.sigma - truth.sigma) < 1e-3 && Math.abs(study.fit.kappa - truth.kappa) < 1e-4, JSON.stringify(study.fit));
    const peak = Math.sqrt((1 - truth.sigma) / truth.kappa);
    assert.ok(Math.abs(study.fit.peakN! - peak) < 0.05);
    assert.ok(Math.abs(study.predictedMaxRps! - uslCapacity(truth, peak)) < 0.5);
    assert.ok(study.notes.some((note) => /peaks at N\* ≈ 6\.89 replicas/.test(note)), study.notes.join('\n'));
  });

  it('with κ = 0, gives Amdahl\'s limit λ/σ as the maximum', () => {
    const study = scalingStudy([1, 2, 3].map((n) => run(n, uslCapacity({ lambda: 100, sigma: 0.25, kappa: 0 }, n))));
    assert.equal(study.fit!.peakN, undefined);
    assert.ok(Math.abs(study.predictedMaxRps! - 400) < 5, String(study.predictedMaxRps));
  });

  it('with two saturated counts, a speedup and no fit; with one, nothing; says which runs give only a lower bound', () => {
    const two = scalingStudy([run(1, 100), run(2, 150), run(4, 160, false)]);
    assert.equal(two.fit, undefined);
    assert.deepEqual(two.notes, [
      '4 replicas: the SLO held at every stage, so 160 rps is a lower bound; the fit leaves this count out (raise the load until it breaks).',
      'From 1 replica to 2: 1.5× the throughput for 2× the replicas (75 % scaling efficiency).',
      'Two saturated replica counts give a speedup, not the contention (σ) and coherency (κ) behind it: add a third for a Universal Scalability Law fit.',
    ]);
    const one = scalingStudy([run(1, 100), run(2, undefined), run(4, undefined)]);
    assert.equal(one.fit, undefined);
    assert.match(one.notes.at(-1)!, /Fewer than two replica counts were pushed past the SLO/);
    assert.match(one.notes[0]!, /^2 replicas: nothing could be judged/);
  });

  it('fits no peak to lower bounds: counts whose SLO held measured the offered load, not the API', () => {
    // Every count held at the same offered rate: a fit over them would "find" a peak near 1.4 replicas.
    const held = scalingStudy([1, 2, 3].map((n) => run(n, 20, false)));
    assert.equal(held.fit, undefined);
    assert.equal(held.predictedMaxRps, undefined);
    assert.match(held.notes.at(-1)!, /Fewer than two replica counts were pushed past the SLO/);
    // Three saturated counts and one that held: the fit is over the three.
    const truth = { lambda: 100, sigma: 0.1, kappa: 0.01 };
    const mixed = scalingStudy([...[1, 2, 3].map((n) => run(n, uslCapacity(truth, n))), run(6, 150, false)]);
    assert.ok(mixed.fit && Math.abs(mixed.fit.sigma - truth.sigma) < 1e-3, JSON.stringify(mixed.fit));
    assert.match(mixed.notes[0]!, /^6 replicas: .* lower bound; the fit leaves this count out/);
  });

  it('charts the measured points, the fit and the linear and Amdahl references', () => {
    const svg = scalingChart(scalingStudy([1, 2, 3, 4].map((n) => run(n, uslCapacity({ lambda: 80, sigma: 0.1, kappa: 0.1 }, n)))));
    for (const name of ['measured', 'USL fit', 'linear (λN)', 'Amdahl (κ = 0)']) assert.match(svg, new RegExp(`<title>${name.replace(/[()]/g, '\\$&')}</title>`), name);
    assert.match(svg, /N\* /);
  });
});
