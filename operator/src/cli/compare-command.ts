import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AnalysisInputError } from '../analysis/errors.js';
import { CLUSTER_OPTIONS, CLUSTER_OPTIONS_USAGE, clusterRun, describeError, isExperimentRef, isInputError, previousClusterRun, type ClusterInputValues } from './cluster-input.js';
import {
  BOOTSTRAP, COMPARABLE_VERSION, COMPARE_FORMATS, comparableRun, compareRuns, parseMinimumEffects, renderComparison,
  type CompareFormat, type ComparableRun,
} from '../analysis/compare/index.js';
import { EXIT, type Io } from './io.js';

export const COMPARE_USAGE = `Usage: loadlab compare BASELINE CANDIDATE [options]

Compares two runs of an experiment stage by stage (matched by name): served rate, error rate,
p50/p95/p99 latency and API CPU per request, and the breaking point and bottleneck. Each run is a
folder \`loadlab run\` (or \`loadlab report\`) wrote, its summary.json, or NAMESPACE/NAME of a
LoadExperiment in the cluster (its last run, analysed again from Prometheus as \`loadlab report\`
does).

Each difference is flagged worse or better only when it is beyond the runs' own noise AND at least
its minimum effect; otherwise "within noise". The noise is computed from the stages' per-interval
series (summary.json keeps them): a moving-block bootstrap (${BOOTSTRAP.resamples.toLocaleString('en')} resamples, blocks one rate window
long) gives a 95 % confidence interval of each difference, and a difference whose interval
includes zero is noise. The breaking point is compared in judged steps.

Options:
  --format F            text (default), markdown, json or html
  --output FILE         write the comparison to FILE instead of standard output
  --min-effect N=V      the smallest difference to flag, repeatable. Names and defaults:
                          served=5%        served rate lower by
                          errors=1pp       error rate higher by (percentage points)
                          p50=10% p95=10%  latency higher by ...
                          p99=20%          (the tail moves more between healthy runs)
                          latency-ms=1     ... and by at least this many milliseconds
                          cpu=20%          API CPU per request higher by
                          breaking-steps=1 last good fleet lower by this many judged steps
  For NAMESPACE/NAME:
  --previous            the BASELINE is that experiment's run before its last one (from the
                        records the operator keeps, ConfigMap <name>-runs): \`loadlab compare
                        --previous ns/exp ns/exp\` shows what the last edit changed
${CLUSTER_OPTIONS_USAGE}
  -h, --help            this help

Exit status (for CI: fail the build on a regression):
  0    no regression: nothing worse beyond noise and its minimum effect
  99   regressed: at least one difference is worse (listed at the end of the output)
  1    a run could not be read (a file, the cluster, Prometheus); 2 invalid input`;

export async function compare(args: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { format: { type: 'string' }, output: { type: 'string' }, 'min-effect': { type: 'string', multiple: true }, previous: { type: 'boolean' }, ...CLUSTER_OPTIONS, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    io.stderr(`loadlab compare: ${(error as Error).message}\n\n${COMPARE_USAGE}\n`);
    return EXIT.invalid;
  }
  if (parsed.values.help) {
    io.stdout(`${COMPARE_USAGE}\n`);
    return EXIT.ok;
  }
  if (parsed.positionals.length !== 2) {
    io.stderr(`loadlab compare: give exactly two runs, the baseline and the candidate\n\n${COMPARE_USAGE}\n`);
    return EXIT.invalid;
  }
  const format = (parsed.values.format ?? 'text') as CompareFormat;
  if (!COMPARE_FORMATS.includes(format)) {
    io.stderr(`loadlab compare: --format must be one of ${COMPARE_FORMATS.join(', ')}, not ${JSON.stringify(parsed.values.format)}\n`);
    return EXIT.invalid;
  }
  let effects;
  try {
    effects = parseMinimumEffects(parsed.values['min-effect'] ?? []);
  } catch (error) {
    io.stderr(`loadlab compare: ${(error as Error).message}\n`);
    return EXIT.invalid;
  }

  const [baselineInput] = parsed.positionals as [string, string];
  if (parsed.values.previous && !isExperimentRef(baselineInput)) {
    io.stderr(`loadlab compare: --previous needs the BASELINE as NAMESPACE/NAME of a LoadExperiment, not ${JSON.stringify(baselineInput)}\n`);
    return EXIT.invalid;
  }
  const runs: ComparableRun[] = [];
  for (const [position, input] of parsed.positionals.entries()) {
    try {
      runs.push(position === 0 && parsed.values.previous ? await previousClusterRun(input, parsed.values) : await loadRun(input, parsed.values, io));
    } catch (error) {
      io.stderr(`loadlab compare: ${describeError(error)}\n`);
      return isInputError(error) ? EXIT.invalid : EXIT.unreadable;
    }
  }
  const comparison = compareRuns(runs[0]!, runs[1]!, effects);
  const text = renderComparison(comparison, format);
  if (parsed.values.output === undefined) io.stdout(text);
  else {
    try {
      await writeFile(parsed.values.output, text);
    } catch (error) {
      io.stderr(`loadlab compare: cannot write ${parsed.values.output}: ${(error as Error).message}\n`);
      return EXIT.unreadable;
    }
    io.stderr(`loadlab compare: wrote ${parsed.values.output}\n`);
  }
  // The outcome goes to standard error too, so it shows in a CI log whatever the format.
  if (format !== 'text' || parsed.values.output !== undefined) {
    io.stderr(`loadlab compare: ${comparison.regressed ? `REGRESSED: ${comparison.regressions.join('; ')}` : 'no regression'}\n`);
  }
  return comparison.regressed ? EXIT.sloBroken : EXIT.ok;
}

/** A run folder, its summary.json, or NAMESPACE/NAME of a LoadExperiment. */
async function loadRun(input: string, values: ClusterInputValues, io: Io): Promise<ComparableRun> {
  let file = input;
  try {
    if ((await stat(input)).isDirectory()) file = join(input, 'summary.json');
  } catch {
    if (isExperimentRef(input)) {
      const run = await clusterRun(input, values, (line) => io.stderr(`${input}: ${line}\n`));
      return comparableRun(run.analysis, `${input} run ${run.runId}`);
    }
    throw new Error(`${input}: no such run folder or file (give a folder \`loadlab run\` wrote, its summary.json, or NAMESPACE/NAME of a LoadExperiment)`);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read it: ${(error as Error).message}`);
  }
  let document: { comparable?: ComparableRun };
  try {
    document = JSON.parse(text) as { comparable?: ComparableRun };
  } catch (error) {
    throw new AnalysisInputError(`${file}: not JSON: ${(error as Error).message}`);
  }
  const record = document.comparable;
  if (!record || typeof record !== 'object' || !Array.isArray(record.stages)) {
    throw new AnalysisInputError(`${file} has no per-interval record ("comparable"): it is not a loadlab summary.json, or one written before \`loadlab compare\` existed; run the experiment again`);
  }
  if (record.version !== COMPARABLE_VERSION) {
    throw new AnalysisInputError(`${file}: its record is version ${String(record.version)}, this loadlab reads version ${COMPARABLE_VERSION}`);
  }
  return { ...record, label: `${input} (${record.label})` };
}

