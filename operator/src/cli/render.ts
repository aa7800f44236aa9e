import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { analysisDelayDefaultS, DEFAULT_SCRAPE_INTERVAL_S } from '../controller/config.js';
import { buildDriverConfigMap, buildDriverJob, DEFAULT_DRIVER_IMAGE } from '../driver-job/index.js';
import { buildScriptConfigMap, buildTestRun, DEFAULT_REMOTE_WRITE_URL, renderK6Script } from '../k6/index.js';
import { formatErrors, parseExperiment } from '../schema/index.js';
import { buildTrafficPlan } from '../traffic/plan.js';
import { DEFAULT_POLICY, DEFAULT_POLICY_NOTE, policyProblems } from '../controller/policy.js';
import { EXIT, type Io } from './io.js';
import { parsePhasesOption } from './phases-option.js';
import { checkRunId, defaultApiUrl } from '../contract/index.js';
import { type PhaseRange } from '../traffic/index.js';

/** As long as the operator with its default scrape interval keeps the drivers' metrics up. */
const DEFAULT_LINGER_S = analysisDelayDefaultS(DEFAULT_SCRAPE_INTERVAL_S);

export const RENDER_USAGE = `Usage: loadlab render <experiment.yaml> [options]

Validates a LoadExperiment and prints what the operator would create for one run in a cluster, as
a YAML stream for \`kubectl apply -f -\`. With spec.generator.engine k6 (the default): the k6
script's ConfigMap and the k6-operator TestRun (or, with --format script, only the k6 script; k6
runs in the cluster through k6-operator, the script cannot be run here). With loadlab: the
experiment's ConfigMap and the Job of spec.generator.parallelism driver pods (\`loadlab drive\`
on the operator's image), each sending its share of the schedule.

Options:
  --run-id ID             names the run: <experiment>-<ID>-k6 or -driver, run=<ID> (default: manual)
  --namespace NS          the namespace of the objects (default: the experiment's, else default)
  --api-url URL           the API's base URL (default: http://<experiment>-api.<NS>.svc:3000)
  --format yaml|script    what to print (default: yaml; script: engine k6 only)
  --phases FROM-TO        run only these plan phases, 0-based and inclusive (e.g. one search step)
  --token-secret SECRET   the API's TOKEN_SECRET, which the generators mint device tokens with
                          (default: $LOADLAB_TOKEN_SECRET, else a new random one, printed to stderr)
  --remote-write-url URL  engine k6: where k6 remote-writes its metrics
                          (default: ${DEFAULT_REMOTE_WRITE_URL})
  --image IMAGE           engine loadlab: the drivers' image, the operator's own
                          (default: ${DEFAULT_DRIVER_IMAGE})
  --start-at TIME         engine loadlab: when every runner starts the schedule, RFC 3339 (default:
                          each when its pod starts; the operator always sets one, so that several
                          runners keep in step)
  --linger SECONDS        engine loadlab: how long each runner keeps its metrics up after the
                          schedule, for Prometheus' last scrape (default: ${DEFAULT_LINGER_S}, two 15 s scrapes)
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
        image: { type: 'string' },
        'start-at': { type: 'string' },
        linger: { type: 'string' },
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
  const refused = policyProblems(experiment, plan, DEFAULT_POLICY);
  if (refused.length > 0) {
    io.stderr(`${refused.map((problem) => `${file}: ${problem}`).join('\n')}\n${file}: refused by the operator's default policy (${DEFAULT_POLICY_NOTE})\n`);
    return EXIT.invalid;
  }

  let phaseRange: PhaseRange | undefined;
  if (values.phases !== undefined) {
    const parsedPhases = parsePhasesOption(values.phases, plan);
    if ('error' in parsedPhases) return usageError(io, parsedPhases.error);
    phaseRange = parsedPhases;
  }

  const apiUrl = values['api-url'] ?? defaultApiUrl(experiment);
  const { engine } = experiment.spec.generator;
  if (engine === 'loadlab') {
    if (format === 'script') return usageError(io, '--format script: the loadlab engine runs no script (its pods run `loadlab drive` on the experiment itself); print the Job with --format yaml');
    if (values['remote-write-url'] !== undefined) return usageError(io, '--remote-write-url is for engine k6: the loadlab engine\'s drivers are scraped by Prometheus (the load-generator PodMonitor)');
  } else {
    for (const flag of ['image', 'start-at', 'linger'] as const) {
      if (values[flag] !== undefined) return usageError(io, `--${flag} is for engine loadlab (this experiment's spec.generator.engine is k6)`);
    }
  }
  const startAt = values['start-at'];
  if (startAt !== undefined && Number.isNaN(Date.parse(startAt))) return usageError(io, `--start-at must be an RFC 3339 time such as 2026-05-01T12:00:00Z, not "${startAt}"`);
  const lingerS = values.linger === undefined ? DEFAULT_LINGER_S : Number(values.linger);
  if (!(lingerS >= 0 && lingerS <= 3600)) return usageError(io, `--linger must be a number of seconds from 0 to 3600, not "${values.linger}"`);

  const script = engine === 'k6' ? renderK6Script(experiment, { plan, apiUrl, ...(phaseRange ? { phaseRange } : {}) }) : undefined;
  if (format === 'script') {
    io.stdout(script!.source);
    return EXIT.ok;
  }

  let tokenSecret = values['token-secret'] ?? io.env.LOADLAB_TOKEN_SECRET;
  if (!tokenSecret) {
    tokenSecret = randomBytes(24).toString('base64url');
    io.stderr(`loadlab render: no --token-secret: generated ${tokenSecret}; run the experiment's API with TOKEN_SECRET set to it\n`);
  }
  const identity = { runId, namespace };
  const range = phaseRange ?? { from: 0, to: plan.phases.length };
  const toYaml = (objects: unknown[]) => objects.map((object) => stringify(object, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
  if (!script) {
    const configMap = buildDriverConfigMap(experiment, identity);
    const job = buildDriverJob(experiment, {
      ...identity,
      image: values.image ?? DEFAULT_DRIVER_IMAGE,
      plan,
      phaseRange: range,
      tokenSecret,
      apiUrl,
      metricsLingerS: lingerS,
      ...(startAt !== undefined ? { start: { at: startAt, delayS: Math.max(0, Math.ceil((Date.parse(startAt) - Date.now()) / 1000)) } } : {}),
    });
    const first = plan.phases[range.from]!;
    const last = plan.phases[range.to - 1]!;
    const header = [
      `# loadlab render ${file}: run ${runId} of LoadExperiment ${namespace}/${experiment.metadata.name} on the loadlab engine,`,
      `# phases ${range.from}-${range.to - 1} of ${plan.phases.length} (${last.endS - first.startS} s of load) by ${experiment.spec.generator.parallelism} driver pod(s), each its share of the schedule.`,
      '# Needs no k6-operator: only the operator\'s image on the load nodes, and the experiment\'s API reachable at',
      `# ${apiUrl}, with TOKEN_SECRET as below and the devices registered as ids 1..N in index order.`,
      '# Prometheus scrapes the pods through the load-generator PodMonitor (charts/loadlab/40-monitoring.yaml).',
    ].join('\n');
    io.stdout(`${header}\n---\n${toYaml([configMap, job])}`);
    return EXIT.ok;
  }
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
  io.stdout(`${header}\n---\n${toYaml([configMap, testRun])}`);
  return EXIT.ok;
}

function usageError(io: Io, message: string): number {
  io.stderr(`loadlab render: ${message}\nRun \`loadlab render --help\` for the options.\n`);
  return EXIT.invalid;
}
