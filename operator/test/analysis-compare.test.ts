// loadlab compare's statistics on synthetic runs whose truth is known: the same distribution twice
// (no regression), a shifted one (worse), a real but small shift (below the minimum effect), and the
// rules that keep thin data from being judged. The end-to-end test with real runs is in local-run.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareRuns, DEFAULT_MINIMUM_EFFECTS, parseMinimumEffects, renderComparison, statistics,
  type ComparableRun, type ComparableStage,
} from '../src/analysis/compare/index.js';
import { mulberry32, resample } from '../src/analysis/compare/bootstrap.js';

const LE = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

interface StageShape {
  name?: string;
  devices?: number;
  rps: number;
  /** Median latency, seconds (log-normal, σ 0.5). */
  median: number;
  errors?: number;
  intervals?: number;
  cpuPerRequestS?: number;
}

/** A stage of independent 2 s intervals drawn from the shape; `seed` makes two draws differ. */
function stage(shape: StageShape, seed: number): ComparableStage {
  const random = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const n = shape.intervals ?? 20;
  const step = 2;
  const record: ComparableStage = {
    index: 1, name: shape.name ?? 'stage 2 hold', devices: shape.devices ?? 100, offeredRps: shape.rps,
    unixS: [], ok: [], failed: [], total: [], apiCpuCores: [], latencyLe: LE, latencyBuckets: [],
  };
  for (let i = 0; i < n; i++) {
    const requests = Math.round(shape.rps * step * (1 + 0.02 * normal()));
    const counts = new Array<number>(LE.length + 1).fill(0);
    let failed = 0;
    for (let r = 0; r < requests; r++) {
      const latency = shape.median * Math.exp(0.5 * normal());
      for (let k = 0; k <= LE.length; k++) if (k === LE.length || latency <= LE[k]!) counts[k]!++;
      if (random() < (shape.errors ?? 0)) failed++;
    }
    record.unixS.push(1000 + i * step);
    record.total.push(requests / step);
    record.failed.push(failed / step);
    record.ok.push((requests - failed) / step);
    record.apiCpuCores.push(((requests - failed) / step) * (shape.cpuPerRequestS ?? 0.001) * (1 + 0.05 * normal()));
    record.latencyBuckets!.push(counts.map((count) => count / step));
  }
  return record;
}

function run(stages: ComparableStage[], extra: Partial<ComparableRun> = {}): ComparableRun {
  return {
    version: 1, label: 'synthetic', source: 'local', engine: 'loadlab', startUnixS: 1000, stepS: 2, rateWindowS: 2,
    slo: { percentile: 95, latencyThresholdS: 0.25, maxErrorRate: 0.01 }, outcome: 'held', bottleneck: 'none',
    lastGood: { name: stages.at(-1)!.name, devices: stages.at(-1)!.devices }, stages, ...extra,
  };
}

const flags = (comparison: ReturnType<typeof compareRuns>) =>
  Object.fromEntries(comparison.stages[0]!.measures.map((measure) => [measure.measure, measure.flag]));

