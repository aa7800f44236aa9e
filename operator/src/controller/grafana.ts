/*
 * The link to a run's Grafana dashboard: the experiment and run preselected as template variables,
 * the time range the run's (with a minute either side so the ramp's edges are visible; "now" while
 * it runs). The dashboards themselves come from the cdk8s monitoring chart; their variables are
 * namespace, experiment and run.
 */

export interface GrafanaLinkInput {
  baseUrl: string;
  dashboard: string;
  namespace: string;
  experiment: string;
  runId: string;
  fromMs: number;
  /** Unset: the run goes on ("now"). */
  toMs?: number;
}

export const GRAFANA_MARGIN_MS = 60_000;

export function grafanaLink(input: GrafanaLinkInput): string {
  const url = new URL(`${input.baseUrl.replace(/\/+$/, '')}/d/${encodeURIComponent(input.dashboard)}/loadlab`);
  url.searchParams.set('orgId', '1');
  url.searchParams.set('var-namespace', input.namespace);
  url.searchParams.set('var-experiment', input.experiment);
  url.searchParams.set('var-run', input.runId);
  url.searchParams.set('from', String(Math.floor(input.fromMs - GRAFANA_MARGIN_MS)));
  url.searchParams.set('to', input.toMs === undefined ? 'now' : String(Math.ceil(input.toMs + GRAFANA_MARGIN_MS)));
  return url.toString();
}
