import { formatNumber, formatPercent } from '../format.js';
import { lineChart, PALETTE, escapeXml as esc } from '../report/svg.js';
import type { Table } from '../report/tables.js';
import { textTable } from '../report/text.js';
import { MEASURE_INFO, MEASURES, type Comparison, type Flag, type MeasureKey } from './compare.js';

/* A comparison as text (the terminal), Markdown (a pull request, a CI job summary), JSON and one self-contained HTML file. */

export const COMPARE_FORMATS = ['text', 'markdown', 'json', 'html'] as const;
export type CompareFormat = (typeof COMPARE_FORMATS)[number];

export function renderComparison(comparison: Comparison, format: CompareFormat): string {
  switch (format) {
    case 'text': return renderText(comparison);
    case 'markdown': return renderMarkdown(comparison);
    case 'json': return `${JSON.stringify(comparison, null, 2)}\n`;
    case 'html': return renderHtml(comparison);
  }
}

const FLAG_TEXT: Readonly<Record<Flag, string>> = {
  worse: 'WORSE',
  better: 'better',
  'within-noise': 'within noise',
  'not-measured': 'not measured',
  'not-judged': 'not judged',
};

function value(measure: MeasureKey, number: number | undefined): string {
  if (number === undefined) return '—';
  switch (MEASURE_INFO[measure].unit) {
    case 'rps': return formatNumber(number);
    case 'ratio': return formatPercent(number);
    case 'ms':
    case 'cpu-ms': return `${formatNumber(number)} ms`;
  }
}

/** One row per stage and measure. */
export function comparisonTable(comparison: Comparison): Table {
  const rows: string[][] = [];
  const highlight: number[] = [];
  for (const stage of comparison.stages) {
    let first = true;
    const devices = stage.baselineDevices !== undefined && stage.candidateDevices !== undefined && Math.round(stage.baselineDevices) !== Math.round(stage.candidateDevices)
      ? `${formatNumber(stage.baselineDevices)} → ${formatNumber(stage.candidateDevices)}`
      : formatNumber(stage.baselineDevices ?? stage.candidateDevices ?? 0);
    if (stage.only) {
      rows.push([stage.name, devices, '', '', '', `only in the ${stage.only}`]);
      continue;
    }
    for (const measure of stage.measures) {
      if (measure.flag === 'worse') highlight.push(rows.length);
      rows.push([
        first ? `${stage.name} (${stage.intervals[0]}/${stage.intervals[1]} intervals)` : '',
        first ? devices : '',
        MEASURE_INFO[measure.measure].label,
        value(measure.measure, measure.baseline),
        value(measure.measure, measure.candidate),
        `${FLAG_TEXT[measure.flag]}${measure.why ? `: ${measure.why}` : ''}`,
      ]);
      first = false;
    }
  }
  return { headers: ['stage', 'devices', 'measure', 'baseline', 'candidate', 'change'], rows, highlight };
}

function headline(comparison: Comparison): string[] {
  const { baseline, candidate } = comparison;
  const effects = comparison.effects;
  return [
    `baseline:  ${baseline.label}`,
    `candidate: ${candidate.label}`,
    `breaking point: ${FLAG_TEXT[comparison.breakingPoint.flag]}: ${comparison.breakingPoint.why}`,
    `bottleneck: ${baseline.bottleneck} → ${candidate.bottleneck}${comparison.bottleneckChanged ? ' (changed)' : ''}`,
    `method: moving-block bootstrap of the stages' intervals, ${comparison.method.resamples} resamples, ${comparison.method.confidence * 100} % interval, blocks of ${comparison.method.blockLengths.join(' and ')} intervals; ` +
      `minimum effects: served −${effects.served * 100} %, errors +${effects.errors * 100} pp, p50/p95/p99 +${effects.p50 * 100}/${effects.p95 * 100}/${effects.p99 * 100} % and +${effects.latencyMs} ms, CPU per request +${effects.cpu * 100} %, breaking point ${effects.breakingSteps} step(s)`,
  ];
}

function outcome(comparison: Comparison): string {
  if (comparison.regressed) return `REGRESSED: ${comparison.regressions.length} difference(s) worse beyond noise and the minimum effect`;
  return `no regression${comparison.improvements.length > 0 ? `; ${comparison.improvements.length} improvement(s)` : ''}: every difference is within noise, below its minimum effect or not judged`;
}

function renderText(comparison: Comparison): string {
  const lines = [...headline(comparison), '', ...textTable(comparisonTable(comparison), { mark: '<- worse', left: [2, 5] }), ''];
  for (const note of comparison.notes) lines.push(`note: ${note}`);
  lines.push(outcome(comparison));
  for (const line of comparison.regressions) lines.push(`  worse: ${line}`);
  for (const line of comparison.improvements) lines.push(`  better: ${line}`);
  return `${lines.join('\n')}\n`;
}

