// Least privilege, leader election and an idle operator's requests, on a real kube-apiserver +
// etcd with its audit log on: operators run under ServiceAccount tokens (TokenRequest) bound to
// exactly the rules rbac.ts exports, and the audit log is the judge of what each one requested
// and whether anything was Forbidden. The test stands in for the kubelet and k6-operator (no
// controllers run here); the Prometheus is a fake that knows no series (the analysis then says
// "undetermined", which is all these tests need from it).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { PostgresCluster } from '@loadlab/sandbox/postgres';
import {
  allRules,
  createLogger,
  EXPERIMENT_RULES,
  KubeClient,
  LEASE_RULES,
  loadKubeConfig,
  loadOperatorConfig,
  Operator,
  rbacManifests,
  RESOURCES,
  type ExperimentObject,
  type KubeObject,
} from '../src/controller/index.js';
import { markDeploymentAvailable, setJobStatus, setTestRunStage, waitFor } from './support/stand-ins.js';
import { loadExperimentCrd, loadExperimentSchema, type LoadExperiment } from '../src/schema/index.js';
import { startFakePrometheus, type FakePrometheus } from './fixtures/analysis/fake-prometheus.js';
import { ControlPlane } from '@loadlab/sandbox/control-plane';
import { runApiMigrations } from './support/api-migrations.js';
import { resolveEnv, type EnvEntry } from './support/pod-env.js';
import pg from 'pg';
import { dropExperimentDatabase, ensureExperimentDatabase, FENCE_LOCK, FencedOffError, prepareExperimentData, type Fence } from '../src/controller/experiment-database.js';
import { fencingToken } from '../src/controller/leader.js';

const NS = 'lab-rbac';
const SYSTEM = 'loadlab-system';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
}

let cp: ControlPlane;
let postgres: PostgresCluster;
let admin: KubeClient;
let fake: FakePrometheus;
let dir: string;
const logs: string[] = [];
const operators: Operator[] = [];

const username = (serviceAccount: string) => `system:serviceaccount:${SYSTEM}:${serviceAccount}`;

function auditEvents(): AuditEvent[] {
  return readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditEvent);
}

/** Requests a user made between two times (unique audit ids, by when they were received), as "verb resource" counts. */
function requestsOf(user: string, fromMs: number, toMs: number): Record<string, number> {
  const seen = new Map<string, AuditEvent>();
  for (const event of auditEvents()) {
    if (event.user.username !== user) continue;
    const at = Date.parse(event.requestReceivedTimestamp);
    if (at < fromMs || at > toMs) continue;
    seen.set(event.auditID, event);
  }
  const counts: Record<string, number> = {};
  for (const event of seen.values()) {
    const resource = event.objectRef?.resource ? `${event.objectRef.resource}${event.objectRef.subresource ? `/${event.objectRef.subresource}` : ''}` : event.requestURI;
    const key = `${event.verb} ${resource}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

function forbidden(user: string): AuditEvent[] {
  return auditEvents().filter((event) => event.user.username === user && event.stage === 'ResponseComplete' && event.responseStatus?.code === 403);
}

/**
 * A ServiceAccount bound to exactly the exported rules, and a kubeconfig with its token
 * (TokenRequest); `server` puts something else in front of the apiserver (plain HTTP on loopback).
 */
async function serviceAccountKubeconfig(serviceAccount: string, server = cp.server): Promise<string> {
  await cp.kubectl(['create', 'serviceaccount', serviceAccount, '-n', SYSTEM]);
  const manifests = rbacManifests({ serviceAccount, namespace: SYSTEM, watchNamespaces: [NS], leaseNamespace: SYSTEM, name: serviceAccount });
  await cp.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) });
  const token = (await cp.kubectl(['create', 'token', serviceAccount, '-n', SYSTEM, '--duration=2h'])).trim();
  const path = join(dir, `${serviceAccount}.kubeconfig`);
  writeFileSync(path, [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    server.startsWith('http:') ? '    insecure-skip-tls-verify: true' : `    certificate-authority: ${cp.caFile}`,
    'users:',
    `- name: ${serviceAccount}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: test',
    `    user: ${serviceAccount}`,
    'current-context: test',
    '',
  ].join('\n'), { mode: 0o600 });
  return path;
}

