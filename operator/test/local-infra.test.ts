import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareDatabase } from '../src/dataset/prepare.js';
import { startExporters } from '../src/local/exporters.js';
import { freePort, PostgresCluster, postgresBinDir } from '@loadlab/sandbox/postgres';
import { runApiMigrations } from './support/api-migrations.js';
import { experimentWith } from './support/fixtures.js';
import { LocalPrometheus, prometheusConfig } from '../src/local/prometheus.js';
import { ManagedProcess } from '../src/local/processes.js';
import { ProcessCpuExporter } from '../src/local/process-cpu.js';
import { listeningPid } from '@loadlab/sandbox/procstat';
import { execFileSync, spawn } from 'node:child_process';

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

  it('writes a job\'s own labels, file_sd file and relabelling when it has them, and keeps a job whose targets are all discovered', () => {
    const config = parse(
      prometheusConfig({
        jobs: [
          { job: 'db', targets: ['127.0.0.1:1'], labels: { job: 'timescaledb' } },
          { job: 'pods', targets: [], targetsFile: '/tmp/pods.json', relabelConfigs: [{ source_labels: ['__meta_x'], target_label: 'x' }], metricRelabelConfigs: [{ action: 'labeldrop', regex: 'y' }] },
        ],
        labels: { experiment: 'default/x' },
        scrapeIntervalS: 2,
      }),
    ) as { scrape_configs: Record<string, unknown>[] };
    assert.deepEqual(config.scrape_configs, [
      { job_name: 'db', static_configs: [{ targets: ['127.0.0.1:1'], labels: { experiment: 'default/x', job: 'timescaledb' } }] },
      { job_name: 'pods', file_sd_configs: [{ files: ['/tmp/pods.json'] }], relabel_configs: [{ source_labels: ['__meta_x'], target_label: 'x' }], metric_relabel_configs: [{ action: 'labeldrop', regex: 'y' }] },
    ]);
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

  it('finds the PostgreSQL serving a loopback port, and counts its backends\' CPU under "database" (real postmaster, /proc)', async () => {
    const postmaster = listeningPid(pg.port);
    assert.ok(postmaster !== undefined, 'the postmaster of the test\'s cluster is found by its port');
    assert.match(readFileSync(`/proc/${postmaster}/cmdline`, 'utf8'), /postgres/);
    assert.equal(listeningPid(await freePort()), undefined, 'nothing listens on a free port');

    const spinner = spawn(process.execPath, ['-e', 'const end = Date.now() + 20_000; while (Date.now() < end);']);
    const exporter = await ProcessCpuExporter.start({
      database: { pids: () => [postmaster!] },
      api: { pids: () => [spinner.pid!] },
      generator: { pids: () => [process.pid], ownOnly: true },
    });
    try {
      const read = async () => {
        const text = await (await fetch(`http://${exporter.address}/metrics`)).text();
        return Object.fromEntries([...text.matchAll(/^loadlab_local_cpu_seconds_total\{role="(\w+)"\} ([\d.e+-]+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
      };
      const before = await read();
      const startedAt = performance.now();
      // Work in a backend: three million numbers summed, in its own connection (a backend that exits is counted
      // through the postmaster's reaped-children time).
      execFileSync(join(postgresBinDir(), 'psql'), ['-d', pg.url, '-Atc', 'SELECT sum(i) FROM generate_series(1, 3000000) i']);
      await sleep(500);
      const afterWork = await read();
      const elapsedS = (performance.now() - startedAt) / 1000;
      assert.deepEqual(Object.keys(afterWork).sort(), ['api', 'database', 'generator'], 'a series per role given, none for monitoring');
      const spun = afterWork.api! - before.api!;
      assert.ok(spun >= 0.4 * elapsedS && spun <= elapsedS + 0.1, `the spinning "api" process used most of a core: ${spun.toFixed(2)} s of CPU in ${elapsedS.toFixed(2)} s`);
      assert.ok(afterWork.database! - before.database! >= 0.05, `the backend's query counts under database: ${afterWork.database! - before.database!} s`);
      const again = await read();
      spinner.kill('SIGKILL');
      await new Promise((resolve) => spinner.once('exit', resolve));
      const gone = await read();
      for (const role of Object.keys(again)) assert.ok(gone[role]! >= again[role]!, `${role} never goes down (the spinner is gone)`);
    } finally {
      spinner.kill();
      await exporter.stop();
    }
  });

  it('prepares the database: registers the fleet, preloads history with its /stats rollups, and a reset run starts empty', async () => {
    await runApiMigrations(pg.url);
    const spec = (mode: string, preloadDays: number) => ({
      fleet: { devices: 50, reportInterval: '1h', pollInterval: '30s' },
      load: { stages: [{ devices: 50, duration: '10s' }] },
      database: { mode, preloadDays },
    });
    const lines: string[] = [];
    await prepareDatabase(pg.url, experimentWith(spec('reset', 2), 'preload'), (line) => lines.push(line));
    const count = async (sql: string) => Number(await pg.psql(sql));
    assert.equal(await count('SELECT count(*) FROM device'), 50);
    assert.equal(await count('SELECT min(id) + max(id) FROM device'), 51, 'device i has id i + 1');
    // One reading per device per hour over two days.
    assert.equal(await count('SELECT count(*) FROM measurement'), 50 * 48);
    assert.equal(await count('SELECT sum(measurements) FROM measurement_hourly'), 50 * 48, 'the hourly rollup agrees with the table');
    assert.equal(await count('SELECT count(*) FROM device_latest'), 50, 'every device has its latest reading');
    assert.equal(await count('SELECT count(*) FROM device_latest l JOIN (SELECT device_id, max(device_time) t FROM measurement GROUP BY 1) m ON m.device_id = l.device_id AND m.t = l.device_time'), 50);
    assert.ok(lines.some((line) => /preloaded day 2\/2/.test(line)), lines.join('\n'));

    // keep: what is there stays (and registering again is idempotent).
    await prepareDatabase(pg.url, experimentWith(spec('keep', 0), 'keep'), () => undefined);
    assert.equal(await count('SELECT count(*) FROM measurement'), 50 * 48);
    assert.equal(await count('SELECT count(*) FROM device'), 50);
    // reset: a run starts from an empty database (the fleet registered again).
    await pg.psql('INSERT INTO command (device_id, charge_on) VALUES (1, true)');
    await prepareDatabase(pg.url, experimentWith(spec('reset', 0), 'reset'), () => undefined);
    for (const table of ['measurement', 'measurement_hourly', 'device_latest', 'command']) assert.equal(await count(`SELECT count(*) FROM ${table}`), 0, table);
    assert.equal(await count('SELECT count(*) FROM device'), 50);
  });

  it('a preload stops with its signal: the statement in flight ends on the server too, nothing keeps writing', async () => {
    // 20,000 devices every second over a day: 1.7 billion rows, far longer than this test waits.
    const experiment = experimentWith({ fleet: { devices: 20_000, reportInterval: '1s' }, load: { stages: [{ devices: 10, duration: '10s' }] }, database: { mode: 'reset', preloadDays: 1 } }, 'cancelled');
    const abort = new AbortController();
    const started = performance.now();
    const prepared = prepareDatabase(pg.url, experiment, () => undefined, { signal: abort.signal, statementTimeoutMs: 600_000 });
    const writing = async () => Number(await pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO measurement%' AND state = 'active'"));
    for (let i = 0; i < 100 && (await writing()) === 0; i++) await sleep(100);
    assert.equal(await writing(), 1, 'the preload is writing');
    abort.abort();
    await assert.rejects(prepared);
    const rejectedS = (performance.now() - started) / 1000;
    // client_connection_check_interval is 5 s: the server ends the statement within that of the close.
    let waited = 0;
    while ((await writing()) > 0 && waited < 15_000) {
      await sleep(250);
      waited += 250;
    }
    assert.equal(await writing(), 0, 'the INSERT still runs on the server');
    console.log(`[figures] cancelled preload: rejected ${rejectedS.toFixed(1)} s after it started, its statement gone from the server ${(waited / 1000).toFixed(2)} s later`);
    await assert.rejects(prepareDatabase(pg.url, experiment, () => undefined, { signal: AbortSignal.abort() }), 'an aborted signal starts nothing');
  });

  it('finds the newest PostgreSQL major version installed, and leaves no temp dir when a cluster cannot start', async () => {
    const root = await mkdtemp(join(tmpdir(), 'loadlab-pgroot-test-'));
    try {
      for (const version of ['9', '15', '18']) {
        await mkdir(join(root, version, 'bin'), { recursive: true });
        await writeFile(join(root, version, 'bin', 'initdb'), '');
      }
      await mkdir(join(root, '19', 'bin'), { recursive: true }); // no initdb: not a server install
      const saved = process.env.PG_BIN;
      delete process.env.PG_BIN;
      try {
        assert.equal(postgresBinDir(root), join(root, '18', 'bin'));
        const pgTemps = () => new Set(readdirSync(tmpdir()).filter((name) => name.startsWith('loadlab-pg-')));
        const before = pgTemps();
        process.env.PG_BIN = join(root, '18', 'bin'); // an empty initdb that cannot run
        await assert.rejects(PostgresCluster.start());
        assert.deepEqual([...pgTemps()].filter((name) => !before.has(name)), [], 'temp dirs left behind');
      } finally {
        if (saved === undefined) delete process.env.PG_BIN;
        else process.env.PG_BIN = saved;
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
