import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runLocal } from '../src/local/local-run.js';
import type { LiveView } from '../src/local/live-view.js';

/**
 * `loadlab run --ui` for real: a short local run (real PostgreSQL, API, Prometheus, driver) whose
 * live page is open in Debian's Chromium (headless, playwright-core) while the run goes. The page
 * must fill with charts from the run's Prometheus, be updated several times, show no console error
 * nor ask anything of anywhere but the live view, and say when the run ended. The screenshot is
 * kept in the test's temp folder (printed).
 */

const CHROMIUM = process.env.LOADLAB_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('loadlab run --ui: the live page in a real browser during a real run', { timeout: 5 * 60_000 }, () => {
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
    const result = await runLocal({
      file,
      outDir: join(dir, 'out'),
      out: { write: (text: string) => (output += text) },
      ui: { onLiveView: (v) => { view = v; watching = watch(v); } },
    });
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
