import { buildCatalog, type CatalogQuery, type Resource, type Unit } from './queries.js';
import { DASHBOARD_RESOURCE_SELECTOR, DASHBOARD_RUN_SELECTOR, DATABASE_METRICS_SELECTOR, DATABASE_RESOURCE_SELECTOR } from '../contract/names.js';

/*
 * The experiment overview dashboard, as data. Its panels are the analysis' own query catalog (the
 * Kubernetes flavour, with both load engines' generator queries: a run shows those of the engine
 * it ran on, the other row stays empty), so the dashboard shows exactly the signals the verdict
 * was reached from, under the same names; an overview row on top tells the story: fleet size,
 * offered vs achieved rate, latency percentiles, errors and the breaking point. The cdk8s dashboards chart provisions
 * it as a ConfigMap for kube-prometheus-stack's Grafana sidecar.
 *
 * Variables: namespace, experiment, run (what the operator's status link preselects, see
 * operator/grafana.ts), and `database`, a constant holding the matchers of the shared TimescaleDB's
 * postgres_exporter (the operator's DATABASE_METRICS_SELECTOR default).
 */

export const DASHBOARD_UID = 'loadlab-experiment';

/** The matchers the panels use, with the dashboard's variables in them. */
export const PANEL_SELECTORS = {
  run: DASHBOARD_RUN_SELECTOR,
  resources: DASHBOARD_RESOURCE_SELECTOR,
  database: '$database',
  databaseResources: '$database_pod',
} as const;

export interface GrafanaTarget {
  refId: string;
  expr: string;
  legendFormat: string;
  datasource: { type: 'prometheus'; uid: '${datasource}' };
}

export interface GrafanaPanel {
  id: number;
  type: 'timeseries' | 'stat' | 'row';
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: 'prometheus'; uid: '${datasource}' };
  targets?: GrafanaTarget[];
  fieldConfig?: { defaults: Record<string, unknown>; overrides: unknown[] };
  options?: Record<string, unknown>;
  collapsed?: boolean;
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  schemaVersion: number;
  editable: boolean;
  refresh: string;
  time: { from: string; to: string };
  timezone: string;
  templating: { list: Record<string, unknown>[] };
  panels: GrafanaPanel[];
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;

/** Query `index` of a panel (refIds A, B, ...). */
function target(expr: string, legendFormat: string, index: number): GrafanaTarget {
  return { refId: String.fromCharCode(65 + index), expr, legendFormat, datasource: DATASOURCE };
}

const UNITS: Record<Unit, string> = {
  rps: 'reqps',
  seconds: 's',
  ratio: 'percentunit',
  cores: 'short',
  count: 'short',
  bytes: 'bytes',
  devices: 'short',
};

const ROWS: { resource: Resource; title: string }[] = [
  { resource: 'traffic', title: 'Traffic: what the API served and the clients saw' },
  { resource: 'load-generator', title: 'Load generator (k6): did it keep up?' },
  { resource: 'host-cpu', title: 'Host CPU: the API\'s nodes, shared with everything on them' },
  { resource: 'api-cpu', title: 'API CPU' },
  { resource: 'event-loop', title: 'API event loop' },
  { resource: 'db-pool', title: 'Database connection pool' },
  { resource: 'database', title: 'Database (TimescaleDB, postgres_exporter)' },
  { resource: 'memory-gc', title: 'API memory and garbage collection' },
];

/** The device traffic's routes (login excluded: it is not part of the steady load). */
const DEVICE_ROUTE_MATCHER = 'route=~"/v1/(measurements|command)"';

/**
 * Counters of rare events have no series until the first one: drawn as 0 rather than "No data",
 * which would read as "not measured". (The analysis tells the two apart itself.)
 */
const ZERO_WHEN_ABSENT = new Set(['api_shed', 'db_query_errors', 'db_deadlocks', 'generator_dropped', 'generator_late']);

