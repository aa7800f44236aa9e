import { DASHBOARD_UID, experimentDashboard } from '@loadlab/operator/dashboard';
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { add, COMMON_LABELS } from '../objects.js';
import { NAMESPACES } from '../settings.js';

/**
 * The Grafana dashboards as ConfigMaps carrying the label kube-prometheus-stack's Grafana sidecar
 * loads dashboards from (grafana_dashboard: "1"). The dashboard itself is data built from the
 * analysis' query catalog (operator/src/analysis/dashboard.ts).
 */
export class DashboardsChart extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    add(
      this,
      // kube-prometheus-stack's release namespace (helm creates it too; applying both is harmless).
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACES.monitoring, labels: { ...COMMON_LABELS } } },
      {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'loadlab-dashboards', namespace: NAMESPACES.monitoring, labels: { ...COMMON_LABELS, grafana_dashboard: '1' } },
      data: { [`${DASHBOARD_UID}.json`]: `${JSON.stringify(experimentDashboard(), null, 2)}\n` },
      },
    );
  }
}
