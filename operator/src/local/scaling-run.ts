import { join, resolve } from 'node:path';
import { replicasText, runCapacity, scalingFitLines, scalingStudy, scalingTable, textTable, writeScalingFiles, type ScalingRun, type ScalingStudy } from '../analysis/index.js';
import type { LoadExperiment } from '../schema/index.js';
import { runLocal, type LocalRunOptions, type LocalRunResult } from './local-run.js';

/*
 * `loadlab run` of an experiment with spec.scaling: the whole load once per replica count, in
 * order, each a complete local run (its own throwaway database, or DATABASE_URL prepared as the
 * spec says; its own Prometheus and report under replicas-<n>/), then the scaling study over
 * their capacities, written beside them.
 */

export interface ScalingRunResult {
  experiment: LoadExperiment;
  runs: LocalRunResult[];
  study: ScalingStudy;
  outDir: string;
}

export async function runScalingStudy(experiment: LoadExperiment, options: LocalRunOptions): Promise<ScalingRunResult> {
  const counts = experiment.spec.scaling!.replicas;
  const out = options.out ?? process.stdout;
  const say = (line: string) => out.write(`${line}\n`);
  const started = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const outDir = resolve(options.outDir ?? join('loadlab-runs', `${experiment.metadata.name}-scaling-${started}`));
  say(`scaling study: the load once at each of ${counts.map(replicasText).join(', ')}; reports under ${outDir}`);
  const runs: LocalRunResult[] = [];
  const measured: ScalingRun[] = [];
  for (const [position, replicas] of counts.entries()) {
    say('');
    say(`=== run ${position + 1} of ${counts.length}: ${replicasText(replicas)} ===`);
    const result = await runLocal({ ...options, experiment, replicas, outDir: join(outDir, `replicas-${replicas}`) });
    runs.push(result);
    const { summary } = result.analysis;
    measured.push({ replicas, ...runCapacity(result.analysis), bottleneck: summary.bottleneck, verdict: result.analysis.verdict.text, reportDir: result.outDir });
  }
  const study = scalingStudy(measured);
  await writeScalingFiles(outDir, study, { title: `loadlab scaling study ${experiment.metadata.name}` });
  say('');
  say('=== scaling study ===');
  say(textTable(scalingTable(study)).join('\n'));
  for (const line of scalingFitLines(study)) say(line);
  for (const note of study.notes) say(`- ${note}`);
  say(`report: ${join(outDir, 'scaling.html')} (also scaling.md, scaling.json; each run's own under replicas-<n>/)`);
  return { experiment, runs, study, outDir };
}
