import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Bottleneck } from '../src/analysis/index.js';
import { PostgresCluster } from '@loadlab/sandbox/postgres';
import { runLocal } from '../src/local/local-run.js';
import { allowedCpus } from '../src/local/cpu-affinity.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Client as PgClient } from 'pg';

/**
 * Bottlenecks injected through the API's knobs (and the generator's concurrency), run for real in
 * local mode: real API processes, PostgreSQL, Prometheus scraping them, the local driver. The
 * verdict is reached from the metrics alone. Each run: a light hold, then a heavy one.
 */
const cases: { name: string; spec: string; expected: Bottleneck[]; why: string; breaksAt?: { devices: number; lastGood: number; stepsRun: number }; killPrometheusAtFirstJudgement?: true }[] = [
  {
    name: 'a DB pool that is too small, found by a breaking-point search',
    // A search (20, 300, 580 devices; a step is driven, then judged from Prometheus before the
    // next) rather than stages, so the search path runs for real too: it must stop at 300.
    spec: `  fleet: { devices: 580, reportInterval: 2s, pollInterval: 2s }
  load:
    search: { startDevices: 20, step: { devices: 280 }, maxDevices: 580, rampUp: 4s, hold: 24s }
  target: { dbPoolSize: 1, queryDelayMs: 10, env: [{ name: COMMAND_INDEX, value: "false" }] }
  slo: { latencyPercentile: 95, latencyThreshold: 250ms, maxErrorRate: 0.01 }
  analysis: { thresholds: { dbHoldMeanS: 0.1 } }
`,
    // Every poll a statement (the API's poll index off), as in the bottleneck-db-pool example.
    // The pool is what is under test. 10 ms of pg_sleep per statement holds a connection 10 ms on an
    // idle machine, but over the database threshold's default (20 ms) on a busy one, which would
    // then (rightly) call the database saturated first; 100 ms leaves the pool to be judged.
    expected: ['db-pool'],
    breaksAt: { devices: 300, lastGood: 20, stepsRun: 2 },
    // The run's own Prometheus is SIGKILLed as the first step's judgement begins: local mode
    // starts it again on its data and the search goes on.
    killPrometheusAtFirstJudgement: true,
    why: 'one connection held 10 ms more per query serves ~90 queries/s; 300 devices every 2 s ask for 150 polls/s alone',
  },
  {
    name: 'an API that is CPU-bound',
    spec: `  fleet: { devices: 300, reportInterval: 2s, pollInterval: 2s }
  load:
    stages:
      - { devices: 20, duration: 2s }
      - { devices: 20, duration: 24s, shape: hold }
      - { devices: 300, duration: 4s }
      - { devices: 300, duration: 24s, shape: hold }
  target: { cpuCostMs: 8 }
  slo: { latencyPercentile: 95, latencyThreshold: 200ms, maxErrorRate: 0.01 }
`,
    // A Node.js process computes on its one event-loop thread. It shares the 2 cores with
    // PostgreSQL, Prometheus and the driver, so it may get less than a core; its demand (CPU plus the
    // time its loop waited for a CPU) is still over a core, and the API itself is what fills the
    // machine: api-cpu, not the host.
    expected: ['api-cpu'],
    why: '300 devices every 2 s, two requests each: 300 req/s x 8 ms = 2.4 cores of work for a 1-core process',
  },
  {
    name: 'a starved load generator',
    spec: `  fleet: { devices: 1000, reportInterval: 2s, pollInterval: 2s }
  load:
    stages:
      - { devices: 1000, duration: 2s }
      - { devices: 1000, duration: 24s, shape: hold }
  generator: { maxVUs: 1 }
  target: { queryDelayMs: 5 }
  slo: { latencyPercentile: 95, latencyThreshold: 250ms, maxErrorRate: 0.01 }
`,
    expected: ['load-generator'],
    // By construction, whatever the machine's speed: every statement waits 5 ms in PostgreSQL
    // (pg_sleep on the same connection), so one request in flight gets at most 200 answers/s. That is
    // a quarter of the 1,000 req/s offered, while each answer stays far under the SLO (250 ms) and
    // under the database's hold threshold (20 ms).
    why: 'one request in flight at a time, each held at least 5 ms by the database: at most 200 req/s of the 1,000 offered, each answered promptly',
  },
];

