import type { AnalysisResult } from '../analyze.js';
import { endpointsTable, evidenceTable, headline, queriesTable, stagesTable, thresholdsTable, uslLines, useTable, type Table } from './tables.js';

/* The report as Markdown: what local mode prints to a file and a CI job summary shows. */

export function renderMarkdown(result: AnalysisResult, options: { title?: string } = {}): string {
  const { verdict, settings } = result;
  const lines: string[] = [
    `# ${options.title ?? `loadlab analysis — ${settings.selector}`}`,
    '',
    `${settings.source} run from ${new Date(settings.startUnixS * 1000).toISOString()} to ${new Date(settings.endUnixS * 1000).toISOString()}; ` +
      `step ${settings.stepS} s, rate window ${settings.rateWindowS} s; ${result.queries.count} Prometheus queries.`,
    '',
    `> ${verdict.text}`,
    '',
    ...headline(result).map(([name, value]) => `- **${name}:** ${value}`),
    '',
  ];
  const push = (heading: string, content: Table) => {
    if (content.rows.length === 0) return;
    lines.push(`## ${heading}`, '', ...markdownTable(content), '');
  };
  push('Evidence', evidenceTable(result));
  push(`USE at ${result.stages.find((stage) => stage.index === verdict.stageIndex)?.name ?? 'the last stage'}`, useTable(verdict.use));
  push('Stages', stagesTable(result));
  push('Endpoints at the break (or the last good stage)', endpointsTable(result));
  const usl = uslLines(result);
  if (usl.length > 0) lines.push('## Universal Scalability Law', '', ...usl, '');
  const notes = [...verdict.notes, ...(result.missing.length > 0 ? [`No data for: ${result.missing.join(', ')}.`] : [])];
  for (const failure of result.failed) notes.push(`Prometheus refused ${failure.name}: ${failure.error}`);
  if (notes.length > 0) lines.push('## Notes', '', ...notes.map((note) => `- ${note}`), '');
  push('Thresholds used', thresholdsTable(settings.thresholds));
  push('Queries', { ...queriesTable(result), rows: queriesTable(result).rows.map((row) => row.map((cell, column) => (column === 5 ? `\`${cell}\`` : cell))) });
  return lines.join('\n');
}

export function markdownTable(content: Table): string[] {
  const highlight = new Set(content.highlight ?? []);
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${content.headers.map(cell).join(' | ')} |`,
    `| ${content.headers.map(() => '---').join(' | ')} |`,
    ...content.rows.map((row, position) => `| ${row.map((text) => (highlight.has(position) ? `**${cell(text)}**` : cell(text))).join(' | ')} |`),
  ];
}
