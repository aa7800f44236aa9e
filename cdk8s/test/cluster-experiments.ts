import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dashboardQueries, experimentDashboard, interpolate } from '@loadlab/operator/dashboard';
import { DATABASE_RESOURCE_SELECTOR, runSelector } from '@loadlab/operator/names';
import { loadExperimentSchema, type LoadExperiment } from '@loadlab/operator/schema';
import { arrivalCounts, buildTrafficPlan } from '@loadlab/operator/traffic';
import { parse } from 'yaml';
import { NAMESPACES } from '../src/settings.js';
import { figure, installLoadlab, root, startCluster, waitFor, type ClusterClient, type Condition, type List, type ObjectMeta, type PromSample } from './cluster-support.js';

/*
 * Experiments end to end on a real Kubernetes cluster (the local one-host cluster of
 * scripts/local-cluster/, loadlab installed by `scripts/cluster.sh install --provider=local`; run by
 * cluster.test.ts after the charts' tests, on the same cluster), on
 * the loadlab engine: the operator in-cluster provisions each experiment's API (a Deployment rolled
 * out by the Deployment controller, pods started by a kubelet from our image, its own schema and
 * role in the database), runs the load as driver Jobs (pods on the load node running `loadlab
 * drive`), analyses the run from the in-cluster Prometheus (which scrapes the API and the drivers
 * through the charts' PodMonitors) and writes the summary. Checked against what happened: the
 * driver pods' own counts, the rows PostgreSQL stored, the counters in Prometheus.
 *
 * Not here: k6 and k6-operator (AGPL; cluster.test.ts checks that the k6 engine writes its TestRun),
 * TimescaleDB (PostgreSQL 15 stands in), Grafana (its panels' queries are run on Prometheus as
 * Grafana would send them), more than one host (four nodes share this machine's two cores, so
 * the numbers measure a crowded machine, not the API).
 */

const SYSTEM = NAMESPACES.system;

/** The compiled `loadlab` command, run as a user would against this cluster's kubeconfig. */
function loadlabCli(args: string[], kubeconfig: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'operator', 'dist', 'src', 'cli', 'main.js'), ...args], { env: { ...process.env, KUBECONFIG: kubeconfig, PROMETHEUS_URL: '' }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
  });
}
const EXPERIMENTS = NAMESPACES.experiments;
const PHASES = ['Pending', 'Provisioning', 'Running', 'Analyzing', 'Succeeded'];

interface Summary {
  outcome?: string; rps?: number; p95Ms?: number; errorRate?: number; bottleneck?: string; verdict?: string; devicesAtBreak?: number;
  lastGood?: { devices: number }; steps?: { total: number; rows: unknown[][]; columns: string[] };
}
interface Checkpoint { unit: number; kind: string; name: string; uid?: string; startTime?: string; endTime?: string; outcome?: string }
interface Experiment {
  metadata: ObjectMeta & { generation?: number };
  spec: Record<string, unknown>;
  status?: {
    phase?: string; runId?: string; conditions?: Condition[]; summary?: Summary; timeline?: Checkpoint[]; databaseSchema?: string; startTime?: string; completionTime?: string;
    scaling?: { position: number; runs: { replicas: number; runId: string; loadStart?: string; loadEnd?: string; capacityRps?: number; saturated: boolean; bottleneck?: string }[]; fit?: Record<string, number>; notes?: string[] };
  };
}
interface Job { metadata: ObjectMeta; status: { conditions?: Condition[]; succeeded?: number; failed?: number } }

/** An example experiment from experiments/, on the loadlab engine, kept after it ends (to count what it stored). */
function example(file: string, name: string): Experiment {
  const object = parse(readFileSync(join(root, 'experiments', file), 'utf8')) as Experiment;
  object.metadata = { name, namespace: EXPERIMENTS };
  object.spec = { ...object.spec, generator: { ...(object.spec.generator as object | undefined), engine: 'loadlab', parallelism: 1 }, cleanup: 'never' };
  return object;
}

