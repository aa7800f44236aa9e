import { parseArgs } from 'node:util';
import { ConfigError, describeConfig, loadOperatorConfig } from '../controller/config.js';
import { loadKubeConfig } from '../controller/kube.js';
import { createLogger } from '../controller/log.js';
import { MetricsServer } from '../controller/metrics-server.js';
import { Operator } from '../controller/operator.js';

/** Exit statuses as the other subcommands (cli/io.ts): 0 ok, 1 failed, 2 invalid input. */
const EXIT = { ok: 0, unreadable: 1, invalid: 2 } as const;

interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

export const OPERATOR_USAGE = `Usage: loadlab operator [--kubeconfig FILE]

Runs the LoadExperiment operator: watches LoadExperiments, provisions each one's API, runs its
load through k6-operator TestRuns or Jobs of loadlab drivers (spec.generator.engine), analyses it
from Prometheus and writes the verdict into status.
Configured through the environment (validated at start):

  PROMETHEUS_URL          Prometheus' base URL (required), e.g. http://prometheus-operated.monitoring.svc:9090
  DATABASE_URL            the shared TimescaleDB's admin connection (required); each experiment
                          gets its own schema and role in it
  WATCH_NAMESPACES        comma-separated namespaces, or "all" (default: all)
  API_IMAGE               the API image used when an experiment keeps the default spec.target.image
  ALLOWED_API_IMAGES      comma-separated images experiments may run, each exact or a prefix ending
                          in * (default: only API_IMAGE); any other is refused as InvalidSpec
  GRAFANA_URL             Grafana's base URL, for the dashboard link in status (optional)
  GRAFANA_DASHBOARD       the dashboard uid (default: loadlab-experiment)
  REMOTE_WRITE_URL        where k6 remote-writes (default: kube-prometheus-stack's Prometheus)
  K6_RUNNER_IMAGE         the k6 runner image (default: k6-operator's)
  DRIVER_IMAGE            the loadlab engine's driver pods: this operator's own image
                          (default: loadlab/operator:dev)
  DRIVER_START_DELAY_SECONDS  how long after creating a driver Job its runners start the
                          schedule together (default 20)
  LEADER_ELECTION         true|false (default: true); LEASE_NAMESPACE (default: POD_NAMESPACE),
                          LEASE_NAME (default: loadlab-operator), LEASE_DURATION_SECONDS (15),
                          RENEW_DEADLINE_SECONDS (10), RETRY_PERIOD_SECONDS (2)
  POD_NAME, POD_NAMESPACE the identity in the Lease (from the downward API)
  MAX_CONCURRENT_RECONCILES (4), ANALYSIS_STEP_SECONDS (15), SCRAPE_INTERVAL_SECONDS (15),
  RETRY_BASE_SECONDS (1), RETRY_MAX_SECONDS (300), LOG_LEVEL (info)
  LOAD_START_TIMEOUT_SECONDS  a TestRun or driver Job not started this long after its creation
                          fails the run (300)
  DATABASE_CONNECTIONS_PER_EXPERIMENT  the most database connections one experiment's role may
                          hold (150): (replicas + 25%) x (dbPoolSize + 1) + 4; more is refused as InvalidSpec
  MAX_REQUESTS_PER_SECOND_PER_GENERATOR  the most requests/s a plan may ask of one generator pod
                          at its peak (20000); more is refused, naming the parallelism that would do
  MAX_PRELOAD_ROWS        the most rows spec.database.preloadDays may write (100000000)
  ANALYSIS_DELAY_SECONDS  the wait after the load ends before analysing (default: two scrape
                          intervals, so a scrape after the end has landed even if one was missed)
  DATABASE_METRICS_SELECTOR  matchers for the shared TimescaleDB's postgres_exporter (job="timescaledb")
  DATABASE_RESOURCE_SELECTOR matchers for its pod's cAdvisor series
                          (namespace="loadlab-system",pod=~"timescaledb-[0-9]+")
  GENERATOR_PLACEMENT     JSON {"nodeSelector": {...}, "tolerations": [...]}: where load-generator
                          pods go, and the most an experiment may ask: its nodeSelector may add
                          labels, its tolerations only these (none when unset)
  METRICS_PORT            /metrics, /healthz and /readyz (default 8080; 0 turns them off)

The cluster is reached through --kubeconfig, else KUBECONFIG, ~/.kube/config or the pod's
service account. SIGTERM or SIGINT stops it cleanly (the Lease is released).`;

export async function operatorCommand(args: readonly string[], io: Io): Promise<number> {
  let values: { kubeconfig?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args: [...args], options: { kubeconfig: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (error) {
    io.stderr(`loadlab operator: ${(error as Error).message}\n\n${OPERATOR_USAGE}\n`);
    return EXIT.invalid;
  }
  if (values.help) {
    io.stdout(`${OPERATOR_USAGE}\n`);
    return EXIT.ok;
  }
  let config;
  try {
    config = loadOperatorConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`loadlab operator: ${error.message}\n`);
      return EXIT.invalid;
    }
    throw error;
  }
  const log = createLogger(config.logLevel, (line) => io.stderr(`${line}\n`));
  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig(values.kubeconfig);
  } catch (error) {
    io.stderr(`loadlab operator: cannot load the kubeconfig: ${(error as Error).message}\n`);
    return EXIT.invalid;
  }
  log.info('starting', { config: describeConfig(config) });
  const operator = new Operator({ config, kubeConfig, log });
  let started = false;
  const metrics = config.metricsPort > 0
    ? await MetricsServer.start({
        port: config.metricsPort,
        isLeader: () => operator.isLeader,
        isStarted: () => started,
        experiments: () =>
          (operator.controller?.caches.experiments.list() ?? []).map((object) => ({
            namespace: object.metadata?.namespace ?? '',
            name: object.metadata?.name ?? '',
            runId: object.status?.runId,
            devicesAtBreak: object.status?.summary?.devicesAtBreak,
            breakingPointRps: object.status?.summary?.breakingPointRps,
          })),
      })
    : undefined;
  await operator.start();
  started = true;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await operator.stop();
  await metrics?.close();
  log.info('stopped');
  return EXIT.ok;
}
