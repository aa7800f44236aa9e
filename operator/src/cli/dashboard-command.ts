import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DASHBOARD_UID, experimentDashboard } from '../analysis/dashboard.js';
import { EXIT, type Io } from './io.js';

export const DASHBOARD_USAGE = `Usage: loadlab dashboard [--output FILE]

Prints the Grafana dashboard a cluster installation provisions ("loadlab: experiment", uid
${DASHBOARD_UID}) as JSON, to import into a Grafana of your own (Dashboards > New > Import). Its
panels are the analysis' own queries: the signals the verdict is read from, under the same names.

Its data source is a variable: pick the Prometheus that holds the runs, a cluster's or the one
\`loadlab run\` writes to with PROMETHEUS_URL. The variables namespace, experiment and run pick one
run; a local run is labelled like a cluster's (namespace: the experiment's metadata.namespace, else
default). Panels fed only in a cluster (k6, cAdvisor, kube-state-metrics, the operator's breaking
point) stay empty for a local run.

Options:
  --output FILE   write the JSON to FILE instead of standard output
  -h, --help      show this help

Exit status: 0 written; 1 FILE cannot be written; 2 an invalid option.`;

export async function dashboard(args: readonly string[], io: Io): Promise<number> {
  let values: { output?: string; help?: boolean };
  try {
    values = parseArgs({ args: [...args], strict: true, options: { output: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (error) {
    io.stderr(`loadlab dashboard: ${(error as Error).message}\n\n${DASHBOARD_USAGE}\n`);
    return EXIT.invalid;
  }
  if (values.help) {
    io.stdout(`${DASHBOARD_USAGE}\n`);
    return EXIT.ok;
  }
  const json = `${JSON.stringify(experimentDashboard(), null, 2)}\n`;
  if (values.output === undefined) {
    io.stdout(json);
    return EXIT.ok;
  }
  try {
    writeFileSync(values.output, json);
  } catch (error) {
    io.stderr(`loadlab dashboard: cannot write ${values.output}: ${(error as Error).message}\n`);
    return EXIT.unreadable;
  }
  io.stderr(`loadlab dashboard: wrote ${values.output}\n`);
  return EXIT.ok;
}