describe('loadlab compare: the statistics', () => {
  it('the same load twice (two draws of one distribution) is within noise everywhere: no regression', () => {
    for (const seeds of [[1, 2], [3, 4], [5, 6], [7, 8]]) {
      const shape = { rps: 200, median: 0.02, errors: 0.002, cpuPerRequestS: 0.002 };
      const comparison = compareRuns(run([stage(shape, seeds[0]!)]), run([stage(shape, seeds[1]!)]));
      assert.equal(comparison.regressed, false, renderComparison(comparison, 'text'));
      for (const measure of comparison.stages[0]!.measures) assert.equal(measure.flag, 'within-noise', `${measure.measure}: ${measure.why}`);
    }
  });

  it('latency doubled is worse at p50, p95 and p99, with an interval around the true shift', () => {
    const comparison = compareRuns(run([stage({ rps: 200, median: 0.02 }, 1)]), run([stage({ rps: 200, median: 0.04 }, 2)]));
    assert.equal(comparison.regressed, true);
    assert.deepEqual(flags(comparison), { served: 'within-noise', errors: 'within-noise', p50: 'worse', p95: 'worse', p99: 'worse', cpu: 'within-noise' });
    const p50 = comparison.stages[0]!.measures.find((measure) => measure.measure === 'p50')!;
    assert.ok(p50.relative! > 0.8 && p50.relative! < 1.2, `p50 shift ${p50.relative}`);
    assert.ok(p50.interval![0] > 0 && p50.interval![0] < p50.difference! && p50.interval![1] > p50.difference!, `interval ${p50.interval} around ${p50.difference}`);
    assert.match(comparison.regressions.join('\n'), /stage 2 hold: p95 \+\d+/);
    // The other way round it is an improvement, not a regression.
    const back = compareRuns(run([stage({ rps: 200, median: 0.04 }, 2)]), run([stage({ rps: 200, median: 0.02 }, 1)]));
    assert.equal(back.regressed, false);
    assert.equal(flags(back).p95, 'better');
  });

  it('a real but small shift (4 % with many requests) is beyond noise yet below the minimum effect: not flagged, and says why', () => {
    const comparison = compareRuns(run([stage({ rps: 2000, median: 0.02, intervals: 30 }, 1)]), run([stage({ rps: 2000, median: 0.0208, intervals: 30 }, 2)]));
    const p50 = comparison.stages[0]!.measures.find((measure) => measure.measure === 'p50')!;
    assert.ok(p50.interval![0] > 0, `the shift is real: ${p50.why}`);
    assert.equal(p50.flag, 'within-noise');
    assert.match(p50.why, /below the minimum effect \(10 % and 1 ms\)/);
    assert.equal(comparison.regressed, false);
    // A user who cares about 1 % gets it flagged.
    const strict = compareRuns(run([stage({ rps: 2000, median: 0.02, intervals: 30 }, 1)]), run([stage({ rps: 2000, median: 0.0208, intervals: 30 }, 2)]), parseMinimumEffects(['p50=1%', 'latency-ms=0']));
    assert.equal(strict.stages[0]!.measures.find((measure) => measure.measure === 'p50')!.flag, 'worse');
  });

  it('served 10 % less, 5 points more errors, CPU per request doubled: each worse', () => {
    const comparison = compareRuns(
      run([stage({ rps: 200, median: 0.02, cpuPerRequestS: 0.001 }, 1)]),
      run([stage({ rps: 180, median: 0.02, errors: 0.05, cpuPerRequestS: 0.002 }, 2)]),
    );
    const got = flags(comparison);
    assert.equal(got.served, 'worse');
    assert.equal(got.errors, 'worse');
    assert.equal(got.cpu, 'worse');
  });

  it('thin data is not judged: too few intervals, too few requests above a quantile, an idle API\'s CPU per request', () => {
    const few = compareRuns(run([stage({ rps: 200, median: 0.02, intervals: 2 }, 1)]), run([stage({ rps: 200, median: 0.05, intervals: 2 }, 2)]));
    assert.ok(few.stages[0]!.measures.every((measure) => measure.flag === 'not-judged'), renderComparison(few, 'text'));
    assert.equal(few.regressed, false);
    // 12 rps for 40 s: 480 requests, 4 above the p99, 24 above the p95.
    const thin = compareRuns(run([stage({ rps: 12, median: 0.02 }, 1)]), run([stage({ rps: 12, median: 0.05 }, 2)]));
    assert.equal(flags(thin).p99, 'not-judged');
    assert.match(thin.stages[0]!.measures.find((measure) => measure.measure === 'p99')!.why, /only \d and \d requests above it \(at least 20 each\)/);
    assert.equal(flags(thin).p95, 'worse');
    assert.equal(flags(thin).cpu, 'not-judged', 'the API used 0.012 cores');
  });

  it('the statistic over every interval is the stage\'s own: mean served rate, failures over responses, the quantile of the summed buckets', () => {
    const one = stage({ rps: 100, median: 0.02, errors: 0.01 }, 9);
    const all = one.unixS.map((_, i) => i);
    const [served, errors, p50] = statistics(one, all);
    assert.equal(served, one.ok.reduce((a, b) => a + b, 0) / one.ok.length);
    assert.equal(errors, one.failed.reduce((a, b) => a + b, 0) / one.total.reduce((a, b) => a + b, 0));
    assert.ok(p50! > 15 && p50! < 25, `p50 ${p50} ms of a 20 ms median`);
  });

  it('the breaking point, in judged steps: one step lower is worse by default, not with breaking-steps=2', () => {
    const steps = (held: number, broke?: number) => run(
      [100, 200, 300, 400].map((devices) => ({ ...stage({ rps: devices, median: 0.02, intervals: 4 }, devices), name: `step ${devices / 100} hold`, devices })),
      { outcome: broke ? 'broke' : 'held', lastGood: { name: `step ${held / 100} hold`, devices: held }, ...(broke ? { devicesAtBreak: broke } : {}) },
    );
    const lower = compareRuns(steps(300, 400), steps(200, 300));
    assert.equal(lower.breakingPoint.flag, 'worse');
    assert.match(lower.breakingPoint.why, /baseline held to 300 devices, broke at 400 devices; candidate held to 200 devices, broke at 300 devices: 1 step\(s\) lower/);
    assert.equal(lower.regressed, true);
    assert.equal(compareRuns(steps(300, 400), steps(200, 300), parseMinimumEffects(['breaking-steps=2'])).breakingPoint.flag, 'within-noise');
    assert.equal(compareRuns(steps(300, 400), steps(400)).breakingPoint.flag, 'better');
    assert.equal(compareRuns(steps(300, 400), steps(300, 400)).breakingPoint.flag, 'within-noise');
  });

  it('is reproducible (seeded), and lists stages that ran in one run only', () => {
    const a = run([stage({ rps: 200, median: 0.02 }, 1), stage({ name: 'stage 3 hold', rps: 300, median: 0.02 }, 5)]);
    const b = run([stage({ rps: 200, median: 0.021 }, 2)]);
    assert.deepEqual(compareRuns(a, b), compareRuns(a, b));
    const only = compareRuns(a, b).stages.find((entry) => entry.name === 'stage 3 hold')!;
    assert.equal(only.only, 'baseline');
    assert.match(renderComparison(compareRuns(a, b), 'text'), /stage 3 hold .*only in the baseline/);
  });
});

