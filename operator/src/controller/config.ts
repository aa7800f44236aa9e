import type { LeaderElectionOptions } from './leader.js';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_REMOTE_WRITE_URL } from '../k6/testrun.js';
import { DEFAULT_DRIVER_IMAGE } from '../driver-job/job.js';
import { tolerationSchema } from '../schema/pod-fields.js';
import { DATABASE_METRICS_SELECTOR, DATABASE_RESOURCE_SELECTOR } from '../contract/names.js';
import { DEFAULT_POLICY, type Policy } from './policy.js';
import { imageReferenceRule } from '../schema/pod-fields.js';

/*
 * The operator's configuration, from its environment, validated once at start: every problem is
 * reported at once with the variable's name and what to write instead, and the process exits
 * before it touches the cluster.
 */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const boolean = (name: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((value) => ['true', 'false', '1', '0', 'yes', 'no'].includes(value), `must be true or false (${name})`)
    .transform((value) => ['true', '1', 'yes'].includes(value));

const seconds = (min: number, max: number, example: string) =>
  z.coerce
    .number({ error: `must be a number of seconds, e.g. ${example}` })
    .min(min, `must be at least ${min} (seconds)`)
    .max(max, `must be at most ${max} (seconds)`);

/** PromQL label matchers, e.g. job="timescaledb" or namespace="x",pod=~"y-.*". */
const labelMatchers = (example: string) =>
  z
    .string()
    .trim()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"]*"(\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"]*")*$/, `must be PromQL label matchers such as ${example}`);

const httpUrl = (example: string) =>
  z
    .string({ error: `is required: a URL such as ${example}` })
    .trim()
    .min(1, `is required: a URL such as ${example}`)
    .refine((value) => {
      try {
        return ['http:', 'https:'].includes(new URL(value).protocol);
      } catch {
        return false;
      }
    }, `must be an http:// or https:// URL such as ${example}`)
    .transform((value) => value.replace(/\/+$/, ''));

/** kube-prometheus-stack's scrape interval, which the charts keep: the operator's default. */
export const DEFAULT_SCRAPE_INTERVAL_S = 15;

/** Where load generators run when an experiment does not say (the install knows its nodes). */
const placementSchema = z.strictObject({
  nodeSelector: z.record(z.string(), z.string()).optional(),
  tolerations: z.array(tolerationSchema).max(20).optional(),
});

