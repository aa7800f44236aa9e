#!/usr/bin/env node
/*
 * The `loadlab` command (package.json bin: dist/src/cli/main.js). One subcommand per verb:
 *   loadlab render <experiment.yaml>   print what a cluster run creates: the k6 script's ConfigMap and the
 *                                      TestRun (engine k6), or the driver Job and its ConfigMap (engine loadlab)
 *   loadlab run <experiment.yaml>      local mode: run it here, analyse it, write the report
 *   loadlab drive --experiment FILE    one runner of the loadlab engine's driver Job (what its pods run)
 *   loadlab operator                   the LoadExperiment operator (in a cluster; see src/controller/README.md)
 *   loadlab dashboard                  print the Grafana dashboard as JSON, for a Grafana of one's own
 *   loadlab report NAMESPACE/NAME      a cluster run's report folder, analysed again as the operator did
 *   loadlab compare BASELINE CANDIDATE  two runs side by side, differences beyond noise flagged (exit 99 on a regression)
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compare } from './compare-command.js';
import { dashboard } from './dashboard-command.js';
import { drive } from './drive-command.js';
import { operatorCommand } from './operator-command.js';
import { EXIT, processIo, type Io } from './io.js';
import { render } from './render.js';
import { report } from './report-command.js';
import { run } from './run-command.js';

export const USAGE = `Usage: loadlab <command> [options]

How does the ingest API behave as the device fleet grows, where does it break, and why?

Commands:
  render <experiment.yaml>   validate an experiment and print what a cluster run would create:
                             with spec.generator.engine k6 the k6 script's ConfigMap and the
                             k6-operator TestRun, with loadlab the driver Job and its ConfigMap
  run <experiment.yaml>      run an experiment on this machine (local mode) and print the verdict
  drive --experiment FILE    run one load-generator runner's share of an experiment's schedule
                             (what the pods of the loadlab engine's Job run)
  operator                   run the LoadExperiment operator against a cluster (configured by
                             environment variables; \`loadlab operator --help\` lists them)
  report NAMESPACE/NAME      write a cluster run's report (report.html, series.csv, summary.json ...),
                             analysed again from Prometheus as the operator analysed it
  compare BASELINE CANDIDATE compare two runs stage by stage; differences beyond the runs' noise
                             and a minimum effect are flagged (exit 99 when one is worse)
  dashboard                  print the Grafana dashboard (JSON) to import into a Grafana of your own
  help [command]             show this help, or a command's

Run \`loadlab <command> --help\` for a command's options.`;



type Command = (args: readonly string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  render,
  run,
  drive,
  operator: operatorCommand,
  dashboard,
  compare,
  report,
};

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    (command === undefined ? io.stderr : io.stdout)(`${USAGE}\n`);
    return command === undefined ? EXIT.invalid : EXIT.ok;
  }
  if (command === 'help') {
    const topic = args[0];
    if (topic === undefined) {
      io.stdout(`${USAGE}\n`);
      return EXIT.ok;
    }
    const handler = COMMANDS[topic];
    if (!handler) return unknown(topic, io);
    return handler(['--help'], io);
  }
  const handler = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!handler) return unknown(command, io);
  return handler(args, io);
}

function unknown(command: string, io: Io): number {
  io.stderr(`loadlab: unknown command "${command}"\n\n${USAGE}\n`);
  return EXIT.invalid;
}

/** Whether this module is the program: npm runs bins through a symlink, so compare real paths. */
function isProgram(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// Run when executed (the bin), not when imported.
if (isProgram()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`loadlab: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = EXIT.unreadable;
    },
  );
}