/** 20, then 40 devices, each reporting and polling every 2 s, for 30 s each: a search of two steps that both hold. */
const SEARCH: Experiment = {
  metadata: { name: 'lab-search', namespace: EXPERIMENTS },
  spec: {
    fleet: { devices: 40, reportInterval: '2s', pollInterval: '2s' },
    load: { search: { startDevices: 20, step: { devices: 20 }, maxDevices: 40, hold: '30s', rampUp: '5s' } },
    slo: { latencyPercentile: 95, latencyThreshold: '1s', maxErrorRate: 0.05 },
    generator: { engine: 'loadlab' },
    cleanup: 'never',
    timeout: '15m',
  },
};
const SMOKE = example('smoke.yaml', 'lab-smoke');
const DB_POOL = example('bottleneck-db-pool.yaml', 'lab-db-pool');
/** Held for a minute: edited, then deleted, while it runs. */
const EDITED: Experiment = {
  metadata: { name: 'lab-edit', namespace: EXPERIMENTS },
  spec: {
    fleet: { devices: 20, reportInterval: '2s', pollInterval: '2s' },
    load: { stages: [{ devices: 20, duration: '5s' }, { devices: 20, duration: '60s', shape: 'hold' }] },
    generator: { engine: 'loadlab' },
    timeout: '15m',
  },
};

/** A scaling study over 1, 2 and 3 API replicas, each a short hold: the operator scales the Deployment between the runs. */
const STUDY: Experiment = {
  metadata: { name: 'lab-study', namespace: EXPERIMENTS },
  spec: {
    fleet: { devices: 20, reportInterval: '2s', pollInterval: '2s' },
    load: { stages: [{ devices: 20, duration: '5s' }, { devices: 20, duration: '30s', shape: 'hold' }] },
    scaling: { replicas: [1, 2, 3] },
    generator: { engine: 'loadlab' },
    timeout: '5m',
  },
};

