import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { buildScriptConfigMap, buildTestRun, DEFAULT_REMOTE_WRITE_URL, renderK6Script } from '../k6/index.js';
import { formatErrors, parseExperiment } from '../schema/index.js';
import { buildTrafficPlan } from '../traffic/plan.js';
import { EXIT, type Io } from './io.js';
import { checkRunId, defaultApiUrl } from '../contract/index.js';
import { type PhaseRange } from '../traffic/index.js';

export const RENDER_USAGE = `Usage: loadlab render <experiment.yaml> [options]

Validates a LoadExperiment and prints what the operator would create for one run in a cluster:
the k6 script's ConfigMap and the k6-operator TestRun, as a YAML stream for \`kubectl apply -f -\`
(or, with --format script, only the k6 script). k6 runs in the cluster through k6-operator; the
script cannot be run here.

Options:
  --run-id ID             names the run: <experiment>-<ID>-k6, tag run=<ID> (default: manual)
  --namespace NS          the namespace of the objects (default: the experiment's, else default)
  --api-url URL           the API's base URL (default: http://<experiment>-api.<NS>.svc:3000)
  --format yaml|script    what to print (default: yaml)
  --phases FROM-TO        run only these plan phases, 0-based and inclusive (e.g. one search step)
  --token-secret SECRET   the API's TOKEN_SECRET, which the runners mint device tokens with
                          (default: $LOADLAB_TOKEN_SECRET, else a new random one, printed to stderr)
  --remote-write-url URL  where k6 remote-writes its metrics
                          (default: ${DEFAULT_REMOTE_WRITE_URL})
  -h, --help              show this help

Exit status: 0 printed; 1 the file cannot be read; 2 the experiment or an option is invalid.`;

export async function render(args: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        'run-id': { type: 'string' },
        namespace: { type: 'string' },
        'api-url': { type: 'string' },
        format: { type: 'string' },
        phases: { type: 'string' },
        'token-secret': { type: 'string' },
        'remote-write-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return usageError(io, (error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${RENDER_USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    return usageError(io, positionals.length === 0 ? 'name the experiment file, e.g. loadlab render experiments/smoke.yaml' : `expected one experiment file, got ${positionals.length}: ${positionals.join(' ')}`);
  }
  const format = values.format ?? 'yaml';
  if (format !== 'yaml' && format !== 'script') return usageError(io, `--format must be yaml or script, not "${format}"`);
  const runId = values['run-id'] ?? 'manual';
  try {
    checkRunId(runId);
  } catch (error) {
    return usageError(io, `--run-id: ${(error as Error).message}`);
  }
  if (values.namespace !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(values.namespace)) {
    return usageError(io, `--namespace "${values.namespace}" is not a Kubernetes namespace name (lowercase letters, digits and "-")`);
  }
  for (const flag of ['api-url', 'remote-write-url'] as const) {
    const value = values[flag];
    if (value !== undefined && !/^https?:\/\/[^\s/]+/.test(value)) return usageError(io, `--${flag} must be an http:// or https:// URL, not "${value}"`);
  }

  const file = positionals[0]!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    io.stderr(`loadlab render: cannot read ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}\n`);
    return EXIT.unreadable;
  }
  const result = parseExperiment(text, file);
  if (!result.ok) {
    io.stderr(`${formatErrors(result.errors)}\n${file}: not a valid LoadExperiment (${result.errors.length} problem${result.errors.length === 1 ? '' : 's'})\n`);
    return EXIT.invalid;
  }
  const namespace = values.namespace ?? result.experiment.metadata.namespace ?? 'default';
  const experiment = { ...result.experiment, metadata: { ...result.experiment.metadata, namespace } };
  const plan = buildTrafficPlan(experiment);

  let phaseRange: PhaseRange | undefined;
  if (values.phases !== undefined) {
    const match = /^(\d+)-(\d+)$/.exec(values.phases);
    const from = Number(match?.[1]);
    const to = Number(match?.[2]) + 1;
    if (!match || from >= to || to > plan.phases.length) {
      return usageError(io, `--phases must be FROM-TO with 0 <= FROM <= TO <= ${plan.phases.length - 1} (the plan has ${plan.phases.length} phases), not "${values.phases}"`);
    }
    phaseRange = { from, to };
  }

  const apiUrl = values['api-url'] ?? defaultApiUrl(experiment);
  const script = renderK6Script(experiment, { plan, apiUrl, ...(phaseRange ? { phaseRange } : {}) });
  if (format === 'script') {
    io.stdout(script.source);
    return EXIT.ok;
  }

  let tokenSecret = values['token-secret'] ?? io.env.LOADLAB_TOKEN_SECRET;
  if (!tokenSecret) {
    tokenSecret = randomBytes(24).toString('base64url');
    io.stderr(`loadlab render: no --token-secret: generated ${tokenSecret}; run the experiment's API with TOKEN_SECRET set to it\n`);
  }
  const identity = { runId, namespace };
  const configMap = buildScriptConfigMap(experiment, script, identity);
  const testRun = buildTestRun(experiment, {
    ...identity,
    tokenSecret,
    apiUrl,
    phaseRange: script.config.range,
    ...(values['remote-write-url'] ? { remoteWriteUrl: values['remote-write-url'] } : {}),
  });
  const header = [
    `# loadlab render ${file}: run ${runId} of LoadExperiment ${namespace}/${experiment.metadata.name},`,
    `# phases ${script.config.range.from}-${script.config.range.to - 1} of ${plan.phases.length} (${script.config.range.durationS} s of load).`,
    '# Needs grafana/k6-operator (TestRun CRD) in the cluster and the experiment\'s API reachable at',
    `# ${apiUrl}, with the devices registered as ids 1..N in index order.`,
  ].join('\n');
  const documents = [configMap, testRun].map((object) => stringify(object, { lineWidth: 0, aliasDuplicateObjects: false }));
  io.stdout(`${header}\n---\n${documents.join('---\n')}`);
  return EXIT.ok;
}

function usageError(io: Io, message: string): number {
  io.stderr(`loadlab render: ${message}\nRun \`loadlab render --help\` for the options.\n`);
  return EXIT.invalid;
}