interface LeaseHangingProxy {
  url: string;
  /** From now on, Lease PUTs are held: never forwarded, never answered. */
  hangLeaseWrites(): void;
  /** Lease PUTs held so far. */
  readonly held: number;
  /** When the last Lease PUT was forwarded (performance.now()). */
  readonly lastLeaseWriteMs: number | undefined;
  close(): Promise<void>;
}

/**
 * A fake network fault: a plain-HTTP proxy in front of the real apiserver that can hold one
 * client's Lease writes forever (the apiserver cannot be made to hang a request on demand).
 * Everything else, watches included, passes through.
 */
async function startLeaseHangingProxy(): Promise<LeaseHangingProxy> {
  const target = new URL(cp.server);
  const ca = readFileSync(cp.caFile);
  let hang = false;
  let held = 0;
  let lastLeaseWriteMs: number | undefined;
  const server = createServer((request, response) => {
    const leaseWrite = request.method === 'PUT' && /\/leases\//.test(request.url ?? '');
    if (leaseWrite && hang) {
      held++;
      return;
    }
    if (leaseWrite) lastLeaseWriteMs = performance.now();
    const upstream = httpsRequest({ hostname: target.hostname, port: target.port, path: request.url, method: request.method, headers: { ...request.headers, host: target.host }, ca }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    response.on('close', () => upstream.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hangLeaseWrites: () => (hang = true),
    get held() {
      return held;
    },
    get lastLeaseWriteMs() {
      return lastLeaseWriteMs;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function startOperator(kubeconfig: string, identity: string, timings: { lease: number; renew: number; retry: number }): Promise<Operator> {
  const operator = new Operator({
    config: loadOperatorConfig({
      PROMETHEUS_URL: fake.url,
      DATABASE_URL: postgres.url,
      WATCH_NAMESPACES: NS,
      LEADER_ELECTION: 'true',
      LEASE_NAMESPACE: SYSTEM,
      POD_NAME: identity,
      LEASE_DURATION_SECONDS: String(timings.lease),
      RENEW_DEADLINE_SECONDS: String(timings.renew),
      RETRY_PERIOD_SECONDS: String(timings.retry),
      RETRY_BASE_SECONDS: '0.05',
      RETRY_MAX_SECONDS: '0.5',
      // The load is backdated; the analysis need not wait for scrapes.
      ANALYSIS_DELAY_SECONDS: '0',
      SECRET_KEY: 'operator-rbac-test-secret-key-0123456789abcdef',
      DRIVER_START_DELAY_SECONDS: '1',
    }),
    kubeConfig: loadKubeConfig(kubeconfig),
    log: createLogger('info', (line) => {
      logs.push(line);
      if (process.env.LOADLAB_TEST_LOG) process.stderr.write(`${identity} ${line}\n`);
    }),
  });
  await operator.start();
  operators.push(operator);
  return operator;
}

const get = (name: string) => admin.get<ExperimentObject>(RESOURCES.loadExperiments, NS, name);

/**
 * One small experiment through its whole life, the test standing in for the kubelet (migrations,
 * Deployment available) and for k6-operator (TestRun started and finished a minute ago) or, on the
 * loadlab engine, the Job controller (the driver Job running from its start time, then complete).
 */
async function runExperiment(name: string, engine: 'k6' | 'loadlab' = 'k6'): Promise<ExperimentObject> {
  await admin.create(RESOURCES.loadExperiments, NS, {
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name, namespace: NS },
    spec: { fleet: { devices: 50 }, load: { stages: [{ devices: 50, duration: '30s', shape: 'hold' }] }, generator: { engine }, timeout: '10m', cleanup: 'always' },
  });
  const deployment = await waitFor(`${name}: API Deployment`, () => admin.get<KubeObject & { spec: Json }>(RESOURCES.deployments, NS, `${name}-api`).catch(() => undefined));
  const env = await resolveEnv(admin, NS, deployment.spec.template.spec.containers[0].env as EnvEntry[]);
  await runApiMigrations(env.DATABASE_URL!);
  await markDeploymentAvailable(admin, NS, `${name}-api`);
  const running = await waitFor(`${name}: TestRun`, async () => {
    const object = await get(name);
    return object.status?.timeline?.[0] ? object : undefined;
  });
  const loadObject = running.status!.timeline![0]!.name;
  if (engine === 'loadlab') {
    const job = await admin.get<KubeObject>(RESOURCES.jobs, NS, loadObject);
    const startAt = Date.parse(job.metadata.annotations!['loadlab.dev/start-at']!);
    await sleep(Math.max(0, startAt - Date.now()) + 200);
    await setJobStatus(admin, NS, loadObject, 'running', { startedAt: new Date(startAt) });
    await waitFor(`${name}: the Job's start recorded`, async () => !!(await get(name)).status?.timeline?.[0]?.startTime);
    await sleep(1500);
    await setJobStatus(admin, NS, loadObject, 'succeeded');
  } else {
    const end = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    await setTestRunStage(admin, NS, loadObject, 'started', { at: new Date(end.getTime() - 30_000) });
    await setTestRunStage(admin, NS, loadObject, 'finished', { at: end });
  }
  return waitFor(`${name}: Succeeded and cleaned up`, async () => {
    const object = await get(name);
    return object.status?.phase === 'Succeeded' && object.status.conditions?.some((condition) => condition.type === 'CleanedUp') ? object : undefined;
  });
}

describe('RBAC, leader election and an idle operator on a real kube-apiserver with its audit log (the test stands in for kubelet and k6-operator)', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'loadlab-rbac-'));
    const policy = join(dir, 'audit-policy.yaml');
    writeFileSync(policy, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived"]\nrules:\n  - level: Metadata\n');
    [cp, postgres] = await Promise.all([
      ControlPlane.start({ apiserverFlags: [`--audit-policy-file=${policy}`, `--audit-log-path=${join(dir, 'audit.log')}`] }),
      PostgresCluster.start().catch(() => PostgresCluster.start()),
    ]);
    const crdPath = join(dir, 'loadexperiments.json');
    writeFileSync(crdPath, JSON.stringify(loadExperimentCrd()));
    await cp.installVendoredCrds();
    await cp.installCrds([crdPath]);
    await cp.createNamespace(NS);
    await cp.createNamespace(SYSTEM);
    admin = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    fake = await startFakePrometheus(() => ({ body: { status: 'success', data: { resultType: 'matrix', result: [] } } }));
  });

  after(async () => {
    for (const operator of operators) await operator.stop().catch(() => undefined);
    await fake?.close();
    await postgres?.destroy();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exports rules without wildcards, Secrets only to create, and the apiserver grants the ServiceAccount nothing else', async () => {
    for (const rule of allRules()) {
      for (const field of [rule.apiGroups, rule.resources, rule.verbs]) assert.ok(!field.includes('*'), JSON.stringify(rule));
      if (rule.resources.some((resource) => /secret/i.test(resource))) assert.deepEqual(rule, { apiGroups: [''], resources: ['secrets'], verbs: ['create'] }, 'the API\'s Secret is created, never read or changed');
      for (const verb of rule.verbs) assert.ok(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'].includes(verb), verb);
    }
    assert.ok(!allRules().some((rule) => rule.verbs.includes('deletecollection') || rule.verbs.includes('escalate') || rule.verbs.includes('bind')));
    assert.equal(EXPERIMENT_RULES.length + LEASE_RULES.length, allRules().length);
    await serviceAccountKubeconfig('op-a');
    const as = `--as=${username('op-a')}`;
    const can = (args: string[]) => cp.kubectl(['auth', 'can-i', as, ...args]).then((out) => out.trim(), (error: { stdout?: string }) => (error.stdout ?? '').trim());
    assert.equal(await can(['get', 'secrets', '-n', NS]), 'no');
    assert.equal(await can(['list', 'secrets', '-n', SYSTEM]), 'no');
    assert.equal(await can(['update', 'secrets', '-n', NS]), 'no');
    assert.equal(await can(['create', 'secrets', '-n', SYSTEM]), 'no', 'Secrets only where it runs experiments');
    assert.equal(await can(['create', 'pods', '-n', NS]), 'no');
    assert.equal(await can(['get', 'loadexperiments.loadlab.dev', '-n', 'default']), 'no', 'only the watched namespaces');
    assert.equal(await can(['update', 'leases.coordination.k8s.io', '-n', NS]), 'no', 'leases only in the lease namespace');
    assert.equal(await can(['update', 'loadexperiments.loadlab.dev', '--subresource=status', '-n', NS]), 'yes');
    assert.equal(await can(['update', 'loadexperiments.loadlab.dev', '-n', NS]), 'no', 'spec updates are not the operator\'s');
    assert.equal(await can(['create', 'testruns.k6.io', '-n', NS]), 'yes');
    assert.equal(await can(['create', 'jobs.batch', '-n', NS]), 'yes');
    assert.equal(await can(['update', 'leases.coordination.k8s.io', '-n', SYSTEM]), 'yes');
  });

  it('runs an experiment end to end under the ServiceAccount token with leader election, never Forbidden (audit log); the standby does nothing but read the Lease', async () => {
    const a = await startOperator(join(dir, 'op-a.kubeconfig'), 'op-a', { lease: 15, renew: 10, retry: 2 });
    await a.whenLeader();
    const b = await startOperator(await serviceAccountKubeconfig('op-b'), 'op-b', { lease: 15, renew: 10, retry: 2 });
    await sleep(2500);
    assert.equal(b.isLeader, false);
    const done = await runExperiment('under-rbac');
    assert.equal(done.status!.phase, 'Succeeded');
    assert.equal(done.status!.conditions!.find((condition) => condition.type === 'Succeeded')?.reason, 'Undetermined', 'the fake Prometheus knows no series');
    // Deletion: the finalizer (patch) under the same rules.
    await admin.request('DELETE', `/apis/loadlab.dev/v1alpha1/namespaces/${NS}/loadexperiments/under-rbac`);
    await waitFor('the experiment deleted', async () => !(await get('under-rbac').then(() => true, () => false)));
    assert.deepEqual(forbidden(username('op-a')), [], 'no request of the operator was Forbidden');
    const leader = requestsOf(username('op-a'), 0, Date.now());
    assert.deepEqual(Object.keys(leader).filter((request) => /secrets/.test(request)), ['create secrets'], `the API's Secret created, no Secret read: ${Object.keys(leader).join(', ')}`);
    // Every request of the operator's was in a namespace it watches or its Lease's, never elsewhere.
    const namespaces = new Set(auditEvents().filter((event) => event.user.username === username('op-a') && event.objectRef?.namespace).map((event) => event.objectRef!.namespace!));
    assert.deepEqual([...namespaces].sort(), [NS, SYSTEM].sort(), 'namespaces the operator touched');
    const standby = Object.keys(requestsOf(username('op-b'), 0, Date.now()));
    assert.deepEqual(standby, ['get leases'], `the standby only reads the Lease: ${standby.join(', ')}`);
    assert.equal(b.controller, undefined);
  });

  it('idle: the leader makes no requests beyond its open watches and its Lease renewals; the standby only reads the Lease (counted from the audit log)', async () => {
    const [a, b] = operators as [Operator, Operator];
    await sleep(1000);
    const from = Date.now();
    const countsBefore = new Map(a.client.counts);
    await sleep(10_000);
    const to = Date.now();
    await sleep(300); // the audit log is written as requests complete
    const leader = requestsOf(username('op-a'), from, to);
    const standby = requestsOf(username('op-b'), from, to);
    const inProcess = Object.fromEntries([...a.client.counts].map(([key, count]) => [key, count - (countsBefore.get(key) ?? 0)]).filter(([, count]) => (count as number) > 0));
    console.log(`[figures] idle for ${((to - from) / 1000).toFixed(1)} s with leader election on (retry period 2 s): leader ${JSON.stringify(leader)}, standby ${JSON.stringify(standby)}; the leader's own count ${JSON.stringify(inProcess)}; open watches: 3 (loadexperiments, deployments, testruns in ${NS}), opened before the window`);
    assert.deepEqual(Object.keys(leader), ['update leases'], 'nothing but renewals: no list, no get, no re-watch');
    assert.ok(leader['update leases']! >= 3 && leader['update leases']! <= 7, `${leader['update leases']} renewals in 10 s`);
    assert.deepEqual(Object.keys(standby), ['get leases']);
    const stats = a.controller!.caches;
    console.log(`[figures] watch stats: experiments ${JSON.stringify(stats.experiments.stats)}, deployments ${JSON.stringify(stats.deployments.stats)}, testRuns ${JSON.stringify(stats.testRuns.stats)}`);
    void b;
  });

  it('hands over on a clean stop: the leader releases the Lease and the standby takes over at once and runs the next experiment (on the loadlab engine: its Job under the same rules)', async () => {
    const [a, b] = operators as [Operator, Operator];
    const held = await admin.get<KubeObject & { spec: Json }>(RESOURCES.leases, SYSTEM, 'loadlab-operator');
    assert.match(held.spec.holderIdentity, /^op-a_/);
    const stopped = performance.now();
    await a.stop();
    // Released, not left to expire: the holder is cleared as the stop returns (unless the standby
    // already took it over in between).
    const released = await admin.get<KubeObject & { spec: Json }>(RESOURCES.leases, SYSTEM, 'loadlab-operator');
    assert.ok(released.spec.holderIdentity === '' || /^op-b_/.test(released.spec.holderIdentity), `holder after a clean stop: "${released.spec.holderIdentity}"`);
    await b.whenLeader();
    console.log(`[figures] clean hand-over (Lease released) took ${Math.round(performance.now() - stopped)} ms (retry period 2 s)`);
    const lease = await admin.get<KubeObject & { spec: Json }>(RESOURCES.leases, SYSTEM, 'loadlab-operator');
    assert.match(lease.spec.holderIdentity, /^op-b_/);
    assert.ok(lease.spec.leaseTransitions > (held.spec.leaseTransitions ?? 0), 'the hand-over is a transition');
    // The loadlab engine under the same rules: its driver Job created, followed and deleted.
    const done = await runExperiment('after-handover', 'loadlab');
    assert.equal(done.status!.phase, 'Succeeded');
    assert.deepEqual(forbidden(username('op-b')), []);
    await b.stop();
  });

  it('never has two leaders: a leader that cannot renew (its Lease permission revoked) stops before the standby takes over', async () => {
    const timings = { lease: 3, renew: 2, retry: 0.5 };
    const c = await startOperator(await serviceAccountKubeconfig('op-c'), 'op-c', timings);
    await c.whenLeader();
    const d = await startOperator(await serviceAccountKubeconfig('op-d'), 'op-d', timings);
    let overlap = 0;
    let cStoppedAt: number | undefined;
    let dLeadsAt: number | undefined;
    const sampler = setInterval(() => {
      if (c.isLeader && d.isLeader) overlap++;
      if (!c.isLeader && cStoppedAt === undefined) cStoppedAt = performance.now();
      if (d.isLeader && dLeadsAt === undefined) dLeadsAt = performance.now();
    }, 10);
    try {
      const revoked = performance.now();
      // A partition, as far as C can tell: it can no longer write the Lease.
      await cp.kubectl(['delete', 'rolebinding', 'op-c-leader-election', '-n', SYSTEM]);
      await d.whenLeader();
      await waitFor('sampled', () => dLeadsAt !== undefined);
      console.log(`[figures] forced hand-over: C stopped leading ${Math.round(cStoppedAt! - revoked)} ms after losing the Lease permission (renew deadline 2 s), D led ${Math.round(dLeadsAt! - revoked)} ms after (lease 3 s): gap ${Math.round(dLeadsAt! - cStoppedAt!)} ms`);
      assert.equal(overlap, 0, 'both led at once');
      assert.ok(cStoppedAt! < dLeadsAt!);
    } finally {
      clearInterval(sampler);
    }
    const done = await runExperiment('after-failover');
    assert.equal(done.status!.phase, 'Succeeded');
    assert.deepEqual(forbidden(username('op-d')), []);
    const cForbidden = forbidden(username('op-c'));
    assert.ok(cForbidden.every((event) => event.objectRef?.resource === 'leases'), 'C was refused only the Lease');
  });

  it('never has two leaders: a leader whose Lease renewal hangs (a fake network fault: a local HTTP proxy in front of the real apiserver holds its Lease PUTs) stops at the renew deadline, before the lease expires for the standby', async () => {
    // One pair of candidates at a time: the earlier operators stop (D releases the Lease).
    for (const operator of operators) await operator.stop();
    const timings = { lease: 3, renew: 2, retry: 0.5 };
    const proxy = await startLeaseHangingProxy();
    let overlap = 0;
    let eStoppedAt: number | undefined;
    let fLeadsAt: number | undefined;
    let sampler: NodeJS.Timeout | undefined;
    try {
      const e = await startOperator(await serviceAccountKubeconfig('op-e', proxy.url), 'op-e', timings);
      await e.whenLeader();
      const f = await startOperator(await serviceAccountKubeconfig('op-f'), 'op-f', timings);
      await sleep(1000); // renewals go through the proxy
      assert.ok(proxy.lastLeaseWriteMs !== undefined && e.isLeader, 'E renews through the proxy');
      sampler = setInterval(() => {
        if (e.isLeader && f.isLeader) overlap++;
        if (!e.isLeader && eStoppedAt === undefined) eStoppedAt = performance.now();
        if (f.isLeader && fLeadsAt === undefined) fLeadsAt = performance.now();
      }, 10);
      proxy.hangLeaseWrites();
      // Bounded well below the client's 30 s request timeout, which alone would keep E leading.
      await waitFor('E to step down', () => eStoppedAt !== undefined, { timeoutMs: timings.lease * 1000 + 2000, intervalMs: 10 });
      await f.whenLeader();
      await waitFor('sampled', () => fLeadsAt !== undefined);
      const lastRenewal = proxy.lastLeaseWriteMs!;
      console.log(`[figures] hung renewal: E stepped down ${Math.round(eStoppedAt! - lastRenewal)} ms after its last renewal reached the proxy (renew deadline 2 s, lease 3 s), F led ${Math.round(fLeadsAt! - lastRenewal)} ms after it: gap ${Math.round(fLeadsAt! - eStoppedAt!)} ms; ${proxy.held} Lease PUT(s) held`);
      assert.ok(proxy.held >= 1, 'a renewal was held');
      assert.ok(eStoppedAt! - lastRenewal < timings.lease * 1000, 'E acted past the lease duration');
      assert.equal(overlap, 0, 'both led at once');
      assert.ok(eStoppedAt! < fLeadsAt!);
      assert.equal(e.controller, undefined, 'E\'s controller stopped');
    } finally {
      clearInterval(sampler);
      await proxy.close();
    }
  });

  it('fences destructive database work by leadership term: a leader whose term is behind the database\'s changes nothing, and a new term\'s claim waits for the old one\'s statement in flight (real PostgreSQL)', async () => {
    const adminUrl = postgres.url;
    const sql = async (text: string, values: unknown[] = []) => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        return (await client.query(text, values)).rows;
      } finally {
        await client.end();
      }
    };
    // The terms above claimed the fence with tokens from the real Lease: its creation second, then its transitions.
    const lease = await admin.get<KubeObject & { spec: Json }>(RESOURCES.leases, SYSTEM, 'loadlab-operator');
    const [row] = await sql('SELECT lease, token FROM loadlab_operator.leader_fence');
    const current = Number(row.token);
    assert.equal(row.lease, `${SYSTEM}/loadlab-operator`);
    assert.equal(Math.floor(current / 2 ** 20), Math.floor(Date.parse(lease.metadata.creationTimestamp!) / 1000), 'a token of this Lease');
    assert.ok(current <= fencingToken(lease as never) && current % 2 ** 20 >= 1, `claimed by a term after the first (${current % 2 ** 20} transitions)`);

    const fence = (token: number): Fence => ({ lease: `${SYSTEM}/loadlab-operator`, token });
    const schema = 'loadlab_fence_probe';
    const database = await ensureExperimentDatabase(adminUrl, schema, 'probe-password', 10, fence(current));
    await runApiMigrations(database.url);
    const experiment = loadExperimentSchema.parse({ apiVersion: 'loadlab.dev/v1alpha1', kind: 'LoadExperiment', metadata: { name: 'probe', namespace: NS }, spec: { fleet: { devices: 50 }, load: { stages: [{ devices: 50, duration: '10s' }] } } }) as LoadExperiment;
    await prepareExperimentData(adminUrl, database, experiment, () => undefined, fence(current));
    const devices = async () => Number((await sql(`SELECT count(*) AS n FROM ${schema}.device`))[0].n);
    assert.equal(await devices(), 50);
    // Experiment roles (the API's) may read the fence, never move it.
    const asRole = new pg.Client({ connectionString: database.url });
    await asRole.connect();
    try {
      assert.equal(Number((await asRole.query('SELECT token FROM loadlab_operator.leader_fence')).rows[0].token), current);
      await assert.rejects(asRole.query('UPDATE loadlab_operator.leader_fence SET token = token + 1'), /permission denied/);
    } finally {
      await asRole.end();
    }

    // The term before: refused before any statement, everything as it was.
    const stale = fence(current - 1);
    await assert.rejects(prepareExperimentData(adminUrl, database, { ...experiment, spec: { ...experiment.spec, fleet: { ...experiment.spec.fleet, devices: 5 } } }, () => undefined, stale), FencedOffError);
    assert.equal(await devices(), 50, 'no TRUNCATE');
    await assert.rejects(dropExperimentDatabase(adminUrl, schema, stale), (error: unknown) => error instanceof FencedOffError && /another operator leads now \(fencing token \d+ in loadlab_operator\.leader_fence > this term's \d+/.test(error.message));
    await assert.rejects(ensureExperimentDatabase(adminUrl, schema, 'other-password', 10, stale), FencedOffError);
    assert.equal((await sql('SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1', [schema]))[0].n, '1', 'no DROP');

    // The current term's destructive transaction in flight (it holds the fence's lock shared) while a new term claims:
    // the claim waits for it, and afterwards the old term is refused.
    const inFlight = new pg.Client({ connectionString: adminUrl });
    await inFlight.connect();
    await inFlight.query('BEGIN');
    await inFlight.query('SELECT pg_advisory_xact_lock_shared($1)', [FENCE_LOCK.toString()]);
    let claimed = false;
    const next = fence(current + 1);
    const claim = ensureExperimentDatabase(adminUrl, 'loadlab_fence_next', 'next-password', 10, next).then(() => (claimed = true));
    await sleep(1000);
    assert.equal(claimed, false, 'the new term\'s claim waits for the statement in flight');
    await inFlight.query('COMMIT');
    await inFlight.end();
    await claim;
    assert.equal(Number((await sql('SELECT token FROM loadlab_operator.leader_fence'))[0].token), current + 1);
    await assert.rejects(dropExperimentDatabase(adminUrl, schema, fence(current)), FencedOffError);
    await dropExperimentDatabase(adminUrl, schema, next);
    await dropExperimentDatabase(adminUrl, 'loadlab_fence_next', next);
    assert.equal((await sql('SELECT count(*) AS n FROM pg_namespace WHERE nspname = ANY($1)', [[schema, 'loadlab_fence_next']]))[0].n, '0');
  });
});