const manifest = (experiment: Experiment) => JSON.stringify({ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', ...experiment });
/** The operator's own traffic plan of an experiment: what its driver Jobs must send. */
const planOf = (experiment: Experiment) =>
  buildTrafficPlan(loadExperimentSchema.parse({ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', ...experiment }) as LoadExperiment);
const planned = (experiment: Experiment) => arrivalCounts(planOf(experiment));

/** What one driver pod reported on its last line (`loadlab drive: done: ...`). */
function driverReport(log: string) {
  const done = /loadlab drive: done: sent (\d+) \((\d+) measurements, (\d+) polls, (\d+) logins\); responses ([^;]*); (\d+) errors, (\d+) dropped/.exec(log);
  assert.ok(done, `the driver reported its run: ${log.slice(-2000)}`);
  const responses = Object.fromEntries(done[5]!.split(', ').map((entry) => entry.split(': ')).map(([code, count]) => [code!, Number(count)]));
  return { sent: Number(done[1]), measurements: Number(done[2]), polls: Number(done[3]), logins: Number(done[4]), responses, errors: Number(done[6]), dropped: Number(done[7]) };
}

/** Registered by cluster.test.ts after the charts' suite, on the same cluster. */
export function experimentsOnCluster(): void {
  describe('experiments on a real cluster: the loadlab engine end to end (scripts/local-cluster)', { timeout: 45 * 60_000 }, () => {
    let client: ClusterClient;
    const kubectl = (args: string[], options?: Parameters<ClusterClient['kubectl']>[1]) => client.kubectl(args, options);
    const get = (name: string) => client.json<Experiment>(['-n', EXPERIMENTS, 'get', 'loadexperiment', name]);
    const jobsOf = async (name: string) => (await client.json<List<Job>>(['-n', EXPERIMENTS, 'get', 'jobs', '-l', `loadlab.dev/experiment=${name}`])).items;
    const psql = async (sql: string) => (await client.exec(SYSTEM, 'timescaledb-0', 'timescaledb', ['psql', '-U', 'postgres', '-d', 'loadlab', '-tAc', sql])).trim();

    /** Every phase each experiment went through, as seen by polling once a second, with when it was first seen. */
    const seen = new Map<string, { phase: string; at: number }[]>();
    let watching = true;
    let watcher: Promise<void> = Promise.resolve();
    const pollPhases = async () => {
      try {
        for (const item of (await client.json<List<Experiment>>(['-n', EXPERIMENTS, 'get', 'loadexperiments'])).items) {
          const phase = item.status?.phase ?? 'Pending';
          const list = seen.get(item.metadata.name) ?? [];
          if (list.at(-1)?.phase !== phase) list.push({ phase, at: Date.now() });
          seen.set(item.metadata.name, list);
        }
      } catch {
        // a refused call while the API server is busy: the next poll sees the phase
      }
    };
    const watchPhases = async () => {
      while (watching) {
        await pollPhases();
        await sleep(1_000);
      }
    };
    const applied = new Map<string, number>();
    const apply = async (experiment: Experiment) => {
      applied.set(experiment.metadata.name, Date.now());
      await kubectl(['apply', '-f', '-'], { stdin: manifest(experiment) });
    };
    const finished = (name: string, timeoutMs: number) =>
      waitFor(`${name} to finish`, timeoutMs, async () => {
        const object = await get(name);
        return object.status?.phase === 'Succeeded' || object.status?.phase === 'Failed' ? object : undefined;
      }, 2_000);

    before(async () => {
      client = await startCluster();
      const began = performance.now();
      const output = await installLoadlab();
      assert.equal(output.code, 0, output.text);
      await kubectl(['-n', SYSTEM, 'rollout', 'status', 'deployment/loadlab-operator', '--timeout=300s'], { timeoutMs: 310_000 });
      figure(`loadlab installed and the operator available in ${((performance.now() - began) / 1000).toFixed(0)} s`);
      watcher = watchPhases();
    }, { timeout: 40 * 60_000 });

    after(async () => {
      watching = false;
      await watcher;
    }, { timeout: 5 * 60_000 });

    // --- the runs: a run of stages and a search at once, the leader deleted mid-run; the db-pool
    // example starts once the run of stages is done. It saturates the machine by design from its
    // second stage on, which begins after the search's last step: only its first stage (400 devices,
    // which its pool serves) shares the machine with a step judged on an SLO (1 s p95, 40 devices).
    const done = new Map<string, Experiment>();
    let leaderDeletedAt = 0;
    /** When the operator last had work: the idle figure waits a minute after it. */
    let lastActivityAt = 0;

    /** Waits for a run to end; checks its phases and that exactly its timeline's Jobs exist, each complete; prints its figures. */
    const finishedRun = async (experiment: Experiment, timeoutMs: number) => {
      const name = experiment.metadata.name;
      const object = await finished(name, timeoutMs);
      done.set(name, object);
      assert.equal(object.status?.phase, 'Succeeded', `${name}: ${JSON.stringify(object.status?.conditions)}`);
      await pollPhases(); // the watcher polls once a second: make sure it has seen the end
      const list = seen.get(name) ?? [];
      const phases = list.map((entry) => entry.phase);
      // Polled once a second: a phase shorter than that (Pending) may not be seen; none may be out of order or repeated.
      assert.deepEqual(phases, PHASES.filter((phase) => phases.includes(phase)), `${name} went through ${phases.join(' → ')}`);
      // A search judges each step while Running (the last one too, which ends it), so it may go
      // from Running to Succeeded; a run of stages is analysed once, after its load.
      const expected = experiment === SEARCH ? ['Provisioning', 'Running', 'Succeeded'] : ['Provisioning', 'Running', 'Analyzing', 'Succeeded'];
      for (const phase of expected) assert.ok(phases.includes(phase), `${name} was seen ${phase}: ${phases.join(' → ')}`);
      const status = object.status!;
      assert.equal(status.conditions?.find((c) => c.type === 'Analyzed')?.status, 'True', `${name} analysed`);
      // Exactly the driver Jobs of its timeline, one per unit, each complete: no unit ran twice across the hand-over.
      const jobs = await jobsOf(name);
      assert.deepEqual(jobs.map((job) => job.metadata.name).sort(), status.timeline!.map((entry) => entry.name).sort(), `${name}: one Job per unit`);
      assert.deepEqual(status.timeline!.map((entry) => entry.kind), status.timeline!.map(() => 'Job'));
      for (const job of jobs) assert.ok(job.status.conditions?.some((c) => c.type === 'Complete' && c.status === 'True'), `${job.metadata.name} complete: ${JSON.stringify(job.status)}`);
      const at = (phase: string) => list.find((entry) => entry.phase === phase)?.at;
      const firstStart = Date.parse(status.timeline![0]!.startTime!);
      const lastEnd = Date.parse(status.timeline!.at(-1)!.endTime!);
      figure(
        `${name}: ${list.map((entry) => `${entry.phase} +${((entry.at - applied.get(name)!) / 1000).toFixed(0)} s`).join(', ')} after the apply; ` +
          `first request ${((firstStart - applied.get(name)!) / 1000).toFixed(0)} s after the apply (DRIVER_START_DELAY_SECONDS, 20 s, included); ` +
          `load end → Succeeded ${((at('Succeeded')! - lastEnd) / 1000).toFixed(0)} s; ${status.timeline!.length} Job(s)`,
      );
      return object;
    };

    it('a run of stages and a search at once, the leading operator pod deleted mid-run: each goes Pending → Provisioning → Running → Analyzing → Succeeded, with exactly one driver Job per unit', { timeout: 12 * 60_000 }, async () => {
      // The scaling study starts too (it judges no SLO: each count's capacity is a lower bound here)
      // and goes on through the leader's deletion and the tests after this one.
      for (const experiment of [SMOKE, SEARCH, STUDY]) await apply(experiment);

      // Mid-run: the run of stages' driver pod is sending (the search is in its first step).
      const running = await waitFor('the run of stages\' driver pod to run', 5 * 60_000, async () => {
        const object = await get(SMOKE.metadata.name);
        assert.notEqual(object.status?.phase, 'Failed', JSON.stringify(object.status?.conditions));
        const job = object.status?.timeline?.[0];
        if (!job?.startTime || Date.parse(job.startTime) > Date.now()) return undefined;
        const driverPods = await client.pods(EXPERIMENTS, `job-name=${job.name}`);
        return driverPods.some((pod) => pod.status.phase === 'Running') ? object : undefined;
      }, 1_000);
      await sleep(10_000);
      const lease = async () => (await client.json<{ spec: { holderIdentity?: string; leaseTransitions?: number } }>(['-n', SYSTEM, 'get', 'lease', 'loadlab-operator'])).spec;
      const before = await lease();
      const leader = before.holderIdentity?.split('_')[0];
      assert.ok(leader, 'a leader holds the Lease');
      leaderDeletedAt = Date.now();
      await kubectl(['-n', SYSTEM, 'delete', 'pod', leader, '--wait=false']);
      const next = await waitFor('another operator to lead', 2 * 60_000, async () => {
        const spec = await lease();
        return spec.holderIdentity && spec.holderIdentity.split('_')[0] !== leader ? spec : undefined;
      }, 500);
      figure(`deleted the leading operator pod ${leader} ${((leaderDeletedAt - Date.parse(running.status!.timeline![0]!.startTime!)) / 1000).toFixed(0)} s into the run of stages; ${next.holderIdentity!.split('_')[0]} led ${((Date.now() - leaderDeletedAt) / 1000).toFixed(1)} s later`);

      await finishedRun(SMOKE, 8 * 60_000);
      await apply(DB_POOL);
      await finishedRun(SEARCH, 8 * 60_000);
    });

    it("the run of stages: the summary agrees with the driver pod's counts, the rows PostgreSQL stored and the counters Prometheus scraped; kubectl get lex shows it", { timeout: 3 * 60_000 }, async () => {
      const object = done.get(SMOKE.metadata.name);
      assert.ok(object, 'the run finished');
      const status = object.status!;
      const summary = status.summary!;
      const whole = planned(SMOKE);
      const [unit] = status.timeline!;
      const driverPods = await client.pods(EXPERIMENTS, `job-name=${unit!.name}`);
      assert.equal(driverPods.length, 1);
      assert.equal(driverPods[0]!.spec.nodeName, 'loadlab-load', 'the driver runs on the load node');
      const report = driverReport(await kubectl(['-n', EXPERIMENTS, 'logs', driverPods[0]!.metadata.name]));
      assert.deepEqual([report.measurements, report.polls, report.logins], [whole.measurements, whole.command, whole.login], 'the driver sent the plan');
      assert.equal(report.errors, 0, JSON.stringify(report.responses));
      assert.equal(report.dropped, 0);
      assert.equal(report.responses['201'], whole.measurements, 'every measurement acknowledged');

      const rows = Number(await psql(`select count(*) from "${status.databaseSchema}".measurement`));
      assert.equal(rows, whole.measurements, 'PostgreSQL stored every acknowledged measurement, once');

      const selector = runSelector(EXPERIMENTS, SMOKE.metadata.name, status.runId!);
      const final = (metric: string, extra = '') => `sum(max_over_time(${metric}{${selector}${extra}}[15m]))`;
      assert.equal(await client.value(final('loadlab_driver_requests_offered_total', ',job="driver"')), report.sent, "Prometheus has the driver's count");
      assert.equal(await client.value(`count(count by (pod) (max_over_time(loadlab_driver_requests_offered_total{${selector},job="driver"}[15m])))`), 1, 'one driver pod');
      assert.equal(await client.value(final('loadlab_api_measurements_ingested_total')), rows, "the API's count");

      assert.equal(summary.outcome, 'held', summary.verdict);
      assert.equal(summary.bottleneck, 'none', summary.verdict);
      assert.equal(summary.errorRate, 0);
      const offered = 20 / 2 + 20 / 2;
      assert.ok(Math.abs(summary.rps! - offered) / offered < 0.1, `summary ${summary.rps} req/s served of ${offered} offered`);
      assert.ok(summary.p95Ms! > 0 && summary.p95Ms! < 1000, `p95 ${summary.p95Ms} ms`);

      const table = await kubectl(['-n', EXPERIMENTS, 'get', 'loadexperiments', SMOKE.metadata.name]);
      console.log(table.trimEnd().replace(/^/gm, '  '));
      // Columns by their header's position: an empty cell (BREAKS-AT of a run that held) is blanks.
      const [header = '', row = ''] = table.trimEnd().split('\n');
      const starts = [...header.matchAll(/\S+/g)].map((match) => ({ name: match[0], at: match.index }));
      const column = (name: string) => {
        const index = starts.findIndex((entry) => entry.name === name);
        assert.ok(index >= 0, `column ${name} in ${header}`);
        return row.slice(starts[index]!.at, starts[index + 1]?.at ?? row.length).trim();
      };
      assert.equal(column('PHASE'), 'Succeeded');
      assert.equal(column('OUTCOME'), 'SloHeld', 'the SLO gate: met');
      assert.equal(column('DEVICES'), '20');
      assert.equal(Number(column('RPS')), summary.rps);
      assert.equal(Number(column('P95-MS')), summary.p95Ms);
      assert.equal(Number(column('ERRORS')), 0);
      assert.equal(column('BREAKS-AT'), '', 'it held');
      assert.equal(column('BOTTLENECK'), 'none');
      // `loadlab report` from outside the cluster: the operator's settings from its Deployment, its
      // Prometheus through the Kubernetes API's service proxy (no port-forward), the same numbers.
      const out = mkdtempSync(join(tmpdir(), 'loadlab-cluster-report-'));
      try {
        const began = performance.now();
        const written = await loadlabCli(['report', `${EXPERIMENTS}/${SMOKE.metadata.name}`, '--out', out], client.cluster.kubeconfigPath);
        assert.equal(written.code, 0, written.stderr);
        assert.match(written.stderr, /prometheus: http:\/\/prometheus-operated\.monitoring\.svc:9090 \(the operator's PROMETHEUS_URL\) through the Kubernetes API's service proxy/);
        const document = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { summary: unknown };
        assert.deepEqual(document.summary, status.summary, "loadlab report's summary is the operator's, number for number");
        figure(`loadlab report ${EXPERIMENTS}/${SMOKE.metadata.name} through the service proxy in ${((performance.now() - began) / 1000).toFixed(1)} s`);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      figure(`${SMOKE.metadata.name}: driver sent ${report.sent} (${report.measurements} measurements, ${report.polls} polls, ${report.logins} logins), ${rows} rows stored; summary ${summary.rps} req/s, p95 ${summary.p95Ms} ms`);
    });

    it('the breaking-point search: one Job per step, each created after the previous one was judged; together they sent the plan', { timeout: 3 * 60_000 }, async () => {
      const object = done.get(SEARCH.metadata.name);
      assert.ok(object, 'the search finished');
      const status = object.status!;
      const timeline = status.timeline!;
      assert.equal(timeline.length, 2, 'two steps');
      assert.deepEqual(timeline.map((entry) => entry.unit), [0, 1]);
      assert.equal(status.summary?.steps?.total, 2, JSON.stringify(status.summary));
      assert.equal(status.summary?.outcome, 'held', status.summary?.verdict);
      const created = Object.fromEntries((await jobsOf(SEARCH.metadata.name)).map((job) => [job.metadata.name, Date.parse(job.metadata.creationTimestamp!)]));
      assert.ok(created[timeline[1]!.name]! >= Date.parse(timeline[0]!.endTime!), 'the second step\'s Job was created after the first step ended');
      const reports = [];
      for (const entry of timeline) reports.push(driverReport(await kubectl(['-n', EXPERIMENTS, 'logs', '-l', `job-name=${entry.name}`, '--tail=-1'])));
      const whole = planned(SEARCH);
      assert.deepEqual(
        [reports.reduce((sum, r) => sum + r.measurements, 0), reports.reduce((sum, r) => sum + r.polls, 0), reports.reduce((sum, r) => sum + r.logins, 0)],
        [whole.measurements, whole.command, whole.login],
        'the two steps sent the plan between them',
      );
      assert.equal(status.summary?.lastGood?.devices, 40);
      figure(`${SEARCH.metadata.name}: steps ${timeline.map((entry) => `${entry.name} ${entry.startTime}→${entry.endTime}`).join(', ')}; sent ${reports.map((r) => r.sent).join(' + ')}`);
    });

    it('an edit restarts a running experiment (its Job replaced); deleting it mid-run removes its Job, pods, Deployment, Service and ConfigMaps and drops its schema and role', { timeout: 6 * 60_000 }, async () => {
      // The db-pool example and the scaling study run meanwhile (the edit and the delete judge no SLO).
      const name = EDITED.metadata.name;
      await apply(EDITED);
      const runningJob = async (previousRun?: string) =>
        waitFor(`${name} to run its driver Job${previousRun ? ' again' : ''}`, 4 * 60_000, async () => {
          const object = await get(name);
          assert.notEqual(object.status?.phase, 'Failed', JSON.stringify(object.status?.conditions));
          const job = object.status?.timeline?.[0];
          if (object.status?.phase !== 'Running' || !job || object.status.runId === previousRun) return undefined;
          return (await client.pods(EXPERIMENTS, `job-name=${job.name}`)).some((pod) => pod.status.phase === 'Running') ? object : undefined;
        }, 2_000);
      const first = await runningJob();
      const firstJob = first.status!.timeline![0]!.name;
      const schema = first.status!.databaseSchema!;

      const edited = Date.now();
      await kubectl(['-n', EXPERIMENTS, 'patch', 'loadexperiment', name, '--type=merge', '-p', JSON.stringify({ spec: { slo: { latencyThreshold: '2s' } } })]);
      const second = await runningJob(first.status!.runId);
      const secondJob = second.status!.timeline![0]!.name;
      assert.notEqual(second.status!.runId, first.status!.runId, 'a new run');
      assert.notEqual(secondJob, firstJob);
      assert.deepEqual((await jobsOf(name)).map((job) => job.metadata.name), [secondJob], 'the first run\'s Job was deleted');
      figure(`${name}: edited mid-run; the new run's driver pod ran ${((Date.now() - edited) / 1000).toFixed(0)} s later (${first.status!.runId} → ${second.status!.runId})`);

      assert.equal(await psql(`select count(*) from pg_roles where rolname = '${schema}'`), '1');
      const deleted = Date.now();
      await kubectl(['-n', EXPERIMENTS, 'delete', 'loadexperiment', name, '--wait=false']);
      await waitFor(`${name} to be gone (its finalizer done)`, 3 * 60_000, async () =>
        (await kubectl(['-n', EXPERIMENTS, 'get', 'loadexperiment', name, '--ignore-not-found', '-o', 'name'])).trim() === '' ? true : undefined, 250);
      const finalized = Date.now();
      await waitFor(`everything ${name} owned to be gone`, 3 * 60_000, async () =>
        (await kubectl(['-n', EXPERIMENTS, 'get', 'jobs,pods,deployments,services,configmaps', '-l', `loadlab.dev/experiment=${name}`, '-o', 'name'])).trim() === '' ? true : undefined, 250);
      const driverPods = await client.pods(EXPERIMENTS, `job-name=${secondJob}`);
      assert.deepEqual(driverPods.map((pod) => pod.metadata.name), [], 'the driver pod is gone');
      assert.equal(await psql(`select count(*) from pg_namespace where nspname = '${schema}'`), '0', 'schema dropped');
      assert.equal(await psql(`select count(*) from pg_roles where rolname = '${schema}'`), '0', 'role dropped');
      figure(
        `${name}: deleted mid-run; its finalizer (schema and role dropped) done ${((finalized - deleted) / 1000).toFixed(1)} s later, ` +
          `its Job, pods (their graceful stop included), Deployment, Service and ConfigMaps gone ${((Date.now() - finalized) / 1000).toFixed(1)} s after that`,
      );
    });

    it('the db-pool example on the loadlab engine names db-pool as the bottleneck; its driver sent its plan exactly once', { timeout: 10 * 60_000 }, async () => {
      if (!applied.has(DB_POOL.metadata.name)) await apply(DB_POOL); // run on its own (--test-name-pattern)
      const object = await finishedRun(DB_POOL, 9 * 60_000);
      lastActivityAt = Date.now();
      const summary = object.status!.summary!;
      console.log(`  verdict: ${summary.verdict}`);
      assert.equal(summary.outcome, 'broke', summary.verdict);
      assert.equal(summary.bottleneck, 'db-pool', summary.verdict);
      const [unit] = object.status!.timeline!;
      const report = driverReport(await kubectl(['-n', EXPERIMENTS, 'logs', '-l', `job-name=${unit!.name}`, '--tail=-1']));
      const whole = planned(DB_POOL);
      // What the driver could not send (every connection busy) it counts as dropped: sent and dropped
      // make up the plan, once (a unit run twice would double it).
      const total = whole.measurements + whole.command + whole.login;
      assert.equal(report.sent + report.dropped, total, `the plan, once: ${JSON.stringify(report)}`);
      const selector = runSelector(EXPERIMENTS, DB_POOL.metadata.name, object.status!.runId!);
      assert.equal(await client.value(`sum(max_over_time(loadlab_driver_requests_offered_total{${selector},job="driver"}[20m]))`), total, 'Prometheus: offered = the plan');
      const rows = Number(await psql(`select count(*) from "${object.status!.databaseSchema}".measurement`));
      assert.ok(rows >= (report.responses['201'] ?? 0), `${rows} rows stored, ${report.responses['201']} acknowledged`);
      assert.equal(await client.value(`sum(loadlab_api_measurements_ingested_total{${selector}})`), rows, "the API's count");
      figure(`${DB_POOL.metadata.name}: breaks at ${summary.devicesAtBreak} devices, bottleneck ${summary.bottleneck}; driver sent ${report.sent} (${report.errors} errors, ${report.dropped} dropped), ${rows} rows stored`);
    });

    it('the scaling study, across the leader\'s deletion: one run per replica count, each served by that many API pods (as Prometheus scraped them), its Job deleted once analysed; the fit or what the data cannot tell in status', { timeout: 10 * 60_000 }, async () => {
      const name = STUDY.metadata.name;
      if (!applied.has(name)) await apply(STUDY); // run on its own (--test-name-pattern)
      const object = await finished(name, 9 * 60_000);
      lastActivityAt = Math.max(lastActivityAt, Date.now());
      assert.equal(object.status?.phase, 'Succeeded', JSON.stringify(object.status?.conditions));
      const scaling = object.status!.scaling!;
      const counts = [1, 2, 3];
      assert.deepEqual(scaling.runs.map((run) => run.replicas), counts);
      const tag = object.status!.runId!.replace(/-n[0-9]+$/, '');
      const plan = planOf(STUDY);
      const offered = arrivalCounts(plan);
      for (const run of scaling.runs) {
        assert.equal(run.runId, `${tag}-n${run.replicas}`);
        const selector = runSelector(EXPERIMENTS, name, run.runId);
        // Every API pod of the count's run while its load ran, as Prometheus scraped them (the pods
        // carry the run's label; the window leaves out the extra pod the Deployment controller gives
        // the old ReplicaSet for a moment when the next count changes the replicas and the template at once).
        const [from, to] = [Date.parse(run.loadStart!) / 1000, Date.parse(run.loadEnd!) / 1000];
        const pods = await client.query(`count by (pod) (last_over_time(loadlab_api_http_requests_in_flight{${selector}}[${Math.ceil(to - from)}s] @ ${to.toFixed(3)}))`);
        if (pods.length !== run.replicas) {
          // When each pod of the run was scraped, to tell a replaced pod from a rollout's extra one.
          const seenAt = await client.queryRange(`max by (pod) (loadlab_api_http_requests_in_flight{${selector}})`, Date.parse(object.metadata.creationTimestamp!) / 1000, Date.now() / 1000, 5);
          const times = seenAt.map((series) => `${series.metric.pod} ${new Date(Number(series.values[0]![0]) * 1000).toISOString()} → ${new Date(Number(series.values.at(-1)![0]) * 1000).toISOString()}`);
          assert.fail(`${run.runId}: ${pods.length} API pods during its load (${run.loadStart} → ${run.loadEnd}), not ${run.replicas}; scraped: ${times.join('; ')}`);
        }
        assert.ok(run.capacityRps !== undefined && run.capacityRps > 0, `${run.runId}: capacity ${run.capacityRps}`);
      }
      // No count's driver Job is left: each went once its count was analysed, the last with the rest at the end (cleanup onSuccess).
      assert.deepEqual((await jobsOf(name)).map((job) => job.metadata.name), [], 'every count\'s Job deleted');
      const succeeded = object.status!.conditions!.find((c) => c.type === 'Succeeded')!;
      assert.ok(['ScalingFitted', 'ScalingMeasured'].includes(succeeded.reason!), succeeded.reason);
      assert.ok((scaling.notes ?? []).length > 0, 'the study says what its data can tell');
      // A count whose SLO held measured the offered load, not the API: no fit over fewer than three that broke.
      if (scaling.runs.filter((run) => run.saturated).length < 3) assert.equal(scaling.fit, undefined, JSON.stringify(scaling));
      figure(
        `${name}: ${scaling.runs.map((run) => `${run.replicas} replica(s) ${run.capacityRps?.toFixed(1)} rps${run.saturated ? '' : ' (held: lower bound)'}`).join(', ')} ` +
          `at ${((offered.measurements + offered.command + offered.login) / plan.durationS).toFixed(1)} rps offered; ${succeeded.message}; ` +
          `study took ${((Date.parse(object.status!.completionTime!) - applied.get(name)!) / 1000).toFixed(0)} s`,
      );
    });

    it("every Grafana panel query that can have data here returns it on the in-cluster Prometheus, from the run's start (k6's and kube-state-metrics' cannot)", { timeout: 3 * 60_000 }, async () => {
      const object = done.get(SMOKE.metadata.name)!;
      const start = Date.parse(object.status!.timeline![0]!.startTime!) / 1000;
      // To now: the operator's breaking-point gauges are set when the analysis ends, after the load.
      const end = Date.now() / 1000;
      const values = { namespace: EXPERIMENTS, experiment: SMOKE.metadata.name, run: object.status!.runId!, database: 'job="timescaledb"', database_pod: DATABASE_RESOURCE_SELECTOR, __rate_interval: '1m' };
      const queries = dashboardQueries(experimentDashboard()).filter(({ expr }) => !/k6_|container="k6"|kube_pod_/.test(expr));
      const empty: string[] = [];
      for (const { panel, expr } of queries) {
        if ((await client.queryRange(interpolate(expr, values), start, end, 5)).length === 0) empty.push(`${panel}: ${expr}`);
      }
      console.log(`  ${queries.length - empty.length} of ${queries.length} panel queries returned data; empty:\n    ${empty.join('\n    ')}`);
      // Empty by the run's nature: throttling needs a CPU limit (smoke.yaml sets none); a counter of
      // rare events (sheds, failures, errors) has no series until the first one; the operator's
      // breaking-point gauges exist only for a run that broke (checked on the db-pool run below).
      const explained = /container_cpu_cfs_throttled|shed|failures|errors|deadlocks|loadlab_experiment_breaking_point_/;
      assert.deepEqual(empty.filter((entry) => !explained.test(entry)), [], 'every other panel has data: the driver\'s, the API\'s, the database\'s (exporter and cAdvisor)');

      // The operator's own series: the breaking point of the run that broke, as its status says.
      const broke = done.get(DB_POOL.metadata.name)!;
      const brokeValues = { ...values, experiment: DB_POOL.metadata.name, run: broke.status!.runId! };
      for (const { expr } of dashboardQueries(experimentDashboard()).filter(({ expr }) => /loadlab_experiment_breaking_point_devices/.test(expr))) {
        // Set when the analysis ended, scraped within the operator's 15 s interval.
        const value = await waitFor(`the operator's gauge: ${expr}`, 60_000, async () => {
          const series = await client.queryRange(interpolate(expr, brokeValues), start, Date.now() / 1000, 5);
          return series[0]?.values.at(-1)?.[1];
        }, 3_000);
        assert.equal(Number(value), broke.status!.summary!.devicesAtBreak, `${expr}: the operator's gauge`);
      }
    });

    it('the operator pods: CPU and memory during the runs and idle after them (cAdvisor)', { timeout: 3 * 60_000 }, async () => {
      const window = `${Math.ceil((Date.now() - leaderDeletedAt) / 60_000) + 10}m`;
      const selector = `namespace="${SYSTEM}",container="operator"`;
      const cpu = await client.query(`max by (pod) (max_over_time(rate(container_cpu_usage_seconds_total{${selector}}[1m])[${window}:15s]))`);
      const memory = await client.query(`max by (pod) (max_over_time(container_memory_working_set_bytes{${selector}}[${window}]))`);
      assert.ok(cpu.length >= 2 && memory.length >= 2, 'cAdvisor reports the operator pods');
      // Idle: a minute after the operator's last work (the db-pool example's analysis). Not less:
      // the kubelet's cAdvisor series carry its own timestamps, which move every 10 to 15 s
      // (housekeeping), so a 30 s window has held a single sample of a pod and no rate (tried).
      await sleep(Math.max(0, lastActivityAt + 70_000 - Date.now()));
      const idleCpu = await client.query(`rate(container_cpu_usage_seconds_total{${selector}}[1m])`);
      const idleMemory = await client.query(`container_memory_working_set_bytes{${selector}}`);
      assert.equal(idleCpu.length, 2, 'two operator replicas now');
      const cores = (samples: PromSample[]) => samples.map((s) => `${s.metric.pod} ${(Number(s.value[1]) * 1000).toFixed(0)}m`).join(', ');
      const mib = (samples: PromSample[]) => samples.map((s) => `${s.metric.pod} ${(Number(s.value[1]) / 2 ** 20).toFixed(0)} MiB`).join(', ');
      figure(`operator pods during the runs: peak CPU ${cores(cpu)}; peak working set ${mib(memory)}`);
      figure(`operator pods idle (a minute after the last experiment): CPU ${cores(idleCpu)}; working set ${mib(idleMemory)}`);
    });
  });
}
