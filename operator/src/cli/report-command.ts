import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPORT_FILES, writeReportFiles } from '../analysis/report/index.js';
import { CLUSTER_OPTIONS, CLUSTER_OPTIONS_USAGE, clusterRun, describeError, isExperimentRef, isInputError } from './cluster-input.js';
import { EXIT, type Io } from './io.js';

export const REPORT_USAGE = `Usage: loadlab report NAMESPACE/NAME [options]

Writes the report of a LoadExperiment's last run in a cluster: report.html, report.md, series.csv
and summary.json, the files \`loadlab run\` writes for a local run, so a cluster run can be looked at
and compared (\`loadlab compare\`) like a local one. The run is analysed again from Prometheus over
the windows in the experiment's status timeline, with the operator's own settings: its numbers are
the status summary's.

Options:
  --out DIR             where the report goes (default loadlab-reports/<namespace>-<name>-<run id>)
${CLUSTER_OPTIONS_USAGE}
  -h, --help            this help

Exit status: 0 written; 1 the cluster or Prometheus could not be read (the message says which);
2 invalid input (no such experiment, no finished run yet, a bad option).`;

export async function report(args: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], allowPositionals: true, options: { out: { type: 'string' }, ...CLUSTER_OPTIONS, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    io.stderr(`loadlab report: ${(error as Error).message}\n\n${REPORT_USAGE}\n`);
    return EXIT.invalid;
  }
  if (parsed.values.help) {
    io.stdout(`${REPORT_USAGE}\n`);
    return EXIT.ok;
  }
  const [ref, ...extra] = parsed.positionals;
  if (!ref || extra.length > 0 || !isExperimentRef(ref)) {
    io.stderr(`loadlab report: give one LoadExperiment as NAMESPACE/NAME${ref ? `, not ${JSON.stringify([ref, ...extra].join(' '))}` : ''}\n\n${REPORT_USAGE}\n`);
    return EXIT.invalid;
  }
  try {
    const run = await clusterRun(ref, parsed.values, (line) => io.stderr(`${line}\n`));
    const outDir = resolve(parsed.values.out ?? join('loadlab-reports', `${ref.replace('/', '-')}-${run.runId}`));
    await writeReportFiles(outDir, run.analysis, {
      title: `loadlab report ${ref} (run ${run.runId})`,
      label: `${ref} run ${run.runId}`,
      extra: { experiment: ref, runId: run.runId },
    });
    io.stdout(`verdict: ${run.analysis.verdict.text}\nreport: ${join(outDir, 'report.html')} (also ${REPORT_FILES.filter((file) => file !== 'report.html').join(', ')})\n`);
    return EXIT.ok;
  } catch (error) {
    io.stderr(`loadlab report: ${describeError(error)}\n`);
    return isInputError(error) ? EXIT.invalid : EXIT.unreadable;
  }
}