describe('bottlenecks injected through the knobs, judged from real metrics (local mode end to end)', () => {
  let dir: string;
  let pg: PostgresCluster;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loadlab-bottlenecks-'));
    pg = await PostgresCluster.start();
  });
  after(async () => {
    await pg?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  for (const testCase of cases) {
    it(`${testCase.name}: ${testCase.expected.join(' or ')} (${testCase.why})`, async () => {
      const name = `bottleneck-${cases.indexOf(testCase)}`;
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, `apiVersion: loadlab.dev/v1alpha1\nkind: LoadExperiment\nmetadata:\n  name: ${name}\nspec:\n${testCase.spec}`);
      let output = '';
      let judgements = 0;
      const result = await runLocal({
        file, outDir: join(dir, name), databaseUrl: pg.url, out: { write: (text: string) => (output += text) },
        ...(testCase.killPrometheusAtFirstJudgement ? { beforeAnalysis: async ({ prometheusPid }) => void (judgements++ === 0 && process.kill(prometheusPid!, 'SIGKILL')) } : {}),
      });
      const { verdict, breakingPoint } = result.analysis;
      if (testCase.killPrometheusAtFirstJudgement) assert.match(output, /prometheus: it exited .*; starting it again on its data/);
      assert.equal(breakingPoint.status, 'broke', verdict.text);
      assert.ok(testCase.expected.includes(verdict.bottleneck), `expected ${testCase.expected.join(' or ')}, got ${verdict.bottleneck}: ${verdict.text}`);
      assert.ok(verdict.evidence.length > 0, 'the verdict carries its evidence');
      if (testCase.breaksAt) {
        assert.equal(breakingPoint.breaking?.devices, testCase.breaksAt.devices, 'the breaking step');
        assert.equal(breakingPoint.lastGood?.devices, testCase.breaksAt.lastGood, 'the last good step');
        assert.equal(result.driver.length, testCase.breaksAt.stepsRun, 'the search stopped after the step that broke');
      }
      console.log(`${testCase.name}: ${verdict.text}`);
    });
  }

  // The database verdict in a real run: a slow database by lock contention (the synthetic runs
  // and the db-pool search above judge hold time from pg_sleep; a run that only slowed every
  // statement would add a minute of CI for the same verdict).
  it('a transaction that keeps a table ingest writes to locked: database, with lock waits as the evidence (not only hold time)', async () => {
    const name = 'bottleneck-locks';
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `apiVersion: loadlab.dev/v1alpha1\nkind: LoadExperiment\nmetadata:\n  name: ${name}\nspec:
  fleet: { devices: 100, reportInterval: 2s, pollInterval: 2s }
  load:
    stages:
      - { devices: 100, duration: 2s }
      - { devices: 100, duration: 24s, shape: hold }
  slo: { latencyPercentile: 95, latencyThreshold: 250ms, maxErrorRate: 0.01 }
`);
    // Someone else's transaction: the hourly rollup every ingest statement updates, locked
    // against writers for 1.5 s at a time with 0.2 s gaps, for as long as the run lasts (60 s at most).
    const locker = new PgClient({ connectionString: pg.url, application_name: 'lock-holder' });
    await locker.connect();
    let stop = false;
    const holding = (async () => {
      for (const deadline = Date.now() + 60_000; !stop && Date.now() < deadline; ) {
        const exists = (await locker.query("SELECT to_regclass('measurement_hourly') IS NOT NULL AS ok")).rows[0].ok as boolean;
        if (exists) {
          await locker.query('BEGIN');
          await locker.query('LOCK TABLE measurement_hourly IN EXCLUSIVE MODE');
          await locker.query('SELECT pg_sleep(1.5)');
          await locker.query('COMMIT');
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const result = await runLocal({ file, outDir: join(dir, name), databaseUrl: pg.url, out: { write: () => true } });
      const { verdict, breakingPoint } = result.analysis;
      assert.equal(breakingPoint.status, 'broke', verdict.text);
      assert.equal(verdict.bottleneck, 'database', verdict.text);
      const locks = verdict.evidence.find((e) => e.measure === 'db_lock_wait_fraction.mean');
      assert.ok(locks?.crossed, `lock waits are evidence over their threshold: ${JSON.stringify(locks)}; ${verdict.text}`);
      console.log(`lock contention: ${verdict.text}`);
    } finally {
      stop = true;
      await holding.catch(() => undefined);
      await locker.end();
    }
  });
});

/**
 * The host's CPU as a resource, for real: the same API load (cpuCostMs 1 at 300 req/s: about a
 * core of CPU time, the API's own work included) on a machine whose CPUs something outside the experiment keeps busy (spinning shell
 * loops, 75 s at most, each in its own session: with the scheduler's autogroups on, as here, a
 * session is what gets a fair share). Shared with four, the API does not get the CPU it asks for
 * and the verdict is host-cpu, naming who took it; with a core of its own (`--api-cpus`, a spinner
 * on the other CPU) the same load is not blamed on the host.
 */
describe('the host CPU as a resource: a noisy neighbour on the machine (local mode end to end)', () => {
  let dir: string;
  let spinners: ChildProcess[] = [];
  const spin = (count: number, cpus?: string) => {
    const command = ['timeout', '75', 'sh', '-c', 'while :; do :; done'];
    spinners = Array.from({ length: count }, () =>
      spawn(cpus ? 'taskset' : command[0]!, cpus ? ['-c', cpus, ...command] : command.slice(1), { stdio: 'ignore', detached: true }));
  };
  const stopSpinners = () => {
    // The whole process group: SIGKILL to timeout itself would leave its shell loop spinning.
    for (const child of spinners) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spinners = [];
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loadlab-host-cpu-'));
  });
  after(async () => {
    stopSpinners();
    await rm(dir, { recursive: true, force: true });
  });
  const experiment = async (name: string) => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `apiVersion: loadlab.dev/v1alpha1\nkind: LoadExperiment\nmetadata:\n  name: ${name}\nspec:
  fleet: { devices: 300, reportInterval: 2s, pollInterval: 2s }
  load:
    stages:
      - { devices: 300, duration: 4s }
      - { devices: 300, duration: 24s, shape: hold }
  target: { cpuCostMs: 1 }
  slo: { latencyPercentile: 95, latencyThreshold: 200ms, maxErrorRate: 0.01 }
`);
    return file;
  };

  it('shared with four spinning processes: host-cpu, the API waiting for a CPU, "everything else" named as the taker', async () => {
    spin(4);
    try {
      const result = await runLocal({ file: await experiment('host-shared'), outDir: join(dir, 'shared'), out: { write: () => true } });
      const { verdict, breakingPoint, stages } = result.analysis;
      const at = stages[breakingPoint.breaking?.index ?? stages.length - 1]!;
      console.log(`shared: ${verdict.text}`);
      console.log(`  host busy ${at.measures['host_cpu_busy.mean']}, API wait ${at.measures['api_cpu_wait.mean']}, shares ${JSON.stringify(Object.fromEntries(Object.entries(at.measures).filter(([key]) => key.startsWith('host_cpu_share.'))))}`);
      assert.equal(breakingPoint.status, 'broke', verdict.text);
      assert.equal(verdict.bottleneck, 'host-cpu', verdict.text);
      assert.ok(at.measures['api_cpu_wait.mean']! >= 0.1, 'the API waited for a CPU');
      assert.ok(at.measures['host_cpu_share.other']! > at.measures['host_cpu_share.api']!, 'the spinners, outside the experiment, took more than the API');
      assert.ok(at.measures['host_cpu_share.database']! > 0, 'the database\'s CPU is measured');
      assert.match(verdict.text, /everything else [\d.]+ cores\), and everything else/);
      assert.ok(at.measures['api_cpu.mean']! < 0.7, `the API got well under the ~0.8 core it asked for: ${at.measures['api_cpu.mean']}`);
    } finally {
      stopSpinners();
    }
  });

  it('with a core of its own (--api-cpus, a spinner on the other CPU): not blamed on the host, the API does not wait', async () => {
    const ownCpus = () => readFileSync('/proc/self/status', 'utf8').match(/^Cpus_allowed_list:\s*(.+)$/m)![1];
    const cpusBefore = ownCpus();
    const [apiCpu, otherCpu] = allowedCpus();
    if (otherCpu === undefined) return assert.fail('this test needs two CPUs');
    spin(1, String(otherCpu));
    try {
      const result = await runLocal({ file: await experiment('host-own-core'), outDir: join(dir, 'own-core'), apiCpus: [apiCpu!], out: { write: () => true } });
      const { verdict, stages } = result.analysis;
      const last = stages.at(-1)!;
      console.log(`own core: ${verdict.text}`);
      console.log(`  host busy ${last.measures['host_cpu_busy.mean']}, API wait ${last.measures['api_cpu_wait.mean']}, API CPU ${last.measures['api_cpu.mean']}`);
      assert.notEqual(verdict.bottleneck, 'host-cpu', verdict.text);
      assert.ok(last.measures['api_cpu_wait.mean']! < 0.1, `the API's loop hardly waited: ${last.measures['api_cpu_wait.mean']}`);
      assert.ok(last.measures['host_cpu_busy.mean']! >= 0.8, 'the machine was busy all the same');
    } finally {
      stopSpinners();
    }
    assert.equal(ownCpus(), cpusBefore, 'this process (the driver) has its CPUs back');
  });
});
