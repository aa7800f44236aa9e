import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { analyzeRun, renderHtml, renderMarkdown, seriesToCsv, type AnalysisResult, type QueriedSeries } from '../src/analysis/index.js';
import { startFakePrometheus, type FakePrometheus } from './fixtures/analysis/fake-prometheus.js';
import { searchTimeline, syntheticHandler } from './fixtures/analysis/synthetic-run.js';
import { DEFAULT_THRESHOLDS, THRESHOLD_DOCS } from '../src/schema/thresholds.js';
import { parseSeriesCsv } from './support/series-csv.js';
import { latencySpectrum, timeCharts } from '../src/analysis/report/timeseries.js';

/*
 * Report rendering smoke tests on a synthetic db-pool-bound run served by a fake Prometheus, and
 * the CSV export's round trip.
 */

const SELECTOR = 'experiment="<script>alert(1)</script>",run="1"';
let fake: FakePrometheus;
let result: AnalysisResult;

before(async () => {
  const timeline = searchTimeline(1_700_000_000, 12);
  fake = await startFakePrometheus(syntheticHandler({ kind: 'db-pool', source: 'local', capacityRps: 400 }, timeline, 20, SELECTOR));
  result = await analyzeRun({
    prometheus: fake.url, selector: SELECTOR, timeline, source: 'local', step: 15, scrapeIntervalS: 5,
    slo: { percentile: 95, latencyThresholdS: 0.25, maxErrorRate: 0.01 },
  });
});
after(async () => {
  await fake.close();
});