export function experimentDashboard(): GrafanaDashboard {
  const w = '$__rate_interval';
  const catalog = buildCatalog({
    selector: PANEL_SELECTORS.run,
    resourceSelector: PANEL_SELECTORS.resources,
    databaseSelector: PANEL_SELECTORS.database,
    databaseResourceSelector: PANEL_SELECTORS.databaseResources,
    source: 'kubernetes',
    engine: 'k6',
    rateWindowS: 60,
    rateWindow: w,
  });
  const driverCatalog = buildCatalog({ selector: PANEL_SELECTORS.run, source: 'kubernetes', engine: 'loadlab', rateWindowS: 60, rateWindow: w });
  const run = PANEL_SELECTORS.run;
  const panels: GrafanaPanel[] = [];
  let y = 0;
  let lastId = 0;
  const nextId = () => ++lastId;
  const row = (title: string) => {
    panels.push({ id: nextId(), type: 'row', title, gridPos: { x: 0, y, w: 24, h: 1 }, collapsed: false });
    y += 1;
  };
  let column = 0;
  const place = (width: number, height: number) => {
    if (column + width > 24) {
      column = 0;
      y += height;
    }
    const gridPos = { x: column, y, w: width, h: height };
    column += width;
    return gridPos;
  };
  const endRow = (height: number) => {
    if (column > 0) y += height;
    column = 0;
  };
  const targets = (...exprs: [expr: string, legend: string][]): GrafanaTarget[] => exprs.map(([expr, legend], index) => target(expr, legend, index));
  const timeseries = (title: string, description: string, unit: string, list: GrafanaTarget[], width = 8): GrafanaPanel => ({
    id: nextId(),
    type: 'timeseries',
    title,
    description,
    gridPos: place(width, 8),
    datasource: DATASOURCE,
    targets: list,
    fieldConfig: { defaults: { unit, custom: { lineWidth: 1, fillOpacity: 10, showPoints: 'never' } }, overrides: [] },
    options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi', sort: 'desc' } },
  });

  row('Overview: the fleet, the load, and where it broke');
  panels.push(
    timeseries(
      'Fleet size',
      'Devices the plan has now (every load-generator runner reports it, k6\'s or the loadlab driver\'s; the max across runners).',
      'short',
      targets([`max(k6_loadlab_fleet_devices{${run}})`, 'devices (k6)'], [`max(loadlab_driver_fleet_devices{${run}})`, 'devices (loadlab driver)']),
    ),
    timeseries(
      'Offered vs achieved rate',
      'Offered: iterations k6 started plus those it dropped, or the arrivals the loadlab driver\'s schedule asked for (an open model: what the fleet asked for). Achieved: device requests the API answered with 2xx.',
      'reqps',
      targets(
        [`sum(rate(k6_iterations_total{${run}}[${w}])) + (sum(rate(k6_dropped_iterations_total{${run}}[${w}])) or vector(0))`, 'offered (k6)'],
        [`sum(rate(loadlab_driver_requests_offered_total{${run},endpoint!="login"}[${w}]))`, 'offered (loadlab driver)'],
        [`sum(rate(loadlab_api_http_request_duration_seconds_count{${run},${DEVICE_ROUTE_MATCHER},status=~"2.."}[${w}]))`, 'achieved (API, 2xx)'],
      ),
    ),
    timeseries(
      'Latency percentiles (server, device routes)',
      'From the API\'s request-duration histogram; the SLO is judged on the client\'s view when k6 reports the percentile (Traffic row).',
      's',
      targets(
        ...([0.5, 0.95, 0.99] as const).map((q): [string, string] => [
          `histogram_quantile(${q}, sum by (le) (rate(loadlab_api_http_request_duration_seconds_bucket{${run},${DEVICE_ROUTE_MATCHER}}[${w}])))`,
          `p${q * 100}`,
        ]),
      ),
    ),
  );
  endRow(8);
  panels.push(
    timeseries(
      'Error rate',
      'Failed device requests (4xx, 5xx) as a fraction of all, as the API counted them.',
      'percentunit',
      targets([
        `(sum(rate(loadlab_api_http_request_duration_seconds_count{${run},${DEVICE_ROUTE_MATCHER},status=~"[45].."}[${w}])) or vector(0)) / sum(rate(loadlab_api_http_request_duration_seconds_count{${run},${DEVICE_ROUTE_MATCHER}}[${w}]))`,
        'errors',
      ]),
    ),
    {
      id: nextId(),
      type: 'stat',
      title: 'Breaking point',
      description: 'The fleet size and served rate at which the run first broke its SLO, as the operator wrote them into the status (empty: it held, or it is not analysed yet).',
      gridPos: place(8, 8),
      datasource: DATASOURCE,
      targets: targets(
        [`max(loadlab_experiment_breaking_point_devices{experiment="$namespace/$experiment",run="$run"})`, 'devices'],
        [`max(loadlab_experiment_breaking_point_rps{experiment="$namespace/$experiment",run="$run"})`, 'req/s served'],
      ),
      fieldConfig: { defaults: { unit: 'short', noValue: 'held (or not analysed yet)' }, overrides: [] },
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, textMode: 'value_and_name', colorMode: 'value' },
    },
    timeseries('Requests in flight (API)', 'Concurrency inside the API: rises first when something downstream slows.', 'short', targets([`sum(loadlab_api_http_requests_in_flight{${run}})`, 'in flight'])),
  );
  endRow(8);

  for (const { resource, title } of ROWS) {
    const queries = catalog.filter((query) => query.resource === resource);
    if (queries.length === 0) continue;
    row(title);
    for (const query of queries) panels.push(catalogPanel(query, timeseries));
    endRow(8);
    if (resource === 'load-generator') {
      // The loadlab engine's generator: the driver's own series, what the analysis reads of it.
      row('Load generator (the loadlab driver): did it keep up?');
      for (const query of driverCatalog.filter((entry) => entry.name.startsWith('generator_'))) panels.push(catalogPanel(query, timeseries));
      endRow(8);
    }
  }

  return {
    uid: DASHBOARD_UID,
    title: 'loadlab: experiment',
    description: 'One LoadExperiment run: the fleet, the load, the latency and errors, every saturation signal the analysis judges, and the breaking point.',
    tags: ['loadlab'],
    schemaVersion: 39,
    editable: true,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    timezone: 'browser',
    templating: { list: variables() },
    panels,
  };
}

