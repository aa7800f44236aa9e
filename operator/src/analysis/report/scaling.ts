import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { formatNumber } from '../format.js';
import { predictedCapacity, replicasText, type ScalingStudy } from '../scaling.js';
import { REPORT_STYLE, htmlTable } from './html.js';
import { markdownTable } from './markdown.js';
import { escapeXml as esc, lineChart, PALETTE, type ChartSeries } from './svg.js';
import type { Table } from './tables.js';

/*
 * A scaling study's report: scaling.html (one self-contained file, as report.html), scaling.md and
 * scaling.json, beside one folder per replica count holding that run's own report.
 */

export async function writeScalingFiles(outDir: string, study: ScalingStudy, options: { title: string }): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const relativeRuns: ScalingStudy = { ...study, runs: study.runs.map((run) => ({ ...run, ...(run.reportDir ? { reportDir: relative(outDir, run.reportDir) || '.' } : {}) })) };
  await writeFile(join(outDir, 'scaling.md'), renderScalingMarkdown(relativeRuns, options.title));
  await writeFile(join(outDir, 'scaling.html'), renderScalingHtml(relativeRuns, options.title));
  await writeFile(join(outDir, 'scaling.json'), `${JSON.stringify(relativeRuns, null, 2)}\n`);
}

/** One line per fitted parameter, for the terminal and the reports. */
export function scalingFitLines(study: ScalingStudy): string[] {
  const fit = study.fit;
  if (!fit) return [];
  return [
    `λ (one replica) ${formatNumber(fit.lambda)} rps, σ (contention) ${formatNumber(fit.sigma)}, κ (coherency) ${formatNumber(fit.kappa)}; ` +
      `R² ${formatNumber(fit.rSquared)}, RMSE ${formatNumber(fit.rmse)} rps over ${fit.points} replica counts`,
    `N* (peak replicas) ${fit.peakN === undefined ? 'none (κ = 0)' : formatNumber(fit.peakN)}; predicted maximum ${study.predictedMaxRps === undefined ? 'unbounded over the counts measured' : `${formatNumber(study.predictedMaxRps)} rps`}`,
  ];
}

export function scalingTable(study: ScalingStudy): Table {
  return {
    headers: ['replicas', 'capacity', 'at stage', 'SLO', 'fitted', 'bottleneck', 'report'],
    rows: study.runs.map((run) => {
      const fitted = predictedCapacity(study, run.replicas);
      return [
        String(run.replicas),
        run.capacityRps === undefined ? '-' : `${formatNumber(run.capacityRps)} rps`,
        run.stage ?? '-',
        run.saturated ? 'broke' : run.capacityRps === undefined ? 'not judged' : 'held (lower bound)',
        fitted === undefined ? '-' : `${formatNumber(fitted)} rps`,
        run.bottleneck,
        run.reportDir ? join(run.reportDir, 'report.html') : '-',
      ];
    }),
  };
}

/** Measured capacities, the USL curve, and the linear and Amdahl references (from the same λ and σ). */
export function scalingChart(study: ScalingStudy): string {
  const measured = study.runs.filter((run) => run.capacityRps !== undefined).map((run) => [run.replicas, run.capacityRps!] as const);
  const largest = Math.max(1, ...study.runs.map((run) => run.replicas));
  const fit = study.fit;
  const upTo = Math.max(largest * 2, fit?.peakN !== undefined ? Math.min(fit.peakN * 1.5, largest * 4) : 0);
  const samples = Array.from({ length: 61 }, (_, i) => 1 + ((upTo - 1) * i) / 60);
  const series: ChartSeries[] = [{ name: 'measured', points: measured, color: PALETTE[0] }];
  if (fit) {
    series.push(
      { name: 'USL fit', points: samples.map((n) => [n, (fit.lambda * n) / (1 + fit.sigma * (n - 1) + fit.kappa * n * (n - 1))] as const), color: PALETTE[3], dots: false },
      { name: 'linear (λN)', points: samples.map((n) => [n, fit.lambda * n] as const), color: PALETTE[2], dashed: true, dots: false },
      { name: 'Amdahl (κ = 0)', points: samples.map((n) => [n, (fit.lambda * n) / (1 + fit.sigma * (n - 1))] as const), color: PALETTE[1], dashed: true, dots: false },
    );
  }
  const markers = fit?.peakN !== undefined && fit.peakN <= upTo ? [{ x: fit.peakN, label: `N* ${formatNumber(fit.peakN)}`, color: PALETTE[3] }] : [];
  // The linear reference soon leaves the chart's interesting range: cap the axis near the data.
  const top = Math.max(...measured.map(([, c]) => c), study.predictedMaxRps ?? 0) * 1.6;
  return lineChart({
    title: 'Capacity by replica count',
    xLabel: 'API replicas',
    yLabel: 'requests/s served',
    series: series.map((s) => ({ ...s, points: s.points.filter(([, y]) => y <= top || s.name === 'measured') })),
    markers,
    width: 760,
    height: 360,
  });
}

function renderScalingMarkdown(study: ScalingStudy, title: string): string {
  return [
    `# ${title}`,
    '',
    ...markdownTable(scalingTable(study)),
    '',
    ...(study.fit ? ['## Universal Scalability Law', '', ...scalingFitLines(study).map((line) => `- ${line}`), ''] : []),
    '## What the data says',
    '',
    ...study.notes.map((note) => `- ${note}`),
    '',
  ].join('\n');
}

function renderScalingHtml(study: ScalingStudy, title: string): string {
  const body = [
    `<h1>${esc(title)}</h1>`,
    `<p class="sub">${esc(study.runs.map((run) => replicasText(run.replicas)).join(', '))}: the same load at each; capacity is the most a judged stage served</p>`,
    `<figure style="margin:0">${scalingChart(study)}</figure>`,
    `<h2>Runs</h2>${htmlTable(scalingTable(study), [6])}`,
    study.fit ? `<h2>Universal Scalability Law</h2>${scalingFitLines(study).map((line) => `<p>${esc(line)}</p>`).join('')}` : '',
    `<h2>What the data says</h2><ul class="notes">${study.notes.map((note) => `<li>${esc(note)}</li>`).join('')}</ul>`,
  ].join('\n');
  return `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>${esc(title)}</title>\n<style>${REPORT_STYLE}</style>\n</head>\n<body>\n${body}\n</body>\n</html>\n`;
}
