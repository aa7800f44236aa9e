import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { EXPERIMENT_RELABELINGS, LOAD_GENERATOR_RELABELINGS } from '../src/charts/monitoring.js';

/*
 * The API and load-generator PodMonitors' relabelling on a REAL Prometheus. Kubernetes service discovery cannot run
 * here (no kubelet, no pods), so the targets are static ones carrying the __meta_kubernetes_*
 * labels discovery would give an API pod; the PodMonitor's relabelings are written as the
 * relabel_configs prometheus-operator generates from them (its field names in snake_case). What is
 * not covered: prometheus-operator's own rendering of the PodMonitor.
 */

const SNAKE: Record<string, string> = { sourceLabels: 'source_labels', targetLabel: 'target_label', separator: 'separator', regex: 'regex', action: 'action', replacement: 'replacement' };

function relabelConfigs(relabelings: readonly Record<string, unknown>[]) {
  return relabelings.map((rule) => Object.fromEntries(Object.entries(rule).map(([key, value]) => [SNAKE[key] ?? assert.fail(`unmapped field ${key}`), value])));
}

function metricsServer(text = '# TYPE loadlab_api_http_requests_in_flight gauge\nloadlab_api_http_requests_in_flight 1\n'): Promise<{ server: Server; port: number }> {
  const server = createServer((_request, response) => response.end(text));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

describe('the API and load-generator PodMonitors\' relabelling, applied by a real Prometheus (static targets stand in for pod discovery)', () => {
  let dir: string;
  let prometheus: ChildProcess;
  let url: string;
  const servers: Server[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'loadlab-relabel-'));
    const labelled = await metricsServer();
    const unlabelled = await metricsServer();
    const driver = await metricsServer('# TYPE loadlab_driver_fleet_devices gauge\nloadlab_driver_fleet_devices 500\n# TYPE loadlab_driver_requests_sent_total counter\nloadlab_driver_requests_sent_total{endpoint="measurements"} 42\n');
    servers.push(labelled.server, unlabelled.server, driver.server);
    const free = await metricsServer();
    const port = free.port;
    await new Promise<void>((resolve) => free.server.close(() => resolve()));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', scrape_timeout: '900ms' },
        scrape_configs: [
          {
            job_name: 'api-pods',
            static_configs: [
              {
                targets: [`127.0.0.1:${labelled.port}`],
                labels: { __meta_kubernetes_namespace: 'lab', __meta_kubernetes_pod_label_loadlab_dev_experiment: 'seed-20k', __meta_kubernetes_pod_label_loadlab_dev_run: 'r2-abcdef', pod: 'seed-20k-api-1' },
              },
              // A pod without loadlab's labels (another app in the namespace): no experiment, no run.
              { targets: [`127.0.0.1:${unlabelled.port}`], labels: { __meta_kubernetes_namespace: 'lab', pod: 'other-1' } },
            ],
            relabel_configs: relabelConfigs(EXPERIMENT_RELABELINGS),
          },
          {
            // As prometheus-operator writes it: its own job label first, the PodMonitor's relabelings after.
            job_name: 'podMonitor/loadlab-system/loadlab-load-generator/0',
            static_configs: [
              {
                targets: [`127.0.0.1:${driver.port}`],
                // prometheus-operator labels every target with its endpoint (the port's name).
                labels: { __meta_kubernetes_namespace: 'lab', __meta_kubernetes_pod_label_loadlab_dev_experiment: 'seed-20k', __meta_kubernetes_pod_label_loadlab_dev_run: 'r2-abcdef-s3', pod: 'seed-20k-r2-abcdef-s3-driver-1-x7k2p', endpoint: 'metrics' },
              },
            ],
            relabel_configs: [{ target_label: 'job', replacement: 'loadlab-system/loadlab-load-generator' }, ...relabelConfigs(LOAD_GENERATOR_RELABELINGS)],
          },
        ],
      }),
    );
    const binary = spawnSync('bash', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).stdout.trim();
    assert.ok(binary, 'prometheus is installed (npm run setup)');
    prometheus = spawn(binary, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: 'ignore' });
    url = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    prometheus?.kill('SIGKILL');
    for (const server of servers) server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('labels an API pod experiment="<namespace>/<name>", run="<run>", and leaves other pods without them', async () => {
    const deadline = Date.now() + 30_000;
    let series: { metric: Record<string, string> }[] = [];
    while (Date.now() < deadline) {
      try {
        const body = (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent('loadlab_api_http_requests_in_flight')}`)).json()) as { data?: { result: { metric: Record<string, string> }[] } };
        series = body.data?.result ?? [];
        if (series.length === 2) break;
      } catch {
        // not up yet
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const byPod = new Map(series.map((s) => [s.metric.pod, s.metric]));
    assert.equal(byPod.get('seed-20k-api-1')?.experiment, 'lab/seed-20k');
    assert.equal(byPod.get('seed-20k-api-1')?.run, 'r2-abcdef');
    assert.equal(byPod.get('other-1')?.experiment, undefined);
    assert.equal(byPod.get('other-1')?.run, undefined);
    assert.ok(![...byPod.values()].some((labels) => Object.keys(labels).some((name) => name.startsWith('__') && name !== '__name__')), 'discovery labels are dropped');
  });

  it('labels a driver pod experiment="<namespace>/<name>", run="<run>" and job="driver", as local mode does, for the analysis\' driver queries', async () => {
    const deadline = Date.now() + 30_000;
    let series: { metric: Record<string, string> }[] = [];
    while (Date.now() < deadline && series.length === 0) {
      try {
        const body = (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent('loadlab_driver_fleet_devices{job="driver",experiment="lab/seed-20k",run=~"r2-abcdef(-s[0-9]+)?"}')}`)).json()) as { data?: { result: { metric: Record<string, string> }[] } };
        series = body.data?.result ?? [];
      } catch {
        // not up yet
      }
      if (series.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal(series.length, 1, 'the driver\'s series, found by the analysis\' selector and job="driver"');
    assert.equal(series[0]!.metric.run, 'r2-abcdef-s3');
    assert.equal(series[0]!.metric.pod, 'seed-20k-r2-abcdef-s3-driver-1-x7k2p');
    const sent = (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent('loadlab_driver_requests_sent_total{job="driver"}')}`)).json()) as { data: { result: { metric: Record<string, string> }[] } };
    assert.equal(sent.data.result[0]?.metric.endpoint, 'measurements', 'the driver\'s own endpoint label, not the target\'s port name');
    assert.equal(sent.data.result[0]?.metric.exported_endpoint, undefined);
  });
});