describe('loadlab compare: blocks, options and formats', () => {
  it('a moving-block resample is made of runs of consecutive intervals', () => {
    const indices = resample(20, 4, mulberry32(3));
    assert.equal(indices.length, 20);
    for (let start = 0; start < 20; start += 4) {
      for (let k = 1; k < 4; k++) assert.equal(indices[start + k], indices[start]! + k);
    }
    assert.ok(indices.every((index) => index >= 0 && index < 20));
  });

  it('--min-effect: percentages, points, milliseconds and steps; a clear error for anything else', () => {
    const effects = parseMinimumEffects(['p95=15%', 'served=0.02', 'errors=2pp', 'latency-ms=0.5', 'breaking-steps=2']);
    assert.deepEqual(effects, { ...DEFAULT_MINIMUM_EFFECTS, p95: 0.15, served: 0.02, errors: 0.02, latencyMs: 0.5, breakingSteps: 2 });
    assert.throws(() => parseMinimumEffects(['p97=10%']), /--min-effect "p97=10%": expected NAME=VALUE with NAME one of served, errors, p50, p95, p99, latency-ms, cpu, breaking-steps/);
    assert.throws(() => parseMinimumEffects(['p95=-5%']), /p95=-5%: expected a percentage such as 10%/);
    assert.throws(() => parseMinimumEffects(['breaking-steps=1.5']), /a whole number of steps/);
  });

  it('renders text, Markdown, JSON and one self-contained HTML file', () => {
    const comparison = compareRuns(run([stage({ rps: 200, median: 0.02 }, 1)]), run([stage({ rps: 200, median: 0.04 }, 2)]));
    assert.match(renderComparison(comparison, 'text'), /REGRESSED: 3 difference\(s\) worse/);
    const markdown = renderComparison(comparison, 'markdown');
    assert.match(markdown, /^# loadlab compare: regressed/);
    assert.match(markdown, /\*\*p95\*\*/, 'the worse rows are bold');
    assert.deepEqual(JSON.parse(renderComparison(comparison, 'json')).regressions, comparison.regressions);
    const html = renderComparison(comparison, 'html');
    assert.match(html, /<svg/);
    assert.match(html, /baseline synthetic/);
    assert.doesNotMatch(html, /<script|src=|href=/);
  });
});
