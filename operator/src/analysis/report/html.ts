import type { AnalysisResult } from '../analyze.js';
import { renderCharts } from './charts.js';
import { renderTimeCharts } from './timeseries.js';
import { escapeXml as esc } from './svg.js';
import { endpointsTable, evidenceTable, headline, queriesTable, stagesTable, thresholdsTable, uslLines, useTable, type Table } from './tables.js';

/*
 * The report as one self-contained HTML file: inline CSS, inline SVG charts, no script and no
 * external resource, so it can be attached to a CI run or mailed and still open anywhere.
 */

export const REPORT_STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1080px;padding:24px;color:#1b1b1b;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}.verdict{font-size:15px;padding:12px 14px;border-left:5px solid #0072B2;background:#f3f7fb;margin:12px 0}
.verdict.broke{border-color:#D55E00;background:#fdf4ee}.verdict.lg{border-color:#E69F00;background:#fff8e8}
dl.head{display:flex;flex-wrap:wrap;gap:8px 28px;margin:12px 0}dl.head div{min-width:120px}dt{color:#666;font-size:12px}dd{margin:0;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:12px}
svg{max-width:100%;height:auto;background:#fff}svg .title{font-weight:600;font-size:13px}svg .tick,svg .legend,svg .note{font-size:11px;fill:#444}
svg .axis{font-size:12px;fill:#333}svg .band{fill:#0072B2;fill-opacity:.07}svg .band-label{font-size:10px;fill:#6b8fb0}svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#bbb}svg .ref{stroke-width:1.5}svg .empty{fill:#999}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f6f6}tr.hl td{background:#fdf4ee;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,td.code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}ul.notes li{color:#444}details{margin:10px 0}summary{cursor:pointer;font-weight:600}
`;

export function renderHtml(result: AnalysisResult, options: { title?: string } = {}): string {
  const title = options.title ?? `loadlab analysis — ${result.settings.selector}`;
  const { verdict, breakingPoint, settings } = result;
  const verdictClass = verdict.bottleneck === 'load-generator' ? 'verdict lg' : breakingPoint.status === 'broke' ? 'verdict broke' : 'verdict';
  const window = `${new Date(settings.startUnixS * 1000).toISOString()} – ${new Date(settings.endUnixS * 1000).toISOString()}`;
  const body = [
    `<h1>${esc(title)}</h1>`,
    `<p class="sub">${esc(settings.source)} run, ${esc(window)}, step ${settings.stepS} s, rate window ${settings.rateWindowS} s, ${result.queries.count} Prometheus queries</p>`,
    `<p class="${verdictClass}">${esc(verdict.text)}</p>`,
    `<dl class="head">${headline(result).map(([name, value]) => `<div><dt>${esc(name)}</dt><dd>${esc(value)}</dd></div>`).join('')}</dl>`,
    '<h2>Over time</h2>',
    `<div class="charts">${renderTimeCharts(result).map((svg) => `<figure style="margin:0">${svg}</figure>`).join('')}</div>`,
    '<h2>Against fleet size</h2>',
    `<div class="charts">${renderCharts(result).map((svg) => `<figure style="margin:0">${svg}</figure>`).join('')}</div>`,
    section('Evidence', evidenceTable(result)),
    section(`USE at ${esc(result.stages.find((stage) => stage.index === verdict.stageIndex)?.name ?? 'the last stage')}`, useTable(verdict.use)),
    section('Stages', stagesTable(result)),
    section('Endpoints at the break (or the last good stage)', endpointsTable(result)),
    uslLines(result).length > 0 ? `<h2>Universal Scalability Law</h2>${uslLines(result).map((line) => `<p>${esc(line)}</p>`).join('')}` : '',
    notes(result),
    `<details><summary>Thresholds used</summary>${htmlTable(thresholdsTable(settings.thresholds))}</details>`,
    `<details><summary>Queries (${result.catalog.length})</summary>${htmlTable(queriesTable(result), [5])}</details>`,
  ].join('\n');
  return `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>${esc(title)}</title>\n<style>${REPORT_STYLE}</style>\n</head>\n<body>\n${body}\n</body>\n</html>\n`;
}

function section(heading: string, content: Table): string {
  if (content.rows.length === 0) return '';
  return `<h2>${heading}</h2>${htmlTable(content)}`;
}

export function htmlTable(content: Table, codeColumns: number[] = []): string {
  const highlight = new Set(content.highlight ?? []);
  const head = `<tr>${content.headers.map((header) => `<th>${esc(header)}</th>`).join('')}</tr>`;
  const rows = content.rows.map((row, position) => {
    const cells = row.map((cell, column) => {
      const cls = codeColumns.includes(column) ? ' class="code"' : /^[-\d.,]+( ?(ms|%|rps|cores|MiB))?$/.test(cell) ? ' class="num"' : '';
      return `<td${cls}>${esc(cell)}</td>`;
    });
    return `<tr${highlight.has(position) ? ' class="hl"' : ''}>${cells.join('')}</tr>`;
  });
  return `<table>${head}${rows.join('')}</table>`;
}

function notes(result: AnalysisResult): string {
  const items = [...result.verdict.notes];
  if (result.missing.length > 0) items.push(`No data for: ${result.missing.join(', ')}.`);
  for (const failure of result.failed) items.push(`Prometheus refused ${failure.name}: ${failure.error}`);
  if (items.length === 0) return '';
  return `<h2>Notes</h2><ul class="notes">${items.map((item) => `<li>${esc(item)}</li>`).join('')}</ul>`;
}