/** Open/close tags balance (void and self-closed elements aside): well-formed enough to parse. */
function unbalancedTags(html: string): string[] {
  const voids = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);
  const stack: string[] = [];
  const problems: string[] = [];
  for (const match of html.replace(/<!doctype[^>]*>/i, '').matchAll(/<(\/?)([a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match as unknown as [string, string, string, string];
    const tag = name.toLowerCase();
    if (voids.has(tag) || selfClosing) continue;
    if (!closing) stack.push(tag);
    else if (stack.pop() !== tag) problems.push(`</${tag}> at ${match.index}`);
  }
  return [...problems, ...stack.map((tag) => `<${tag}> never closed`)];
}

describe('the HTML report', () => {
  it('is one self-contained, balanced document with the verdict and inline SVG charts', () => {
    const html = renderHtml(result);
    assert.match(html, /^<!doctype html>/);
    assert.deepEqual(unbalancedTags(html), []);
    const charts = html.match(/<svg /g)?.length ?? 0;
    assert.ok(charts >= 5, `latency, throughput, errors and per-resource charts: ${charts}`);
    assert.equal(charts, html.match(/<\/svg>/g)?.length);
    assert.ok(html.includes('breaks at 5,500'), 'the breaking point is marked');
    assert.ok(html.includes('SLO p95 250 ms'), 'the SLO threshold is drawn');
    assert.ok(html.includes('db-pool: signals as % of their thresholds'));
    assert.ok(html.includes(result.verdict.text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')));
  });

  it('plots the run over time, with the judged windows shaded and the break marked, and the latency distribution at the break', () => {
    const charts = timeCharts(result);
    for (const id of ['rates', 'latency', 'errors', 'cpu', 'saturation', 'endpoint-rates', 'endpoint-latency']) {
      const chart = charts.find((c) => c.id === id);
      assert.ok(chart && chart.series.every((series) => series.points.length > 10), `${id}: ${JSON.stringify(chart?.series.map((s) => [s.name, s.points.length]))}`);
    }
    const { startUnixS, endUnixS } = result.settings;
    for (const chart of charts) for (const series of chart.series) for (const [t] of series.points) assert.ok(t >= startUnixS - 1e-3 && t <= endUnixS + 1e-3, `${chart.id}/${series.name} at ${t}`);
    // Offered grows step by step: the search's steps, as the timeline planned them.
    const offered = charts.find((c) => c.id === 'rates')!.series.find((s) => s.name === 'offered')!.points;
    assert.ok(offered.at(-1)![1] > 2 * offered[Math.floor(offered.length / 6)]![1], 'the offered rate rises over the run');
    const spectrum = latencySpectrum(result)!;
    assert.equal(spectrum.stage, result.breakingPoint.breaking!.name);
    const values = spectrum.points.map(([, ms]) => ms);
    assert.deepEqual(values, [...values].sort((a, b) => a - b), 'percentiles do not decrease');
    const html = renderHtml(result);
    assert.ok(html.includes('<h2>Over time</h2>'));
    assert.ok(html.includes(`Latency distribution at ${spectrum.stage}`));
    assert.ok(html.includes(`breaks: ${spectrum.stage}`), 'the break is marked on the time axis');
    const spectrumSvg = html.slice(html.indexOf(`Latency distribution at ${spectrum.stage}`)).split('</svg>')[0]!;
    assert.deepEqual([...spectrumSvg.matchAll(/class="tick">(p[^<]*)</g)].map((match) => match[1]), ['p10', 'p50', 'p90', 'p99', 'p99.9'], 'the spectrum\'s axis marks the percentiles people quote');
    assert.ok((html.match(/class="band"/g)?.length ?? 0) >= result.stages.filter((s) => s.kind === 'hold').length, 'every judged window is shaded');
  });

  it('names a series that had no data in its chart\'s title instead of leaving it out without a word', () => {
    const withoutGeneratorCpu = { ...result, series: result.series.filter((series) => series.name !== 'generator_cpu') };
    const cpu = timeCharts(withoutGeneratorCpu).find((chart) => chart.id === 'cpu')!;
    assert.deepEqual(cpu.missing, ['load generator']);
    assert.ok(renderHtml(withoutGeneratorCpu).includes('CPU (no data: load generator)'));
    assert.deepEqual(timeCharts(result).find((chart) => chart.id === 'cpu')!.missing, []);
  });

  it('loads nothing from anywhere: no URL, script, external stylesheet or image', () => {
    const html = renderHtml(result);
    for (const pattern of [/https?:\/\//i, /<script/i, /<link/i, /\ssrc=/i, /\shref=/i, /url\(/i, /@import/i]) {
      assert.doesNotMatch(html, pattern);
    }
  });

  it('escapes what it did not write (the selector here carries markup)', () => {
    const html = renderHtml(result);
    assert.ok(!html.includes('<script>alert(1)</script>'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });
});

describe('the Markdown report', () => {
  it('has the verdict, the evidence, the USE table, every stage and the queries', () => {
    const markdown = renderMarkdown(result, { title: 'db-pool run' });
    assert.match(markdown, /^# db-pool run\n/);
    assert.ok(markdown.includes(`> ${result.verdict.text}`));
    for (const heading of ['## Evidence', '## USE at step 11 hold', '## Stages', '## Thresholds used', '## Queries']) {
      assert.ok(markdown.includes(heading), heading);
    }
    const stageRows = markdown.split('\n').filter((line) => /^\| (\*\*)?step \d+ (hold|ramp)/.test(line));
    assert.equal(stageRows.length, result.stages.length);
    assert.ok(markdown.includes('| **step 11 hold**'), 'the breaking stage stands out');
  });
});

describe('the CSV export', () => {
  it('round-trips every queried series, value for value', () => {
    const csv = seriesToCsv(result.series);
    assert.ok(csv.startsWith('series,labels,unix_time,value\r\n'));
    const rows = csv.trimEnd().split('\r\n').length - 1;
    assert.equal(rows, result.series.reduce((sum, series) => sum + series.samples.length, 0), 'one row per sample');
    assert.deepEqual(parseSeriesCsv(csv), result.series);
  });

  it('round-trips awkward labels and Prometheus\' special values', () => {
    const series: QueriedSeries[] = [
      { name: 'odd, "name"', labels: { route: '/v1/a,b', note: 'say "hi"\nnext line', path: 'C:\\tmp', empty: '' }, samples: [[1.5, NaN], [16.5, Infinity], [31.5, -Infinity], [46.5, 1e-300], [61.5, -0]] },
      { name: 'plain', labels: {}, samples: [[1, 0.1 + 0.2]] },
    ];
    const back = parseSeriesCsv(seriesToCsv(series));
    assert.deepEqual(back.map((entry) => [entry.name, entry.labels]), series.map((entry) => [entry.name, entry.labels]));
    assert.ok(Number.isNaN(back[0]!.samples[0]![1]));
    assert.deepEqual(back[0]!.samples.slice(1), [[16.5, Infinity], [31.5, -Infinity], [46.5, 1e-300], [61.5, 0]]);
    assert.equal(back[1]!.samples[0]![1], 0.1 + 0.2, 'full precision');
  });

  it('refuses a file that is not its CSV', () => {
    assert.throws(() => parseSeriesCsv('a,b\n1,2\n'), /header must be "series,labels,unix_time,value"/);
  });
});

describe('the analysis README', () => {
  it('lists every threshold with its current default and the values it allows', () => {
    const readme = readFileSync(new URL('../../src/analysis/README.md', import.meta.url), 'utf8');
    const units = { fraction: '', seconds: ' s', cores: ' cores' } as const;
    for (const [key, doc] of Object.entries(THRESHOLD_DOCS)) {
      const value = DEFAULT_THRESHOLDS[key as keyof typeof DEFAULT_THRESHOLDS];
      const allowed = `${doc.minExcluded ? '(' : '['}${doc.min}, ${doc.max}${doc.maxExcluded ? ')' : ']'}${units[doc.unit]}`;
      const row = `| ${key} | ${value} | ${allowed} |`;
      assert.ok(readme.split('\n').some((line) => line.startsWith(row)), `README row starting ${row}`);
    }
  });
});
