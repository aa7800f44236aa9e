import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketsInWindow, quantileFromBuckets, quantilesInWindow, type Bucket, type Series } from '../src/analysis/index.js';
import { random } from './support/fixtures.js';

const API_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Cumulative buckets of a distribution given by its CDF. */
function fromCdf(bounds: readonly number[], cdf: (x: number) => number, total = 1000): Bucket[] {
  return [...bounds.map((le) => ({ le, count: total * cdf(le) })), { le: Infinity, count: total }];
}

/** The bucket [lower, upper] that holds x. */
function bucketOf(bounds: readonly number[], x: number): [number, number] {
  const upper = bounds.find((le) => x <= le) ?? Infinity;
  const position = bounds.indexOf(upper);
  return [position > 0 ? bounds[position - 1]! : 0, upper];
}


describe('quantiles from histogram buckets (histogram_quantile, locally)', () => {
  it('is exact for a uniform distribution (linear interpolation inside a bucket is exact there)', () => {
    const bounds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
    const buckets = fromCdf(bounds, (x) => Math.min(1, x));
    for (const q of [0, 0.05, 0.5, 0.95, 0.99, 1]) {
      assert.ok(Math.abs(quantileFromBuckets(q, buckets)! - q) < 1e-12, `q=${q}`);
    }
  });

  for (const meanS of [0.004, 0.05, 0.4]) {
    it(`lands in the true quantile's bucket for an exponential distribution (mean ${meanS * 1000} ms, the API's buckets)`, () => {
      const buckets = fromCdf(API_BOUNDS, (x) => 1 - Math.exp(-x / meanS));
      for (const q of [0.5, 0.9, 0.95, 0.99]) {
        const truth = -meanS * Math.log(1 - q);
        const estimate = quantileFromBuckets(q, buckets)!;
        const [lower, upper] = bucketOf(API_BOUNDS, truth);
        assert.ok(estimate >= lower && estimate <= upper, `q=${q}: ${estimate} outside [${lower}, ${upper}] around ${truth}`);
      }
    });
  }

  it('matches the empirical quantiles of 100,000 log-normal samples to within their bucket', () => {
    const next = random(42);
    const samples: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      // Box–Muller: median 40 ms, σ = 0.8.
      const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
      samples.push(0.04 * Math.exp(0.8 * normal));
    }
    samples.sort((a, b) => a - b);
    const buckets: Bucket[] = [...API_BOUNDS, Infinity].map((le) => ({ le, count: samples.filter((x) => x <= le).length }));
    for (const q of [0.5, 0.95, 0.99]) {
      const empirical = samples[Math.ceil(q * samples.length) - 1]!;
      const estimate = quantileFromBuckets(q, buckets)!;
      const [lower, upper] = bucketOf(API_BOUNDS, empirical);
      assert.ok(estimate >= lower && estimate <= upper, `q=${q}: ${estimate} vs ${empirical}`);
    }
  });

  const edges: { name: string; q: number; buckets: Bucket[]; expected: number | undefined }[] = [
    { name: 'a rank in the +Inf bucket gives the highest finite bound', q: 0.99, buckets: [{ le: 1, count: 10 }, { le: 10, count: 50 }, { le: Infinity, count: 100 }], expected: 10 },
    { name: 'no observations: missing, not 0', q: 0.95, buckets: [{ le: 1, count: 0 }, { le: Infinity, count: 0 }], expected: undefined },
    { name: 'no +Inf bucket: missing', q: 0.5, buckets: [{ le: 1, count: 5 }, { le: 2, count: 10 }], expected: undefined },
    { name: 'a single bucket: missing', q: 0.5, buckets: [{ le: Infinity, count: 10 }], expected: undefined },
    { name: 'q below 0 is -Inf (as Prometheus)', q: -0.1, buckets: [{ le: 1, count: 5 }, { le: Infinity, count: 10 }], expected: -Infinity },
    { name: 'q above 1 is +Inf (as Prometheus)', q: 1.1, buckets: [{ le: 1, count: 5 }, { le: Infinity, count: 10 }], expected: Infinity },
    { name: 'unsorted buckets are sorted', q: 0.5, buckets: [{ le: Infinity, count: 4 }, { le: 2, count: 4 }, { le: 1, count: 0 }], expected: 1.5 },
    { name: 'non-monotonic counts are forced monotonic', q: 0.5, buckets: [{ le: 1, count: 6 }, { le: 2, count: 4 }, { le: Infinity, count: 12 }], expected: 1 },
    { name: 'duplicate bounds (two routes summed) are added', q: 0.75, buckets: [{ le: 1, count: 1 }, { le: 1, count: 1 }, { le: 2, count: 4 }, { le: Infinity, count: 4 }], expected: 1.5 },
    { name: 'a first bucket with a non-positive bound returns that bound', q: 0.1, buckets: [{ le: 0, count: 5 }, { le: 1, count: 10 }, { le: Infinity, count: 10 }], expected: 0 },
  ];
  for (const edge of edges) {
    it(edge.name, () => {
      assert.equal(quantileFromBuckets(edge.q, edge.buckets), edge.expected);
    });
  }
});

describe('bucket rates summed over a window', () => {
  const series = (labels: Record<string, string>, values: number[]): Series => ({ labels, samples: values.map((value, i) => [100 + 15 * i, value]) });

  it('adds the points inside the window only, and the routes together', () => {
    const list = [
      series({ route: 'a', le: '0.1' }, [100, 1, 1, 1]),
      series({ route: 'a', le: '+Inf' }, [100, 2, 2, 2]),
      series({ route: 'b', le: '0.1' }, [100, 3, 3, NaN]),
      series({ route: 'b', le: '+Inf' }, [100, 4, 4, 4]),
    ];
    const buckets = bucketsInWindow(list, 115, 145);
    assert.deepEqual(buckets.map((bucket) => [bucket.le, bucket.count]), [[0.1, 3], [Infinity, 6], [0.1, 6], [Infinity, 12]]);
    // 9 of 18 observations at or below 0.1: the median sits exactly on the bound.
    assert.deepEqual(quantilesInWindow(list, 115, 145, [0.5]), [0.1]);
  });

  it('ignores series without a readable le', () => {
    assert.deepEqual(bucketsInWindow([series({ route: 'a' }, [1])], 0, 1000), []);
  });
});