function renderMarkdown(comparison: Comparison): string {
  const table = comparisonTable(comparison);
  const highlight = new Set(table.highlight ?? []);
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const lines = [
    `# loadlab compare: ${comparison.regressed ? 'regressed' : 'no regression'}`,
    '',
    `> ${outcome(comparison)}`,
    '',
    ...headline(comparison).map((line) => `- ${line}`),
    '',
    `| ${table.headers.join(' | ')} |`,
    `| ${table.headers.map(() => '---').join(' | ')} |`,
    ...table.rows.map((row, position) => `| ${row.map((text) => (highlight.has(position) ? `**${cell(text)}**` : cell(text))).join(' | ')} |`),
    '',
  ];
  if (comparison.regressions.length > 0) lines.push('## Worse', '', ...comparison.regressions.map((line) => `- ${line}`), '');
  if (comparison.improvements.length > 0) lines.push('## Better', '', ...comparison.improvements.map((line) => `- ${line}`), '');
  if (comparison.notes.length > 0) lines.push('## Notes', '', ...comparison.notes.map((line) => `- ${line}`), '');
  return lines.join('\n');
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1080px;padding:24px;color:#1b1b1b}
h1{font-size:22px}.outcome{padding:12px 14px;border-left:5px solid #0072B2;background:#f3f7fb}.outcome.bad{border-color:#D55E00;background:#fdf4ee}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:12px}svg{max-width:100%;height:auto}
svg .title{font-weight:600;font-size:13px}svg .tick,svg .legend,svg .note{font-size:11px;fill:#444}svg .axis{font-size:12px}svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#bbb}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left}th{background:#f6f6f6}tr.hl td{background:#fdf4ee;font-weight:600}`;

function renderHtml(comparison: Comparison): string {
  const table = comparisonTable(comparison);
  const highlight = new Set(table.highlight ?? []);
  const body = [
    `<h1>loadlab compare: ${comparison.regressed ? 'regressed' : 'no regression'}</h1>`,
    `<p class="outcome${comparison.regressed ? ' bad' : ''}">${esc(outcome(comparison))}</p>`,
    `<ul>${headline(comparison).map((line) => `<li>${esc(line)}</li>`).join('')}</ul>`,
    `<h2>Baseline (dashed) on the candidate, against fleet size</h2><div class="charts">${charts(comparison).join('')}</div>`,
    `<h2>Stages</h2><table><tr>${table.headers.map((header) => `<th>${esc(header)}</th>`).join('')}</tr>${table.rows
      .map((row, position) => `<tr${highlight.has(position) ? ' class="hl"' : ''}>${row.map((text) => `<td>${esc(text)}</td>`).join('')}</tr>`)
      .join('')}</table>`,
    comparison.notes.length > 0 ? `<h2>Notes</h2><ul>${comparison.notes.map((note) => `<li>${esc(note)}</li>`).join('')}</ul>` : '',
  ].join('\n');
  return `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>loadlab compare</title>\n<style>${STYLE}</style>\n</head>\n<body>\n${body}\n</body>\n</html>\n`;
}

/** One chart per measure: the baseline's stages dashed, the candidate's solid, both against their fleet sizes. */
function charts(comparison: Comparison): string[] {
  return MEASURES.flatMap((measure) => {
    const points = (which: 'baseline' | 'candidate') =>
      comparison.stages.flatMap((stage) => {
        const devices = which === 'baseline' ? stage.baselineDevices : stage.candidateDevices;
        const number = stage.measures.find((entry) => entry.measure === measure)?.[which];
        if (devices === undefined || number === undefined) return [];
        return [[devices, MEASURE_INFO[measure].unit === 'ratio' ? number * 100 : number] as const];
      });
    const baseline = points('baseline');
    const candidate = points('candidate');
    if (baseline.length === 0 && candidate.length === 0) return [];
    const info = MEASURE_INFO[measure];
    return [lineChart({
      title: info.label,
      xLabel: 'fleet size (devices)',
      yLabel: info.unit === 'ratio' ? 'percent' : info.unit === 'rps' ? 'requests per second' : info.unit === 'cpu-ms' ? 'CPU ms per request' : 'milliseconds',
      series: [
        { name: `baseline ${comparison.baseline.label}`, points: baseline, color: PALETTE[7], dashed: true },
        { name: `candidate ${comparison.candidate.label}`, points: candidate, color: PALETTE[0] },
      ],
    })];
  });
}
