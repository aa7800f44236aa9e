import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildCatalog, PrometheusClient, type QueriedSeries, type Slo } from '../analysis/index.js';
import { drawTimeCharts, endpointNow } from '../analysis/report/timeseries.js';
import { escapeXml as esc } from '../analysis/report/svg.js';
import { REPORT_STYLE } from '../analysis/report/html.js';
import { formatNumber } from '../analysis/format.js';
import type { ProgressSnapshot } from '../driver/index.js';

/*
 * `loadlab run --ui`: a page on 127.0.0.1 with the run's charts over time and a per-endpoint
 * table, updated every 2 s while the run goes. The page asks for /fragment; each answer is drawn
 * here from range queries to the run's Prometheus (the same series, the same drawing as the
 * report's), so the page needs no chart code and loads nothing from anywhere. It stops with the run.
 */

/** What the live view queries: the series its charts are drawn from. */
const LIVE_SERIES = new Set([
  'generator_offered', 'generator_responses', 'generator_latency', 'api_requests', 'api_latency', 'api_cpu', 'generator_cpu',
  'host_cpu_by_role', 'event_loop_utilisation', 'pool_busy_fraction', 'host_cpu_busy', 'db_connections_fraction',
]);

export interface LiveViewOptions {
  title: string;
  prometheusUrl: string;
  selector: string;
  stepS: number;
  rateWindowS: number;
  slo: Slo;
  /** The driver's latest progress and the phase's name, for the headline. */
  progress: () => { snapshot?: ProgressSnapshot; phase: string } | undefined;
  /** Port on 127.0.0.1; 0 (default): any free one. */
  port?: number;
}

export class LiveView {
  private startUnixS: number | undefined;
  private ended: string | undefined;
  private updates = 0;

  private constructor(private readonly server: Server, private readonly options: LiveViewOptions, readonly url: string) {}

  static async start(options: LiveViewOptions): Promise<LiveView> {
    // The server answers only once it listens, by when the view exists.
    const made: { view?: LiveView } = {};
    const server = createServer((request, response) => {
      void made.view!.answer(request.url ?? '/').then(
        ({ status, type, body }) => {
          response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
          response.end(body);
        },
        (error: Error) => {
          response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          response.end(error.message);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    made.view = new LiveView(server, options, `http://127.0.0.1:${port}/`);
    return made.view;
  }

  /** From when the charts start: the load's first request. */
  loadStarted(unixS: number): void {
    this.startUnixS ??= unixS;
  }

  /**
   * The run is over: the page says so (and where the report is) and stops asking. When a page is
   * watching, waits (3 s at most) until it has been told.
   */
  async finish(text: string): Promise<void> {
    this.ended = text;
    const served = this.updates;
    if (served === 0) return;
    for (let waited = 0; waited < 3000 && this.updates === served; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  }

  /** How many fragments the page has been sent (the test checks that it was kept up to date). */
  get fragmentsServed(): number {
    return this.updates;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async answer(path: string): Promise<{ status: number; type: string; body: string }> {
    if (path === '/') return { status: 200, type: 'text/html; charset=utf-8', body: this.page() };
    if (path === '/fragment') {
      const body = await this.fragment();
      this.updates++;
      return { status: 200, type: 'text/html; charset=utf-8', body };
    }
    // A browser asks for it on its own: nothing, rather than a 404 in its console.
    if (path === '/favicon.ico') return { status: 204, type: 'image/x-icon', body: '' };
    return { status: 404, type: 'text/plain; charset=utf-8', body: 'not found' };
  }

  private page(): string {
    const title = esc(this.options.title);
    // Polls the fragment every 2 s and stops once it says the run ended (data-ended).
    const script = `const live=document.getElementById('live');
async function tick(){try{const r=await fetch('fragment',{cache:'no-store'});live.innerHTML=await r.text();}catch(e){document.getElementById('state').textContent='the run is gone: '+e.message;return;}
if(!live.querySelector('[data-ended]'))setTimeout(tick,2000);}
tick();`;
    return `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>${title}</title>\n<style>${REPORT_STYLE}</style>\n</head>\n<body>\n<h1>${title}</h1>\n<p class="sub" id="state">live: updated every 2 s while the run goes</p>\n<div id="live"></div>\n<script>${script}</script>\n</body>\n</html>\n`;
  }

  private async fragment(): Promise<string> {
    const progress = this.options.progress();
    const s = progress?.snapshot;
    const head = this.ended ? '' : s
      ? `<p class="verdict">${esc(progress.phase)}: fleet ${formatNumber(s.fleet)}, offered ${formatNumber(s.offeredRps)} rps, achieved ${formatNumber(s.achievedRps)} rps, ` +
        `p95 ${Number.isFinite(s.p95Ms) ? `${formatNumber(s.p95Ms)} ms` : '-'}, errors ${formatNumber(s.errors)}, dropped ${formatNumber(s.dropped)}, in flight ${formatNumber(s.inFlight)}</p>`
      : '<p class="verdict">starting: the load has not begun</p>';
    const ended = this.ended ? `<p class="verdict broke" data-ended>${esc(this.ended)}</p>` : '';
    const now = Date.now() / 1000;
    if (this.startUnixS === undefined || now - this.startUnixS < this.options.stepS) return `${ended}${head}`;
    const input = { series: await this.query(this.startUnixS, now), settings: { startUnixS: this.startUnixS, endUnixS: now, slo: this.options.slo } };
    const rows = endpointNow(input).map((row) => `<tr><td>${esc(row.endpoint)}</td><td class="num">${row.servedRps === undefined ? '-' : `${formatNumber(row.servedRps)} rps`}</td>` +
      `<td class="num">${row.p95Ms === undefined ? '-' : `${formatNumber(row.p95Ms)} ms`}</td><td class="num">${row.errorPercent === undefined ? '-' : `${formatNumber(row.errorPercent)}%`}</td></tr>`);
    const table = rows.length > 0 ? `<h2>Endpoints now</h2><table><tr><th>endpoint</th><th>served OK</th><th>client p95</th><th>failed</th></tr>${rows.join('')}</table>` : '';
    const charts = drawTimeCharts(input).map((svg) => `<figure style="margin:0">${svg}</figure>`).join('');
    return `${ended}${head}${table}<h2>Over time</h2><div class="charts">${charts}</div>`;
  }

  private async query(from: number, to: number): Promise<QueriedSeries[]> {
    const client = new PrometheusClient({ baseUrl: this.options.prometheusUrl, timeoutMs: 5_000 });
    const catalog = buildCatalog({ selector: this.options.selector, source: 'local', engine: 'loadlab', rateWindowS: this.options.rateWindowS })
      .filter((query) => LIVE_SERIES.has(query.name));
    const answers = await Promise.all(catalog.map(async (query) => {
      const result = await client.range(query.promql, from, to, this.options.stepS).catch(() => undefined);
      return Array.isArray(result) ? result.map((series) => ({ ...series, name: query.name })) : [];
    }));
    return answers.flat();
  }
}
