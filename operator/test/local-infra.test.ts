import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { startExporters } from '../src/local/exporters.js';
import { PostgresCluster } from '../src/local/postgres.js';
import { LocalPrometheus, prometheusConfig } from '../src/local/prometheus.js';
import { ManagedProcess } from '../src/local/processes.js';

describe('local mode infrastructure (real PostgreSQL, Prometheus and exporters)', () => {
  let pg: PostgresCluster;
  before(async () => {
    pg = await PostgresCluster.start();
  });
  after(async () => {
    await ManagedProcess.stopAll();
    await pg?.destroy();
  });

  it('generates one scrape job per kind of process, with the experiment labels on every target', () => {
    const config = parse(
      prometheusConfig({ jobs: [{ job: 'api', targets: ['127.0.0.1:1', '127.0.0.1:2'] }, { job: 'driver', targets: [] }], labels: { experiment: 'default/x', run: 'r1' }, scrapeIntervalS: 2 }),
    ) as { global: { scrape_interval: string }; scrape_configs: { job_name: string; static_configs: { targets: string[]; labels: Record<string, string> }[] }[] };
    assert.equal(config.global.scrape_interval, '2s');
    assert.deepEqual(config.scrape_configs.map((j) => j.job_name), ['api'], 'jobs without targets are left out');
    assert.deepEqual(config.scrape_configs[0]!.static_configs[0]!.labels, { experiment: 'default/x', run: 'r1' });
  });

  it('scrapes postgres_exporter and node_exporter, and leaves nothing behind when stopped', async () => {
    const exporters = await startExporters(pg.url, (line) => assert.fail(line));
    const prometheus = await LocalPrometheus.start({
      jobs: exporters.map((e) => ({ job: e.job, targets: [e.address] })),
      labels: { experiment: 'default/infra', run: 'test' },
      scrapeIntervalS: 1,
    });
    const query = async (q: string) =>
      ((await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    let up: Awaited<ReturnType<typeof query>> = [];
    for (let i = 0; i < 50 && up.length < 2; i++) {
      await sleep(200);
      up = await query('up{experiment="default/infra"} == 1');
    }
    assert.deepEqual(up.map((r) => r.metric.job).sort(), ['node', 'postgres']);
    assert.ok((await query('pg_up{experiment="default/infra"}')).some((r) => r.value[1] === '1'), 'postgres_exporter reaches the database');
    const pids = [prometheus.pid, ...exporters.map((e) => e.process.pid)];
    await prometheus.stop();
    await ManagedProcess.stopAll();
    for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `process ${pid} is gone`);
  });
});
