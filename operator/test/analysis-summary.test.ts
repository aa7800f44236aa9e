import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSummary, clip, decideVerdict, findBreakingPoint, pickRows, STEP_COLUMNS, SUMMARY_MAX_BYTES, type Slo, type StageSummary, type Verdict } from '../src/analysis/index.js';
import { summarySchema } from '../src/schema/index.js';
import { runOf, stageOf } from './fixtures/analysis/stage-builder.js';
import { DEFAULT_THRESHOLDS } from '../src/schema/thresholds.js';
import { MAX_STATUS_STEP_ROWS } from '../src/schema/status.js';

const slo: Slo = { percentile: 95, latencyThresholdS: 0.25, maxErrorRate: 0.01 };
const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** A run of `steps` holds that breaks at `breakAt` on pool saturation; names as long as asked. */
function longRun(steps: number, breakAt: number, name: (i: number) => string = (i) => `step ${i + 1} hold`): StageSummary[] {
  return Array.from({ length: steps }, (_, i) => stageOf(i, {
    name: name(i),
    devices: 1000 * (i + 1) + 0.123456789,
    offeredRps: (1000 * (i + 1)) / 15 + 1e-7,
    latencyS: i < breakAt ? 0.0123456789 : 1.23456789,
    errorRate: i < breakAt ? 0.000123456789 : 0.2,
    measures: {
      'pool_waiting.active': i < breakAt ? 0 : 1,
      'pool_acquire.p95': i < breakAt ? 0.0002 : 0.3,
      'api_cpu.mean': 0.3,
    },
  }));
}

function summarise(stages: StageSummary[], tweak: (verdict: Verdict) => Verdict = (verdict) => verdict) {
  const point = findBreakingPoint(stages, slo, DEFAULT_THRESHOLDS);
  const verdict = tweak(decideVerdict(stages, point, { thresholds: DEFAULT_THRESHOLDS, source: 'local' }));
  return { point, verdict, summary: buildSummary(stages, point, verdict) };
}

describe('the bounded summary for a CR status', () => {
  it(`stays under ${SUMMARY_MAX_BYTES} bytes with at most ${MAX_STATUS_STEP_ROWS} rows of 6 numbers for a 200-step run`, () => {
    const { summary, point } = summarise(longRun(200, 150));
    const size = bytes(summary);
    console.log(`summary of a 200-step run: ${size} bytes (bound ${SUMMARY_MAX_BYTES})`);
    assert.ok(size <= SUMMARY_MAX_BYTES, `${size} bytes`);
    assert.equal(summary.steps.rows.length, MAX_STATUS_STEP_ROWS);
    assert.equal(summary.steps.total, 200);
    assert.deepEqual(summary.steps.columns, STEP_COLUMNS);
    for (const row of summary.steps.rows) assert.equal(row.length, 6);
    const kept = summary.steps.rows.map((row) => row[0]);
    for (const index of [0, point.lastGood!.index, point.breaking!.index, 199]) assert.ok(kept.includes(index), `row ${index} kept`);
    assert.deepEqual(kept, [...kept].sort((a, b) => a! - b!), 'rows in step order');
    assert.equal(summary.bottleneck, 'db-pool');
    assert.equal(summary.devicesAtBreak, 151000);
    assert.equal(summary.outcome, 'broke');
    assert.ok(summary.evidence.length <= 3);
  });

  it('stays under the bound whatever the names, numbers and verdict text (adversarial)', () => {
    const huge = (i: number) => `🙂é"\\${'x'.repeat(400)}${i}`;
    const stages = longRun(200, 150, huge);
    // The longest JSON numbers there are, in every row and headline.
    const longest = -1.23456789e-300;
    for (const stage of stages) {
      Object.assign(stage, { devices: longest, offeredRps: longest, errorRate: longest });
      if (stage.achievedRps !== undefined) stage.achievedRps = longest * 1e-5;
      stage.latency = { ...stage.latency, p95: longest, p99: longest };
    }
    const { summary } = summarise(stages, (verdict) => ({
      ...verdict,
      text: '🙂"'.repeat(3000),
      evidence: Array.from({ length: 10 }, () => ({ ...verdict.evidence[0]!, label: huge(0), measure: huge(1), query: huge(2), stageName: huge(3), value: -1.23456789e-300, threshold: 9.87654321e300 })),
    }));
    const size = bytes(summary);
    console.log(`adversarial summary: ${size} bytes (bound ${SUMMARY_MAX_BYTES})`);
    assert.ok(size <= SUMMARY_MAX_BYTES, `${size} bytes`);
    assert.equal(summary.evidence.length, 3);
    assert.ok(summary.verdict.endsWith('…'));
  });

  it('has the size of the run\'s first 20 steps whatever comes after (fixed size)', () => {
    const twenty = bytes(summarise(longRun(20, 15)).summary);
    const twoHundred = bytes(summarise(longRun(200, 15)).summary);
    assert.ok(Math.abs(twenty - twoHundred) < 200, `${twenty} vs ${twoHundred} bytes`);
  });

  it('fills the CRD\'s status.summary fields with values its schema accepts', () => {
    const { summary } = summarise(longRun(5, 3));
    const parsed = summarySchema.parse(summary);
    assert.deepEqual(parsed, {
      devicesAtBreak: 4000,
      breakingPointRps: 266.7,
      rps: 200,
      p95Ms: 12.35,
      errorRate: 0.0001235,
      bottleneck: 'db-pool',
      verdict: summary.verdict,
    });
    assert.deepEqual(summary.lastGood, { stage: 'step 3 hold', devices: 3000, rps: 200, p95Ms: 12.35, p99Ms: 18.52, errorRate: 0.0001235 });
  });

  it('leaves the break fields out when the SLO held', () => {
    const { summary } = summarise(runOf([{ devices: 1000, latencyS: 0.05, errorRate: 0 }]));
    assert.equal(summary.devicesAtBreak, undefined);
    assert.equal(summary.breakingPointRps, undefined);
    assert.equal(summary.outcome, 'held');
    assert.equal(summary.bottleneck, 'none');
    assert.equal(summary.rps, Number((1000 / 15).toPrecision(4)));
  });

  it('picks rows: every step when there are at most 20, else first, last good, breaking, last and evenly spaced', () => {
    const steps = (n: number) => Array.from({ length: n }, (_, index) => ({ index }));
    assert.equal(pickRows(steps(20), {}).length, 20);
    const rows = pickRows(steps(101), { lastGood: { index: 56 } as never, breaking: { index: 57 } as never }).map((row) => row.index);
    assert.equal(rows.length, 20);
    assert.equal(new Set(rows).size, 20);
    for (const index of [0, 56, 57, 100]) assert.ok(rows.includes(index));
  });

  it('clips text to a byte budget on a character boundary', () => {
    assert.equal(clip('short', 10), 'short');
    const clipped = clip('🙂'.repeat(10), 10);
    assert.ok(Buffer.byteLength(JSON.stringify(clipped)) - 2 <= 10);
    assert.ok(clipped.endsWith('…') && !clipped.includes('\uFFFD'));
  });
});
