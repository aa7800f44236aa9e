import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runLocal } from '../src/local/local-run.js';
import type { LiveView } from '../src/local/live-view.js';
import { timeCharts } from '../src/analysis/report/timeseries.js';
import type { Sample } from '../src/analysis/index.js';

/**
 * `loadlab run --ui` for real: a short local run (real PostgreSQL, API, Prometheus, driver) whose
 * live page is open in Debian's Chromium (headless, playwright-core) while the run goes. The page
 * must fill with charts from the run's Prometheus, be updated several times, show no console error
 * nor ask anything of anywhere but the live view, and say when the run ended. The screenshot is
 * kept in the test's temp folder (printed). The same run's report: its charts over time hold the
 * values the run's Prometheus gives for the same range queries (its own, not PROMETHEUS_URL's: a
 * remote one killed and restarted, as in local-run.test.ts, can gain samples after the analysis).
 */

const CHROMIUM = process.env.LOADLAB_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('loadlab run --ui: the live page in a real browser during a real run, and the report\'s time series against Prometheus', { timeout: 5 * 60_000 }, () => {
  let browser: Browser;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loadlab-live-'));
    console.log(`# the live page's screenshot is kept in ${dir}`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(async () => {
    await browser?.close();
  });

  it('fills with the charts over time and a per-endpoint table, updated while the run goes, and says when it ended', { timeout: 4 * 60_000 }, async () => {
    const file = join(dir, 'live.yaml');
    await writeFile(file, `apiVersion: loadlab.dev/v1alpha1\nkind: LoadExperiment\nmetadata:\n  name: live\nspec:
  fleet: { devices: 40, reportInterval: 2s, pollInterval: 2s }
  load:
    stages:
      - { devices: 40, duration: 4s }
      - { devices: 40, duration: 26s, shape: hold }
  slo: { latencyPercentile: 95, latencyThreshold: 1s, maxErrorRate: 0.05 }
`);
    let output = '';
    let page: Page | undefined;
    const problems: string[] = [];
    const seen: { paths: number; rows: number; at: number }[] = [];
    let watching: Promise<void> | undefined;
    const watch = async (view: LiveView) => {
      page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`); });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('request', (request) => { if (!request.url().startsWith(view.url)) problems.push(`request to ${request.url()}`); });
      await page.goto(view.url);
      // What the page shows, every second, until it says the run ended (or 3 minutes).
      for (let i = 0; i < 180; i++) {
        const state = await page.evaluate(`({
          paths: document.querySelectorAll('#live svg path').length,
          rows: document.querySelectorAll('#live table tr').length,
          ended: document.querySelector('#live [data-ended]') !== null,
        })`) as { paths: number; rows: number; ended: boolean };
        seen.push({ paths: state.paths, rows: state.rows, at: Date.now() });
        if (state.ended) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    };
    let view: LiveView | undefined;
    const agreement: { what: string; plotted: Sample[]; direct: Sample[] }[] = [];
    const result = await runLocal({
      file,
      outDir: join(dir, 'out'),
      out: { write: (text: string) => (output += text) },
      ui: { onLiveView: (v) => { view = v; watching = watch(v); } },
      // The report's charts over time are the range queries' own points: asked of the run's
      // Prometheus directly, over the analysis' window, step and rate window, they give the same
      // values at every timestamp.
      inspect: async ({ prometheusUrl, runId, analysis }) => {
        const { startUnixS, endUnixS, stepS, rateWindowS } = analysis.settings;
        const sel = `experiment="default/live",run="${runId}"`;
        const w = `${rateWindowS}s`;
        const range = async (query: string): Promise<Sample[]> => {
          const params = new URLSearchParams({ query, start: String(startUnixS), end: String(endUnixS), step: String(stepS) });
          const body = (await (await fetch(`${prometheusUrl}/api/v1/query_range?${params}`)).json()) as { status: string; error?: string; data?: { result: { values: [number, string][] }[] } };
          assert.equal(body.status, 'success', `${query}: ${body.error}`);
          return (body.data?.result[0]?.values ?? []).map(([t, v]) => [Number(t), Number(v)]);
        };
        const charts = timeCharts(analysis);
        const plotted = (chart: string, series: string) => charts.find((c) => c.id === chart)?.series.find((s) => s.name === series)?.points ?? [];
        agreement.push(
          { what: 'offered', plotted: plotted('rates', 'offered'), direct: await range(`sum(rate(loadlab_driver_requests_offered_total{${sel}}[${w}]))`) },
          { what: 'served OK', plotted: plotted('rates', 'served OK (client)'), direct: await range(`sum(rate(loadlab_driver_responses_total{${sel},endpoint!="login",code!~"5..|429|error|0"}[${w}]))`) },
          {
            what: 'client p95 (ms)', plotted: plotted('latency', 'client p95'),
            direct: (await range(`histogram_quantile(0.95, sum by (le) (rate(loadlab_driver_request_duration_seconds_bucket{${sel},endpoint!="login"}[${w}])))`)).map(([t, v]) => [t, v * 1000]),
          },
        );
      },
    });
    for (const { what, plotted, direct } of agreement) {
      const answered = direct.filter(([, v]) => Number.isFinite(v));
      assert.ok(answered.length >= 8, `${what}: Prometheus answered ${answered.length} points`);
      const byTime = new Map(plotted);
      for (const [t, v] of answered) {
        const mine = byTime.get(t);
        assert.ok(mine !== undefined && Math.abs(mine - v) <= 1e-6 * Math.max(1, Math.abs(v)),
          `${what} at ${t}: the report plots ${mine}, Prometheus answers ${v} (plotted ${JSON.stringify(plotted)}; direct ${JSON.stringify(direct)})`);
      }
      assert.equal(plotted.length, answered.length, `${what}: as many points as Prometheus has`);
    }
    console.log(`# the report's time series agree with Prometheus' range answers: ${agreement.map((a) => `${a.what} ${a.plotted.length} points`).join(', ')}`);
    await watching;
    assert.ok(view, 'the run started a live view');
    assert.match(output, new RegExp(`live view: ${view.url.replace(/[.]/g, '\\.')} \\(until the run ends\\)`));
    const withCharts = seen.filter((s) => s.paths > 0);
    assert.ok(withCharts.length >= 5, `the page had charts for at least 5 s of the run: ${JSON.stringify(seen.map((s) => s.paths))}`);
    assert.ok(view.fragmentsServed >= 8, `the page was updated every 2 s: ${view.fragmentsServed} fragments`);
    assert.ok(Math.max(...seen.map((s) => s.rows)) >= 3, 'a per-endpoint table: a header and a row per endpoint');
    const labels = await page!.$$eval('#live svg[role="img"]', (svgs) => svgs.map((svg) => svg.getAttribute('aria-label')));
    for (const title of ['Offered vs served', 'Latency percentiles', 'Errors', 'CPU', 'Served OK by endpoint']) assert.ok(labels.includes(title), `"${title}" among ${labels.join(', ')}`);
    assert.match(await page!.locator('#live [data-ended]').innerText(), /^The run ended\. .*Report: .*report\.html/);
    const shot = join(dir, 'live.png');
    await page!.screenshot({ path: shot, fullPage: true });
    console.log(`# ${shot}`);
    assert.deepEqual(problems, []);
    assert.equal(result.analysis.breakingPoint.status, 'held', result.analysis.verdict.text);
    await page!.close();
    // It stopped with the run.
    await assert.rejects(fetch(view.url), 'the live view is gone once the run ended');
    await rm(join(dir, 'out'), { recursive: true, force: true });
  });
});
