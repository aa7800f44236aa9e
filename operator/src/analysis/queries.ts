import { DRIVER_CONTAINER, DRIVER_JOB } from '../contract/names.js';
import { DEFAULT_LOAD_ENGINE, type LoadEngine } from '../schema/spec.js';
import type { Combine } from './series.js';

/*
 * Every PromQL the analysis runs, in one place. Each entry is queried ONCE as a range query over
 * the whole run at the analysis step; stages are cut out of the result locally. So the number of
 * queries is the length of this catalog (about 35), whatever the number of stages.
 *
 * Rates use a window `w` (rateWindowS) at least four scrape intervals wide, so every rate has
 * enough samples; stages exclude their first `w` seconds for the same reason (see timeline.ts).
 */

/** Where the run's resources are measured: local processes (/proc, exporters) or a cluster (cAdvisor, kube-state-metrics). */
export type Source = 'local' | 'kubernetes';

/**
 * Which load generator's metrics a run has: the loadlab driver's (loadlab_driver_*, scraped with
 * job="driver" and the run's labels, locally and in a cluster alike) or k6's (remote-written k6_*).
 * Local mode always runs the driver; in a cluster it is spec.generator.engine.
 */
export function engineOf(options: { source: Source; engine?: LoadEngine | undefined }): LoadEngine {
  return options.engine ?? (options.source === 'local' ? 'loadlab' : DEFAULT_LOAD_ENGINE);
}

/** The resources the USE method looks at, plus "traffic" for what the load itself did. */
export type Resource = 'traffic' | 'load-generator' | 'host-cpu' | 'api-cpu' | 'event-loop' | 'db-pool' | 'database' | 'memory-gc';

export type Unit = 'rps' | 'seconds' | 'ratio' | 'cores' | 'count' | 'bytes' | 'devices';

export interface CatalogQuery {
  /** Stable name: the key of its measures (`<name>.mean`, `<name>.p95`) and of its CSV rows. */
  name: string;
  description: string;
  promql: string;
  unit: Unit;
  resource: Resource;
  /** How the series of this query become one value per timestamp. */
  combine: Combine;
  /** Bucket rates by `le`: summarised as quantiles per stage instead of mean/max. */
  histogram?: boolean;
  /** Its series are different statistics (k6's p95, p99, ...): read by stages.ts, never combined. */
  statistics?: boolean;
}

export interface CatalogOptions {
  /** Label matchers that select this experiment's run, e.g. `experiment="quickstart",run="3"`. */
  selector: string;
  source: Source;
  /** The generator whose metrics to read (default: engineOf). */
  engine?: LoadEngine;
  /** The window of rate(), seconds. */
  rateWindowS: number;
  /** The window of rate() as PromQL writes it, instead of rateWindowS: Grafana's `$__rate_interval`. */
  rateWindow?: string;
  /** Container names in Kubernetes (cAdvisor's `container` label). */
  containers?: { api?: string; database?: string; generator?: string };
  /**
   * Matchers for cAdvisor and kube-state-metrics series, which carry the pod's namespace and name
   * but not the experiment's labels unless the cluster relabels them, e.g.
   * `namespace="lab",pod=~"quickstart-.*"`. Default: the experiment selector.
   */
  resourceSelector?: string;
  /**
   * Matchers for postgres_exporter's series (pg_*). Locally the exporter is the run's own and
   * carries its labels; a cluster's TimescaleDB is shared, so its exporter is selected by what it
   * is. Default: the experiment selector.
   */
  databaseSelector?: string;
  /**
   * Matchers for the database container's cAdvisor and kube-state-metrics series. In a cluster the
   * database is shared and runs outside the experiment's namespace, e.g.
   * `namespace="loadlab-system",pod=~"timescaledb-[0-9]+"`. Default: resourceSelector.
   */
  databaseResourceSelector?: string;
}

export const DEFAULT_CONTAINERS = { api: 'api', database: 'timescaledb', generator: 'k6' } as const;

