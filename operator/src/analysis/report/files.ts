import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnalysisResult } from '../analyze.js';
import { comparableRun } from '../compare/record.js';
import { seriesToCsv } from './csv.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

/*
 * A run's report folder, the same for a local run (`loadlab run`) and a cluster run (`loadlab
 * report`): report.html, report.md, series.csv, and summary.json with the bounded summary (the
 * status' own) and the per-interval record `loadlab compare` reads.
 */

export const REPORT_FILES = ['report.html', 'report.md', 'series.csv', 'summary.json'] as const;

export async function writeReportFiles(outDir: string, analysis: AnalysisResult, options: { title: string; label: string; extra?: Record<string, unknown> }): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'report.md'), renderMarkdown(analysis, { title: options.title }));
  await writeFile(join(outDir, 'report.html'), renderHtml(analysis, { title: options.title }));
  await writeFile(join(outDir, 'series.csv'), seriesToCsv(analysis.series));
  const summary = { summary: analysis.summary, comparable: comparableRun(analysis, options.label), ...options.extra };
  await writeFile(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
}