export const operatorEnvSchema = z
  .object({
    PROMETHEUS_URL: httpUrl('http://prometheus-operated.monitoring.svc:9090'),
    DATABASE_URL: z
      .string({ error: 'is required: the shared TimescaleDB\'s admin connection, e.g. postgres://postgres:secret@timescaledb.loadlab.svc:5432/loadlab' })
      .trim()
      .regex(/^postgres(ql)?:\/\/[^/]+\/[^/?]+/, 'must be a postgres:// URL with a database name, e.g. postgres://postgres:secret@timescaledb.loadlab.svc:5432/loadlab'),
    WATCH_NAMESPACES: z
      .string()
      .trim()
      .default('')
      .transform((value, ctx) => {
        if (value === '' || value === '*' || value.toLowerCase() === 'all') return 'all' as const;
        const names = value.split(',').map((name) => name.trim()).filter(Boolean);
        const bad = names.filter((name) => !DNS_LABEL.test(name) || name.length > 63);
        if (bad.length > 0) {
          ctx.addIssue({ code: 'custom', message: `${bad.map((name) => JSON.stringify(name)).join(', ')} is not a namespace name: give a comma-separated list such as "lab,team-a", or "all"` });
          return z.NEVER;
        }
        return [...new Set(names)];
      }),
    API_IMAGE: z.string().trim().max(512, 'must be at most 512 characters').optional(),
    GRAFANA_URL: httpUrl('http://grafana.monitoring.svc:3000').optional(),
    GRAFANA_DASHBOARD: z.string().trim().regex(/^[A-Za-z0-9_-]{1,40}$/, 'must be a Grafana dashboard uid, e.g. loadlab-experiment').default('loadlab-experiment'),
    REMOTE_WRITE_URL: httpUrl(DEFAULT_REMOTE_WRITE_URL).default(DEFAULT_REMOTE_WRITE_URL),
    K6_RUNNER_IMAGE: z.string().trim().max(512).optional(),
    DRIVER_IMAGE: z.string().trim().min(1, 'must name an image, e.g. loadlab/operator:dev').max(512, 'must be at most 512 characters').default(DEFAULT_DRIVER_IMAGE),
    DRIVER_START_DELAY_SECONDS: seconds(1, 600, '20').default(20),
    LOAD_START_TIMEOUT_SECONDS: seconds(1, 86_400, '300').default(300),
    SECRET_KEY: z.string().min(32, 'must be at least 32 characters (mount it from a Secret); it keys the per-experiment API token secret and database password').optional(),
    LEADER_ELECTION: boolean('LEADER_ELECTION').default(true),
    LEASE_NAMESPACE: z.string().trim().regex(DNS_LABEL, 'must be a namespace name, e.g. loadlab-system').optional(),
    LEASE_NAME: z.string().trim().regex(DNS_LABEL, 'must be a DNS label, e.g. loadlab-operator').default('loadlab-operator'),
    LEASE_DURATION_SECONDS: seconds(1, 300, '15').default(15),
    RENEW_DEADLINE_SECONDS: seconds(0.5, 300, '10').default(10),
    RETRY_PERIOD_SECONDS: seconds(0.1, 60, '2').default(2),
    POD_NAME: z.string().trim().max(100).optional(),
    POD_NAMESPACE: z.string().trim().regex(DNS_LABEL, 'must be a namespace name').optional(),
    MAX_CONCURRENT_RECONCILES: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').max(32, 'must be at most 32').default(4),
    DATABASE_CONNECTIONS_PER_EXPERIMENT: z.coerce.number().int('must be a whole number').min(10, 'must be at least 10').max(100_000, 'must be at most 100000').default(DEFAULT_POLICY.databaseConnectionsPerExperiment),
    MAX_REQUESTS_PER_SECOND_PER_GENERATOR: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').max(10_000_000, 'must be at most 10000000').default(DEFAULT_POLICY.maxRequestsPerSecondPerGenerator),
    MAX_PRELOAD_ROWS: z.coerce.number().int('must be a whole number').min(0, 'must be at least 0 (0: no preload)').max(1e12, 'must be at most 1000000000000').default(DEFAULT_POLICY.maxPreloadRows),
    ALLOWED_API_IMAGES: z
      .string()
      .trim()
      .default('')
      .transform((value, ctx) => {
        if (value === '') return undefined;
        const entries = value.split(',').map((entry) => entry.trim()).filter(Boolean);
        const image = imageReferenceRule('ALLOWED_API_IMAGES');
        const bad = entries.filter((entry) => !entry.endsWith('*') && !image.check(entry));
        if (bad.length > 0) {
          ctx.addIssue({ code: 'custom', message: `${bad.join(', ')}: each entry must be an image reference, or a prefix ending in * such as registry.example.com/loadlab/api:*` });
          return z.NEVER;
        }
        return entries;
      }),
    ANALYSIS_STEP_SECONDS: seconds(1, 3600, '15').default(15),
    SCRAPE_INTERVAL_SECONDS: seconds(1, 600, '15').default(DEFAULT_SCRAPE_INTERVAL_S),
    /** Waits this long after the load ends before querying; default: analysisDelayDefaultS(). */
    ANALYSIS_DELAY_SECONDS: seconds(0, 600, '30').optional(),
    RETRY_BASE_SECONDS: seconds(0.01, 60, '1').default(1),
    RETRY_MAX_SECONDS: seconds(0.1, 3600, '300').default(300),
    DATABASE_METRICS_SELECTOR: labelMatchers('job="timescaledb"').default(DATABASE_METRICS_SELECTOR),
    DATABASE_RESOURCE_SELECTOR: labelMatchers('namespace="loadlab-system",pod=~"timescaledb-[0-9]+"').default(DATABASE_RESOURCE_SELECTOR),
    GENERATOR_PLACEMENT: z
      .string()
      .trim()
      .default('')
      .transform((value, ctx) => {
        if (value === '') return undefined;
        let parsed: unknown;
        try {
          parsed = JSON.parse(value);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON such as {"nodeSelector":{"loadlab.dev/role":"load"},"tolerations":[{"key":"loadlab.dev/role","value":"load","effect":"NoSchedule"}]}' });
          return z.NEVER;
        }
        const placement = placementSchema.safeParse(parsed);
        if (!placement.success) {
          ctx.addIssue({ code: 'custom', message: `must be {"nodeSelector": {label: value}, "tolerations": [...]}: ${placement.error.issues.map((issue) => `${issue.path.join('.') || '(top)'} ${issue.message}`).join('; ')}` });
          return z.NEVER;
        }
        return placement.data;
      }),
    METRICS_PORT: z.coerce.number().int('must be a whole number').min(0, 'must be a port number, or 0 to turn the endpoint off').max(65535, 'must be a port number (at most 65535)').default(8080),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent'], { error: 'must be debug, info, warn, error or silent' }).default('info'),
  })
  .superRefine((env, ctx) => {
    if (env.RENEW_DEADLINE_SECONDS >= env.LEASE_DURATION_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['RENEW_DEADLINE_SECONDS'], message: `must be shorter than LEASE_DURATION_SECONDS (${env.LEASE_DURATION_SECONDS}): a leader that cannot renew must stop before another may take over` });
    }
    if (env.RETRY_PERIOD_SECONDS >= env.RENEW_DEADLINE_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['RETRY_PERIOD_SECONDS'], message: `must be shorter than RENEW_DEADLINE_SECONDS (${env.RENEW_DEADLINE_SECONDS}): the leader renews several times within the deadline` });
    }
    if (env.RETRY_BASE_SECONDS > env.RETRY_MAX_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['RETRY_BASE_SECONDS'], message: 'must not exceed RETRY_MAX_SECONDS' });
    }
  });