function catalogPanel(query: CatalogQuery, timeseries: (title: string, description: string, unit: string, list: GrafanaTarget[]) => GrafanaPanel): GrafanaPanel {
  const title = query.name.replace(/_/g, ' ');
  const description = `${query.description} (analysis query "${query.name}")`;
  if (query.histogram) {
    const grouping = /sum by \(([^)]*)\)/.exec(query.promql)?.[1]?.split(',').map((label) => label.trim()).filter((label) => label !== 'le') ?? [];
    const legend = grouping.map((label) => `{{${label}}}`).join(' ');
    return timeseries(
      title,
      description,
      UNITS[query.unit],
      [0.5, 0.95, 0.99].map((q, index) => target(`histogram_quantile(${q}, ${query.promql})`, `p${q * 100}${legend ? ` ${legend}` : ''}`, index)),
    );
  }
  const expr = ZERO_WHEN_ABSENT.has(query.name) ? `${query.promql} or vector(0)` : query.promql;
  return timeseries(title, description, UNITS[query.unit], [target(expr, '__auto', 0)]);
}

function variables(): Record<string, unknown>[] {
  const query = (name: string, label: string, expr: string, extra: Record<string, unknown> = {}) => ({
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: { query: expr, refId: `${name}-variable` },
    definition: expr,
    refresh: 2,
    sort: 1,
    includeAll: false,
    multi: false,
    ...extra,
  });
  return [
    { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
    query('namespace', 'Namespace', 'label_values(loadlab_api_http_requests_in_flight, namespace)'),
    // The experiment label is "<namespace>/<name>": offer the names in the chosen namespace.
    query('experiment', 'Experiment', 'label_values(loadlab_api_http_requests_in_flight{namespace="$namespace"}, experiment)', { regex: '/^[^/]+\\/(.+)$/' }),
    query('run', 'Run', 'label_values(loadlab_api_http_requests_in_flight{experiment="$namespace/$experiment"}, run)', { sort: 2 }),
    { name: 'database', label: 'Database exporter matchers', type: 'constant', query: DATABASE_METRICS_SELECTOR, hide: 2 },
    { name: 'database_pod', label: 'Database pod matchers', type: 'constant', query: DATABASE_RESOURCE_SELECTOR, hide: 2 },
  ];
}

/** Every PromQL the dashboard runs (panels and variables), for tests and checks. */
export function dashboardQueries(dashboard: GrafanaDashboard): { panel: string; expr: string }[] {
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));
}

/** A query with the dashboard's variables replaced, as Grafana would send it. */
export function interpolate(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(/\$(__rate_interval|[a-z][a-z_]*)\b/g, (whole, name: string) => values[name] ?? whole);
}
