import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { analyzeRun, renderHtml, scalingStudy, uslCapacity, writeScalingFiles, type AnalysisResult } from '../src/analysis/index.js';
import { timeCharts } from '../src/analysis/report/timeseries.js';
import { startFakePrometheus, type FakePrometheus } from './fixtures/analysis/fake-prometheus.js';
import { searchTimeline, syntheticHandler } from './fixtures/analysis/synthetic-run.js';

/**
 * The HTML reports in a real browser: Debian's Chromium, headless, driven by playwright-core. Each
 * page must load without a console error or a request to anywhere, draw every chart with every
 * series it is meant to have (paths with a size on screen), and leave a screenshot in the test's
 * output folder (printed, and kept) for a person to look at. The run analysed is a synthetic one
 * (a fake Prometheus serving a breaking-point search), so this test takes seconds.
 */

const CHROMIUM = process.env.LOADLAB_CHROMIUM ?? '/usr/bin/chromium';
// As this machine's notes say: without the background-networking flags Chromium tries Google's
// hosts at every start, and this machine's closed network refuses them.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface DrawnChart {
  label: string;
  series: { name: string; width: number; height: number; length: number }[];
}

describe('the HTML reports in a real browser (Chromium, headless)', { timeout: 120_000 }, () => {
  let browser: Browser;
  let fake: FakePrometheus;
  let result: AnalysisResult;
  let out: string;

  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'loadlab-browser-'));
    console.log(`# screenshots and pages kept in ${out}`);
    const timeline = searchTimeline(1_700_000_000, 12);
    const selector = 'experiment="lab/browser",run="1"';
    fake = await startFakePrometheus(syntheticHandler({ kind: 'db-pool', source: 'local', capacityRps: 400 }, timeline, 20, selector));
    result = await analyzeRun({ prometheus: fake.url, selector, timeline, source: 'local', step: 15, scrapeIntervalS: 5, slo: { percentile: 95, latencyThresholdS: 0.25, maxErrorRate: 0.01 } });
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    } catch (error) {
      throw new Error(`cannot start Chromium at ${CHROMIUM} (scripts/setup.sh installs Debian's chromium; LOADLAB_CHROMIUM names another): ${(error as Error).message}`);
    }
  });
  after(async () => {
    await browser?.close();
    await fake?.close();
  });

  /** Opens a file, with every console error, page error and request beyond the file itself recorded. */
  async function open(file: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    const url = pathToFileURL(file).href;
    page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`); });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('request', (request) => { if (request.url() !== url) problems.push(`request to ${request.url()}`); });
    const response = await page.goto(url, { waitUntil: 'load' });
    assert.ok(response === null || response.ok(), `${file} loads`);
    return { page, problems };
  }

  /** Every chart as the browser laid it out: its label, and each series' path with its size on screen. */
  const drawn = (page: Page) => page.$$eval('svg[role="img"]', (svgs) => svgs.map((svg) => ({
    label: svg.getAttribute('aria-label') ?? '',
    series: [...svg.querySelectorAll('path')].map((path) => {
      const box = path.getBoundingClientRect();
      return { name: path.querySelector('title')?.textContent ?? '', width: box.width, height: box.height, length: (path as unknown as { getTotalLength(): number }).getTotalLength() };
    }),
  }))) as Promise<DrawnChart[]>;

  async function screenshot(page: Page, name: string): Promise<void> {
    const file = join(out, name);
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(statSync(file).size > 20_000, `${name}: a screenshot with something on it (${statSync(file).size} bytes)`);
    console.log(`# ${file}`);
  }

  it('report.html: no console error or outside request; every chart over time draws every series it has, and the break is marked', async () => {
    const file = join(out, 'report.html');
    await writeFile(file, renderHtml(result, { title: 'loadlab run browser' }));
    const { page, problems } = await open(file);
    const charts = await drawn(page);
    for (const expected of timeCharts(result)) {
      const chart = charts.find((c) => c.label.startsWith(expected.title));
      assert.ok(chart, `a chart "${expected.title}" among ${charts.map((c) => c.label).join(', ')}`);
      for (const series of expected.series) {
        const path = chart.series.find((p) => p.name === series.name);
        assert.ok(path && path.length > 50 && path.width > 50, `${expected.title}: "${series.name}" is drawn (${JSON.stringify(path)})`);
      }
    }
    assert.ok(charts.some((c) => c.label.startsWith('Latency distribution at ')), 'the latency distribution at the break');
    assert.ok(charts.some((c) => c.label === 'Throughput: offered vs served'), 'the charts against fleet size are still there');
    assert.ok(await page.locator('text=breaks: ').count() > 0, 'the break is marked on the time axis');
    assert.ok(await page.locator('rect.band').count() >= 3, 'the judged windows are shaded');
    await screenshot(page, 'report.png');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('scaling.html: the measured points, the USL fit and its references drawn, N* marked', async () => {
    const truth = { lambda: 90, sigma: 0.05, kappa: 0.03 };
    const study = scalingStudy([1, 2, 3, 4, 6].map((replicas) => ({ replicas, capacityRps: uslCapacity(truth, replicas) * (1 + 0.02 * Math.sin(replicas)), saturated: true, bottleneck: 'api-cpu', verdict: '' })));
    await writeScalingFiles(out, study, { title: 'loadlab scaling study browser' });
    const { page, problems } = await open(join(out, 'scaling.html'));
    const [chart] = await drawn(page);
    assert.equal(chart?.label, 'Capacity by replica count');
    for (const name of ['measured', 'USL fit', 'linear (λN)', 'Amdahl (κ = 0)']) {
      const path = chart.series.find((p) => p.name === name);
      assert.ok(path && path.length > 50, `"${name}" is drawn (${JSON.stringify(path)})`);
    }
    assert.ok(await page.locator('text=N* ').count() > 0, 'N* is marked');
    assert.equal(await page.locator('table tr').count(), 6, 'a row per replica count');
    await screenshot(page, 'scaling.png');
    assert.deepEqual(problems, []);
    await page.close();
  });
});