/**
 * The wait between the end of the load and the analysis when ANALYSIS_DELAY_SECONDS is not set:
 * two scrape intervals. The API's last counts are in Prometheus only once a scrape has run after
 * the load ended, which can be up to one interval later; a second interval covers a scrape that
 * was slow or missed, and is far longer than k6's remote-write flush (every 5 s), which carries the
 * runners' last samples. Local mode waits the same way: for the final scrape, then one interval
 * more (local/local-run.ts). Querying earlier reads the last seconds of a run as no traffic.
 */
export function analysisDelayDefaultS(scrapeIntervalS: number): number {
  return 2 * scrapeIntervalS;
}

/** The operator's configuration; Policy (policy.ts) is what experiments may do. */
export interface OperatorConfig extends Policy {
  prometheusUrl: string;
  /** The shared TimescaleDB's admin connection: creates a schema and a role per experiment. */
  databaseUrl: string;
  watchNamespaces: 'all' | string[];
  grafanaUrl?: string;
  grafanaDashboard: string;
  remoteWriteUrl: string;
  runnerImage?: string;
  /**
   * The loadlab engine's driver Jobs: the image (the operator's own, whose entry point is
   * `loadlab`), how long after creating a Job its runners start their schedule (time for the pods
   * to be scheduled and start; a runner later than that joins late and its missed arrivals show as
   * dropped), and how long each keeps its metrics up afterwards for Prometheus' last scrape.
   */
  driver: { image: string; startDelayS: number; metricsLingerS: number };
  /** A TestRun or driver Job whose load has not started this long after it was created fails the run. */
  loadStartTimeoutS: number;
  /**
   * Keys the secrets derived per experiment (names.ts). Default: derived from DATABASE_URL, which
   * only the operator holds; set it to keep those secrets stable when the admin password rotates.
   */
  secretKey: string;
  leaderElection: { enabled: boolean } & Pick<LeaderElectionOptions, 'namespace' | 'name' | 'identity' | 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>;
  maxConcurrentReconciles: number;
  analysis: { stepS: number; scrapeIntervalS: number; delayS: number };
  retry: { baseMs: number; maxMs: number };
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Selects the shared TimescaleDB's postgres_exporter series (they carry no experiment label). */
  databaseMetricsSelector: string;
  /** Selects the shared TimescaleDB pod's cAdvisor series (its CPU): it is not among an experiment's pods. */
  databaseResourceSelector: string;
  /** /metrics, /healthz and /readyz; 0: no endpoint. */
  metricsPort: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration; throws one ConfigError listing every bad variable and what to do. */
export function loadOperatorConfig(env: Readonly<Record<string, string | undefined>> = process.env): OperatorConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = operatorEnvSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.') || '(environment)'}: ${issue.message}`);
    throw new ConfigError(`invalid operator configuration:\n${lines.join('\n')}`);
  }
  const e = result.data;
  const leaseNamespace = e.LEASE_NAMESPACE ?? e.POD_NAMESPACE;
  if (e.LEADER_ELECTION && !leaseNamespace) {
    throw new ConfigError('invalid operator configuration:\n  LEASE_NAMESPACE: is required with LEADER_ELECTION=true (or set POD_NAMESPACE from the downward API): the namespace of the coordination.k8s.io Lease');
  }
  return {
    prometheusUrl: e.PROMETHEUS_URL,
    databaseUrl: e.DATABASE_URL,
    watchNamespaces: e.WATCH_NAMESPACES,
    ...(e.API_IMAGE ? { apiImage: e.API_IMAGE } : {}),
    ...(e.GRAFANA_URL ? { grafanaUrl: e.GRAFANA_URL } : {}),
    grafanaDashboard: e.GRAFANA_DASHBOARD,
    remoteWriteUrl: e.REMOTE_WRITE_URL,
    ...(e.K6_RUNNER_IMAGE ? { runnerImage: e.K6_RUNNER_IMAGE } : {}),
    // The metrics stay up as long as the analysis waits after a unit, and for the same reason.
    driver: { image: e.DRIVER_IMAGE, startDelayS: e.DRIVER_START_DELAY_SECONDS, metricsLingerS: analysisDelayDefaultS(e.SCRAPE_INTERVAL_SECONDS) },
    loadStartTimeoutS: e.LOAD_START_TIMEOUT_SECONDS,
    secretKey: e.SECRET_KEY ?? createHash('sha256').update(`loadlab-operator/${e.DATABASE_URL}`).digest('hex'),
    leaderElection: {
      enabled: e.LEADER_ELECTION,
      namespace: leaseNamespace ?? 'default',
      name: e.LEASE_NAME,
      // Unique per process even when two share a pod name (client-go adds a uuid the same way).
      identity: `${e.POD_NAME ?? hostname()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`,
      leaseDurationMs: e.LEASE_DURATION_SECONDS * 1000,
      renewDeadlineMs: e.RENEW_DEADLINE_SECONDS * 1000,
      retryPeriodMs: e.RETRY_PERIOD_SECONDS * 1000,
    },
    maxConcurrentReconciles: e.MAX_CONCURRENT_RECONCILES,
    databaseConnectionsPerExperiment: e.DATABASE_CONNECTIONS_PER_EXPERIMENT,
    maxRequestsPerSecondPerGenerator: e.MAX_REQUESTS_PER_SECOND_PER_GENERATOR,
    maxPreloadRows: e.MAX_PRELOAD_ROWS,
    ...(e.ALLOWED_API_IMAGES ? { allowedApiImages: e.ALLOWED_API_IMAGES } : {}),
    analysis: { stepS: e.ANALYSIS_STEP_SECONDS, scrapeIntervalS: e.SCRAPE_INTERVAL_SECONDS, delayS: e.ANALYSIS_DELAY_SECONDS ?? analysisDelayDefaultS(e.SCRAPE_INTERVAL_SECONDS) },
    retry: { baseMs: e.RETRY_BASE_SECONDS * 1000, maxMs: e.RETRY_MAX_SECONDS * 1000 },
    logLevel: e.LOG_LEVEL,
    metricsPort: e.METRICS_PORT,
    ...(e.GENERATOR_PLACEMENT ? { generatorPlacement: e.GENERATOR_PLACEMENT } : {}),
    databaseMetricsSelector: e.DATABASE_METRICS_SELECTOR,
    databaseResourceSelector: e.DATABASE_RESOURCE_SELECTOR,
  };
}

/** The configuration with secrets hidden, for the start-up log line. */
export function describeConfig(config: OperatorConfig): Record<string, unknown> {
  return {
    ...config,
    databaseUrl: config.databaseUrl.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@'),
    secretKey: '***',
  };
}