/** The label that tells replicas apart: the scrape target locally, the pod in a cluster. */
export function replicaLabel(source: Source): 'instance' | 'pod' {
  return source === 'kubernetes' ? 'pod' : 'instance';
}

/** The routes of the device traffic, by the driver's endpoint name. */
export const DEVICE_ROUTES: Readonly<Record<string, string>> = {
  '/v1/measurements': 'measurements',
  '/v1/command': 'command',
  '/v1/devices/login': 'login',
};

export function buildCatalog(options: CatalogOptions): CatalogQuery[] {
  const bare = (matchers: string) => matchers.trim().replace(/^\{|\}$/g, '').trim();
  const selector = bare(options.selector);
  const resourceSelector = bare(options.resourceSelector ?? options.selector);
  const databaseSelector = bare(options.databaseSelector ?? options.selector);
  const databaseResourceSelector = bare(options.databaseResourceSelector ?? options.resourceSelector ?? options.selector);
  const w = options.rateWindow ?? `${Math.max(1, Math.round(options.rateWindowS))}s`;
  const containers = { ...DEFAULT_CONTAINERS, ...options.containers };
  const replica = replicaLabel(options.source);
  /** metric{<experiment selector>,<extra matchers>} */
  const m = (metric: string, extra = '', ofDatabase = false) => {
    const resources = ofDatabase ? databaseResourceSelector : resourceSelector;
    const matchers = /^(container_|kube_)/.test(metric) ? resources : /^pg_/.test(metric) ? databaseSelector : selector;
    return `${metric}{${[matchers, extra].filter((part) => part !== '').join(',')}}`;
  };
  const rate = (metric: string, extra = '', ofDatabase = false) => `rate(${m(metric, extra, ofDatabase)}[${w}])`;
  // The driver is a Node.js process too, scraped with the run's labels: its event loop, GC and
  // heap are the generator's, never the API's.
  const notDriver = `job!="${DRIVER_JOB}"`;
  const q = (entry: CatalogQuery) => entry;

  const api: CatalogQuery[] = [
    q({
      name: 'api_requests', resource: 'traffic', unit: 'rps', combine: 'sum',
      description: 'Requests the API served per second, by route and status.',
      promql: `sum by (route, status) (${rate('loadlab_api_http_request_duration_seconds_count')})`,
    }),
    q({
      name: 'api_latency', resource: 'traffic', unit: 'seconds', combine: 'sum', histogram: true,
      description: 'Server-side request duration, bucket rates by route.',
      promql: `sum by (route, le) (${rate('loadlab_api_http_request_duration_seconds_bucket')})`,
    }),
    q({
      name: 'api_in_flight', resource: 'traffic', unit: 'count', combine: 'sum',
      description: 'Requests in flight in the API, all replicas.',
      promql: `sum(${m('loadlab_api_http_requests_in_flight')})`,
    }),
    q({
      name: 'api_shed', resource: 'traffic', unit: 'rps', combine: 'sum',
      description: 'Requests the API refused with 503 to protect itself, by reason.',
      promql: `sum by (reason) (${rate('loadlab_api_http_requests_shed_total')})`,
    }),
    q({
      name: 'api_ingested', resource: 'traffic', unit: 'rps', combine: 'sum',
      description: 'Measurement rows committed per second.',
      promql: `sum(${rate('loadlab_api_measurements_ingested_total')})`,
    }),
  ];

  const generator: CatalogQuery[] = engineOf(options) === 'loadlab'
    ? [
        q({
          name: 'generator_offered', resource: 'load-generator', unit: 'rps', combine: 'sum',
          description: 'Arrivals the driver\'s schedule asked for, per endpoint.',
          promql: `sum by (endpoint) (${rate('loadlab_driver_requests_offered_total')})`,
        }),
        q({
          name: 'generator_sent', resource: 'load-generator', unit: 'rps', combine: 'sum',
          description: 'Requests the driver sent, per endpoint.',
          promql: `sum by (endpoint) (${rate('loadlab_driver_requests_sent_total')})`,
        }),
        q({
          name: 'generator_dropped', resource: 'load-generator', unit: 'rps', combine: 'sum',
          description: 'Arrivals the driver did not send because it fell too far behind.',
          promql: `sum by (endpoint) (${rate('loadlab_driver_requests_dropped_total')})`,
        }),
        q({
          name: 'generator_late', resource: 'load-generator', unit: 'rps', combine: 'sum',
          description: 'Requests sent more than 50 ms after their schedule.',
          promql: `sum by (endpoint) (${rate('loadlab_driver_requests_late_total')})`,
        }),
        q({
          name: 'generator_responses', resource: 'traffic', unit: 'rps', combine: 'sum',
          description: 'Responses the driver received, by endpoint and code (HTTP status or "error").',
          promql: `sum by (endpoint, code) (${rate('loadlab_driver_responses_total')})`,
        }),
        q({
          name: 'generator_latency', resource: 'traffic', unit: 'seconds', combine: 'sum', histogram: true,
          description: 'Client-side request duration, bucket rates by endpoint.',
          promql: `sum by (endpoint, le) (${rate('loadlab_driver_request_duration_seconds_bucket')})`,
        }),
        q({
          name: 'generator_schedule_lag', resource: 'load-generator', unit: 'seconds', combine: 'max',
          description: 'How far behind its schedule the driver is.',
          promql: `max(${m('loadlab_driver_schedule_lag_seconds')})`,
        }),
        q({
          name: 'generator_cpu', resource: 'load-generator', unit: 'cores', combine: 'max',
          description: 'CPU of each driver process (a driver pod\'s whole CPU: it sends every request itself).',
          promql: `sum by (${replica}) (${rate('process_cpu_seconds_total', `job="${DRIVER_JOB}"`)})`,
        }),
        q({
          name: 'generator_fleet', resource: 'load-generator', unit: 'devices', combine: 'max',
          description: 'Devices the plan has now (every driver runner reports the whole fleet).',
          promql: `max(${m('loadlab_driver_fleet_devices')})`,
        }),
      ]
    : [
        q({
          name: 'generator_iterations', resource: 'load-generator', unit: 'rps', combine: 'sum',
          description: 'k6 iterations completed per second.',
          promql: `sum(${rate('k6_iterations_total')})`,
        }),
        q({
          name: 'generator_dropped', resource: 'load-generator', unit: 'rps', combine: 'sum',
          description: 'k6 iterations dropped per second (no free VU: the generator fell behind).',
          promql: `sum(${rate('k6_dropped_iterations_total')})`,
        }),
        q({
          name: 'generator_responses', resource: 'traffic', unit: 'rps', combine: 'sum',
          description: 'Responses k6 received, by endpoint and status (0: transport error).',
          promql: `sum by (endpoint, status) (${rate('k6_http_reqs_total')})`,
        }),
        q({
          // The TestRun has k6 send trends as native histograms (k6_http_req_duration_seconds):
          // quantiles over the rate window, summed across runners. (k6's trend-stat gauges instead
          // hold statistics over the whole test so far, which lag every stage after the first.)
          name: 'generator_latency_trend', resource: 'traffic', unit: 'seconds', combine: 'max', statistics: true,
          description: 'Client-side request duration quantiles (p50, p90, p95, p99) by endpoint, from k6\'s native histogram of http_req_duration.',
          promql: [0.5, 0.9, 0.95, 0.99]
            .map((quantile) => `label_replace(histogram_quantile(${quantile}, sum by (endpoint) (${rate('k6_http_req_duration_seconds')})), "stat", "p${Math.round(quantile * 100)}", "", "")`)
            .join(' or '),
        }),
        q({
          name: 'generator_vus', resource: 'load-generator', unit: 'count', combine: 'sum',
          description: 'k6 virtual users (concurrent requests) in use.',
          promql: `sum(${m('k6_vus')})`,
        }),
        q({
          name: 'generator_failed_rate', resource: 'traffic', unit: 'ratio', combine: 'max',
          description: 'k6\'s own http_req_failed rate.',
          promql: `max(${m('k6_http_req_failed_rate')})`,
        }),
        q({
          name: 'generator_fleet', resource: 'load-generator', unit: 'devices', combine: 'max',
          description: 'Devices the plan has now (every runner reports the whole fleet).',
          promql: `max(${m('k6_loadlab_fleet_devices')})`,
        }),
        q({
          name: 'generator_cpu', resource: 'load-generator', unit: 'cores', combine: 'max',
          description: 'CPU of each k6 runner pod.',
          promql: `sum by (pod) (${rate('container_cpu_usage_seconds_total', `container="${containers.generator}"`)})`,
        }),
      ];

  const apiCpu: CatalogQuery[] = options.source === 'local'
    ? [
        q({
          // From /proc, by local mode's process exporter: an overloaded API answers its own /metrics
          // too late for the scrape. Labelled with the API's address as `instance`, as its own series are.
          name: 'api_cpu', resource: 'api-cpu', unit: 'cores', combine: 'max',
          description: 'Process CPU of each API replica (/proc, read by loadlab).',
          promql: `sum by (instance) (label_replace(${rate('loadlab_local_api_cpu_seconds_total')}, "instance", "$1", "api", "(.*)"))`,
        }),
      ]
    : [
        q({
          name: 'api_cpu', resource: 'api-cpu', unit: 'cores', combine: 'max',
          description: 'Container CPU of each API pod.',
          promql: `sum by (pod) (${rate('container_cpu_usage_seconds_total', `container="${containers.api}"`)})`,
        }),
        q({
          name: 'api_cpu_throttled', resource: 'api-cpu', unit: 'ratio', combine: 'max',
          description: 'Fraction of CFS periods in which each API pod was throttled.',
          promql:
            `sum by (pod) (${rate('container_cpu_cfs_throttled_periods_total', `container="${containers.api}"`)}) / ` +
            `sum by (pod) (${rate('container_cpu_cfs_periods_total', `container="${containers.api}"`)})`,
        }),
        q({
          name: 'api_cpu_limit_fraction', resource: 'api-cpu', unit: 'ratio', combine: 'max',
          description: 'API container CPU as a fraction of its limit (needs kube-state-metrics).',
          promql:
            `sum by (pod) (${rate('container_cpu_usage_seconds_total', `container="${containers.api}"`)}) / ` +
            `sum by (pod) (${m('kube_pod_container_resource_limits', `container="${containers.api}",resource="cpu"`)})`,
        }),
      ];

  // The API's own count of the time its event-loop thread waited for a CPU (/proc/self/schedstat,
  // the same in a process and in a pod): what CPU time alone cannot tell, "did not get a core".
  const apiWait = q({
    name: 'api_cpu_wait', resource: 'host-cpu', unit: 'ratio', combine: 'max',
    description: 'Share of time each replica\'s event-loop thread was ready to run but waited for a CPU.',
    // Locally read from /proc by loadlab (an overloaded API's own scrape fails); in a cluster the
    // API's own count (loadlab_api_cpu_wait_seconds_total, the same kernel field).
    promql: options.source === 'local'
      ? `sum by (instance) (label_replace(${rate('loadlab_local_api_cpu_wait_seconds_total')}, "instance", "$1", "api", "(.*)"))`
      : `sum by (${replica}) (${rate('loadlab_api_cpu_wait_seconds_total')})`,
  });

  const hostCpu: CatalogQuery[] = options.source === 'local'
    ? [
        apiWait,
        q({
          name: 'host_cpu_busy', resource: 'host-cpu', unit: 'ratio', combine: 'max',
          description: 'Busy fraction of the machine\'s CPUs (node_exporter), shared by everything on it.',
          promql: `1 - avg(${rate('node_cpu_seconds_total', 'mode="idle"')})`,
        }),
        q({
          name: 'host_cpu_cores', resource: 'host-cpu', unit: 'cores', combine: 'max',
          description: 'CPUs of the machine (node_exporter).',
          promql: `count(${m('node_cpu_seconds_total', 'mode="idle"')})`,
        }),
        q({
          name: 'host_cpu_by_role', resource: 'host-cpu', unit: 'cores', combine: 'sum',
          description: 'CPU of the run\'s processes by role (/proc): api, database, generator (the loadlab process), monitoring.',
          promql: `sum by (role) (${rate('loadlab_local_cpu_seconds_total')})`,
        }),
        q({
          name: 'host_cpu_pressure', resource: 'host-cpu', unit: 'ratio', combine: 'max',
          description: 'Share of time some runnable task waited for a CPU (pressure stall information, where the kernel has it).',
          promql: `sum(${rate('node_pressure_cpu_waiting_seconds_total')})`,
        }),
        q({
          name: 'host_load_per_cpu', resource: 'host-cpu', unit: 'ratio', combine: 'max',
          description: 'One-minute load average per CPU (runnable and uninterruptible tasks).',
          promql: `sum(${m('node_load1')}) / count(${m('node_cpu_seconds_total', 'mode="idle"')})`,
        }),
      ]
    : (() => {
        // The nodes the API's pods run on, and each node's whole CPU from cAdvisor's root cgroup
        // (it carries the node, not the experiment). Roles are the containers on those nodes.
        const apiNodes = `group by (node) (${m('container_cpu_usage_seconds_total', `container="${containers.api}"`)})`;
        const onApiNodes = (perNode: string) => `sum(${perNode} and on (node) ${apiNodes})`;
        const nodeBusy = onApiNodes(`sum by (node) (rate(container_cpu_usage_seconds_total{id="/"}[${w}]))`);
        const nodeCores = onApiNodes('sum by (node) (machine_cpu_cores)');
        const role = (name: string, container: string, ofDatabase = false) =>
          `label_replace(${onApiNodes(`sum by (node) (${rate('container_cpu_usage_seconds_total', `container="${container}"`, ofDatabase)})`)}, "role", "${name}", "", "")`;
        return [
          apiWait,
          q({
            name: 'host_cpu_busy', resource: 'host-cpu', unit: 'ratio', combine: 'max',
            description: 'Busy fraction of the CPUs of the nodes the API runs on (cAdvisor\'s root cgroup).',
            promql: `${nodeBusy} / ${nodeCores}`,
          }),
          q({
            name: 'host_cpu_cores', resource: 'host-cpu', unit: 'cores', combine: 'max',
            description: 'CPUs of the nodes the API runs on (cAdvisor).',
            promql: nodeCores,
          }),
          q({
            name: 'host_cpu_by_role', resource: 'host-cpu', unit: 'cores', combine: 'sum',
            description: 'CPU of the experiment\'s containers on the API\'s nodes, by role: api, database, generator.',
            promql: [role('api', containers.api), role('database', containers.database, true), role('generator', engineOf(options) === 'loadlab' ? DRIVER_CONTAINER : containers.generator)].join(' or '),
          }),
        ];
      })();

  const eventLoop: CatalogQuery[] = [
    q({
      name: 'event_loop_utilisation', resource: 'event-loop', unit: 'ratio', combine: 'max',
      description: 'Event-loop utilisation of each replica (0..1).',
      promql: `sum by (${replica}) (${rate('loadlab_api_event_loop_active_seconds_total')})`,
    }),
    q({
      name: 'event_loop_lag_p99', resource: 'event-loop', unit: 'seconds', combine: 'max',
      description: 'Event-loop lag p99 of each replica.',
      promql: `max by (${replica}) (${m('nodejs_eventloop_lag_p99_seconds', notDriver)})`,
    }),
  ];

  const pool: CatalogQuery[] = [
    q({
      name: 'pool_waiting', resource: 'db-pool', unit: 'count', combine: 'sum',
      description: 'Callers waiting for a pool connection, all replicas.',
      promql: `sum(${m('loadlab_api_db_pool_waiting')})`,
    }),
    q({
      name: 'pool_acquire', resource: 'db-pool', unit: 'seconds', combine: 'sum', histogram: true,
      description: 'Time to get a pool connection, bucket rates.',
      promql: `sum by (le) (${rate('loadlab_api_db_pool_acquire_seconds_bucket')})`,
    }),
    q({
      name: 'pool_busy_fraction', resource: 'db-pool', unit: 'ratio', combine: 'max',
      description: 'Connections in use as a fraction of the pool size, each replica.',
      promql:
        `max by (${replica}) ((${m('loadlab_api_db_pool_connections')} - ${m('loadlab_api_db_pool_idle')}) / ` +
        `${m('loadlab_api_db_pool_max')})`,
    }),
  ];

  const hold = (metric: string) => `sum(${rate(`${metric}_sum`)}) / sum(${rate(`${metric}_count`)})`;
  const database: CatalogQuery[] = [
    q({
      // The API's query histogram includes the pool wait; subtracting the mean wait leaves the
      // time the database held the connection. That separates "slow database" (long hold, which
      // also makes the pool wait) from "pool too small" (short hold, long wait).
      name: 'db_hold_time', resource: 'database', unit: 'seconds', combine: 'max',
      description: 'Mean time a statement holds its connection: query duration minus the pool wait.',
      promql: `clamp_min((${hold('loadlab_api_db_query_duration_seconds')}) - (${hold('loadlab_api_db_pool_acquire_seconds')}), 0)`,
    }),
    q({
      name: 'db_query', resource: 'database', unit: 'seconds', combine: 'sum', histogram: true,
      description: 'Statement duration including the pool wait, bucket rates.',
      promql: `sum by (le) (${rate('loadlab_api_db_query_duration_seconds_bucket')})`,
    }),
    q({
      name: 'db_query_errors', resource: 'database', unit: 'rps', combine: 'sum',
      description: 'Statements that failed per second.',
      promql: `sum(${rate('loadlab_api_db_query_duration_seconds_count', 'outcome="error"')})`,
    }),
    q({
      name: 'db_connections_fraction', resource: 'database', unit: 'ratio', combine: 'max',
      description: 'Database backends as a fraction of max_connections (postgres_exporter).',
      promql: `sum(${m('pg_stat_database_numbackends')}) / max(${m('pg_settings_max_connections')})`,
    }),
    q({
      name: 'db_active', resource: 'database', unit: 'count', combine: 'sum',
      description: 'Backends running a statement.',
      promql: `sum(${m('pg_stat_activity_count', 'state="active"')})`,
    }),
    q({
      name: 'db_commits', resource: 'database', unit: 'rps', combine: 'sum',
      description: 'Transactions committed per second.',
      promql: `sum(${rate('pg_stat_database_xact_commit')})`,
    }),
    q({
      name: 'db_cache_hit', resource: 'database', unit: 'ratio', combine: 'max',
      description: 'Buffer cache hit ratio.',
      promql: `sum(${rate('pg_stat_database_blks_hit')}) / (sum(${rate('pg_stat_database_blks_hit')}) + sum(${rate('pg_stat_database_blks_read')}))`,
    }),
    q({
      // postgres_exporter counts locks held by mode, not lock waits; a rising count of exclusive
      // locks is the nearest sign of contention it offers.
      name: 'db_locks', resource: 'database', unit: 'count', combine: 'sum',
      description: 'Locks held, by mode (a proxy for contention: waits are not exported).',
      promql: `sum by (mode) (${m('pg_locks_count')})`,
    }),
    q({
      // Slow statements as postgres_exporter sees them: how long the oldest transaction still
      // running has been running (a statement holds a transaction while it runs).
      name: 'db_longest_active', resource: 'database', unit: 'seconds', combine: 'max',
      description: 'Age of the longest-running active transaction (postgres_exporter): slow statements.',
      promql: `max(${m('pg_stat_activity_max_tx_duration', 'state="active"')})`,
    }),
    q({
      name: 'db_lock_wait_fraction', resource: 'database', unit: 'ratio', combine: 'max',
      description: 'Active backends waiting for a lock, as a fraction of the active backends (loadlab\'s postgres_exporter query).',
      promql: `sum(${m('pg_loadlab_lock_waiting')}) / clamp_min(sum(${m('pg_stat_activity_count', 'state="active"')}), 1)`,
    }),
    q({
      name: 'db_longest_transaction', resource: 'database', unit: 'seconds', combine: 'max',
      description: 'Age of the oldest open transaction of a client, running or idle in transaction (loadlab\'s postgres_exporter query).',
      promql: `max(${m('pg_loadlab_longest_transaction_seconds')})`,
    }),
    q({
      name: 'db_deadlocks', resource: 'database', unit: 'rps', combine: 'sum',
      description: 'Deadlocks detected per second.',
      promql: `sum(${rate('pg_stat_database_deadlocks')})`,
    }),
    ...(options.source === 'local'
      ? []
      : [
          q({
            name: 'db_cpu', resource: 'database', unit: 'cores', combine: 'sum',
            description: 'Database container CPU.',
            promql: `sum(${rate('container_cpu_usage_seconds_total', `container="${containers.database}"`, true)})`,
          }),
          q({
            name: 'db_cpu_limit_fraction', resource: 'database', unit: 'ratio', combine: 'max',
            description: 'Database container CPU as a fraction of its limit.',
            promql:
              `sum(${rate('container_cpu_usage_seconds_total', `container="${containers.database}"`, true)}) / ` +
              `sum(${m('kube_pod_container_resource_limits', `container="${containers.database}",resource="cpu"`, true)})`,
          }),
        ]),
  ];

  const memory: CatalogQuery[] = [
    q({
      name: 'gc_time_fraction', resource: 'memory-gc', unit: 'ratio', combine: 'max',
      description: 'Fraction of wall time each replica spent in garbage collection.',
      promql: `sum by (${replica}) (${rate('nodejs_gc_duration_seconds_sum', notDriver)})`,
    }),
    q({
      name: 'heap_used', resource: 'memory-gc', unit: 'bytes', combine: 'max',
      description: 'V8 heap in use, each replica.',
      promql: `max by (${replica}) (${m('nodejs_heap_size_used_bytes', notDriver)})`,
    }),
    q({
      name: 'heap_used_fraction', resource: 'memory-gc', unit: 'ratio', combine: 'max',
      description: 'V8 heap in use as a fraction of the heap allocated, each replica.',
      promql: `max by (${replica}) (${m('nodejs_heap_size_used_bytes', notDriver)} / ${m('nodejs_heap_size_total_bytes', notDriver)})`,
    }),
    ...(options.source === 'kubernetes'
      ? [
          q({
            name: 'memory_limit_fraction', resource: 'memory-gc', unit: 'ratio', combine: 'max',
            description: 'API container working set as a fraction of its memory limit.',
            promql:
              `max by (pod) (${m('container_memory_working_set_bytes', `container="${containers.api}"`)}) / ` +
              `max by (pod) (${m('kube_pod_container_resource_limits', `container="${containers.api}",resource="memory"`)})`,
          }),
        ]
      : []),
  ];

  return [...api, ...generator, ...hostCpu, ...apiCpu, ...eventLoop, ...pool, ...database, ...memory];
}

/**
 * The rate window: at least four scrape intervals (so a rate always has samples, as Grafana's
 * $__rate_interval reasons) and at least one step (so consecutive points do not skip data).
 */
export function defaultRateWindowS(stepS: number, scrapeIntervalS: number): number {
  return Math.max(stepS, 4 * scrapeIntervalS);
}
