import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresCluster } from './support/postgres.js';
import { login, startTestApi } from './support/api.js';

type Api = Awaited<ReturnType<typeof startTestApi>>;
interface Answer {
  id: number | null;
  notBefore: string | null;
}

async function poll(api: Api, token: string): Promise<Answer> {
  const response = await fetch(`${api.url}/v1/command`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as Answer;
}

/** A counter or gauge of the API's /metrics (0 when the series is absent). */
async function metric(api: Api, series: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
const FROM_MEMORY = 'loadlab_api_command_polls_total{answered="memory"}';
const FROM_DATABASE = 'loadlab_api_command_polls_total{answered="database"}';
const STATEMENTS = 'loadlab_api_db_query_duration_seconds_count{query="next_command",outcome="ok"}';

/** Polls until a command comes (bounded); the time it took. */
async function untilCommand(api: Api, token: string, withinMs: number): Promise<{ answer: Answer; afterMs: number }> {
  const start = Date.now();
  while (Date.now() - start < withinMs) {
    const answer = await poll(api, token);
    if (answer.id !== null) return { answer, afterMs: Date.now() - start };
    await sleep(20);
  }
  throw new Error(`no command within ${withinMs} ms`);
}

/**
 * The poll path's index (commands/due-commands.ts) against a real PostgreSQL: polls with nothing
 * due run no statement, and every command is still handed out exactly once and on time, across two
 * replicas, future due times, a lost notification and a lost control connection.
 */
describe('GET /v1/command: the poll index (real PostgreSQL, LISTEN/NOTIFY)', () => {
  let pgc: PostgresCluster;
  let admin: pg.Client;
  before(async () => {
    pgc = await PostgresCluster.start();
    // The first API migrates; the writer connects after.
    const first = await startTestApi(pgc.url);
    await first.close();
    admin = new pg.Client({ connectionString: pgc.url });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await pgc?.destroy();
  });

  it('a poll with nothing due is answered from memory: no statement; a command due later is handed out once it is due', async () => {
    const api = await startTestApi(pgc.url);
    try {
      const { token, deviceId } = await login(api.url, 'kettle-index-idle');
      const statementsBefore = await metric(api, STATEMENTS);
      const memoryBefore = await metric(api, FROM_MEMORY);
      for (let i = 0; i < 200; i++) assert.equal((await poll(api, token)).id, null);
      assert.equal((await metric(api, FROM_MEMORY)) - memoryBefore, 200, 'every idle poll answered from memory');
      assert.equal(await metric(api, STATEMENTS), statementsBefore, 'no statement for an idle poll');

      const { rows } = await admin.query<{ id: string }>(`INSERT INTO command (device_id, not_before, charge_on) VALUES ($1, now() + interval '1500 ms', true) RETURNING id`, [deviceId]);
      await sleep(300);
      const early = await metric(api, STATEMENTS);
      for (let i = 0; i < 20; i++) assert.equal((await poll(api, token)).id, null, 'not due yet');
      assert.equal(await metric(api, STATEMENTS), early, 'a command due later costs no statement before its time');
      const { answer } = await untilCommand(api, token, 5000);
      assert.equal(answer.id, Number(rows[0]!.id));
      assert.ok(Date.parse(answer.notBefore!) <= Date.now());
      assert.equal((await poll(api, token)).id, null, 'handed out once');
    } finally {
      await api.close();
    }
  });

  it('commands pending when the API starts are handed out at the first poll', async () => {
    const { deviceId } = await loginWith(pgc.url, 'kettle-index-start');
    const { rows } = await admin.query<{ id: string }>(`INSERT INTO command (device_id, not_before, charge_on) VALUES ($1, now() - interval '1 minute', true) RETURNING id`, [deviceId]);
    const api = await startTestApi(pgc.url);
    try {
      const { token } = await login(api.url, 'kettle-index-start');
      assert.equal((await poll(api, token)).id, Number(rows[0]!.id));
    } finally {
      await api.close();
    }
  });

  it('two replicas polling the same devices at once, commands written meanwhile (some due later): each handed out exactly once, within 1 s of being due', { timeout: 60_000 }, async () => {
    const replicas = [await startTestApi(pgc.url), await startTestApi(pgc.url)];
    try {
      const devices = await Promise.all(Array.from({ length: 16 }, (_, i) => login(replicas[0]!.url, `kettle-index-race-${i}`)));
      const written = new Map<number, { dueMs: number; deviceId: number }>();
      const delivered = new Map<number, { atMs: number; count: number; deviceId: number }>();
      const writeUntil = Date.now() + 4000;
      const pollUntil = writeUntil + 2500;
      const writer = (async () => {
        for (let round = 0; Date.now() < writeUntil; round++) {
          const batch = devices.filter((_, i) => (i * 7 + round) % 5 === 0);
          const { rows } = await admin.query<{ id: string; device_id: string; due_ms: number }>(
            `INSERT INTO command (device_id, not_before, charge_on)
             SELECT d, clock_timestamp() + make_interval(secs => s), true FROM unnest($1::bigint[], $2::float8[]) AS t(d, s)
             RETURNING id, device_id, floor(extract(epoch FROM greatest(not_before, clock_timestamp())) * 1000)::float8 AS due_ms`,
            [batch.map((d) => d.deviceId), batch.map((_, k) => (k % 3 === 0 ? 0.3 + ((round * 13 + k) % 10) / 10 : 0))],
          );
          for (const row of rows) written.set(Number(row.id), { dueMs: row.due_ms, deviceId: Number(row.device_id) });
          await sleep(100);
        }
      })();
      // Each device polls both replicas at the same moment every 50 ms: the same command is
      // asked for twice at once, through two indexes and two pools.
      const pollers = devices.map(async ({ token, deviceId }) => {
        while (Date.now() < pollUntil) {
          const answers = await Promise.all(replicas.map((api) => poll(api, token)));
          const atMs = Date.now();
          for (const { id } of answers) {
            if (id === null) continue;
            const seen = delivered.get(id);
            delivered.set(id, { atMs, count: (seen?.count ?? 0) + 1, deviceId });
          }
          await sleep(50);
        }
      });
      await Promise.all([writer, ...pollers]);

      assert.ok(written.size >= 50, `${written.size} commands written`);
      const twice = [...delivered].filter(([, d]) => d.count > 1).map(([id]) => id);
      assert.deepEqual(twice, [], 'no command handed out twice');
      const missing = [...written.keys()].filter((id) => !delivered.has(id));
      assert.deepEqual(missing, [], 'every command handed out');
      const waits = [...written].map(([id, w]) => delivered.get(id)!.atMs - w.dueMs);
      const worst = Math.max(...waits);
      const stored = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM command WHERE id = ANY($1::bigint[]) AND delivered_at IS NOT NULL`, [[...written.keys()]]);
      assert.equal(Number(stored.rows[0]!.n), written.size, 'each marked delivered in the table');
      const memory = (await Promise.all(replicas.map((api) => metric(api, FROM_MEMORY)))).reduce((a, b) => a + b);
      const database = (await Promise.all(replicas.map((api) => metric(api, FROM_DATABASE)))).reduce((a, b) => a + b);
      console.log(`  [figures] ${written.size} commands, each handed out once; longest wait after due ${worst} ms; polls answered from memory ${memory}, by the database ${database}`);
      assert.ok(worst <= 1000, `a command waited ${worst} ms after it was due`);
      assert.ok(memory > database, 'most polls answered from memory');
    } finally {
      await Promise.all(replicas.map((api) => api.close()));
    }
  });

  it('a command whose notification is lost is handed out after the next reconciliation (COMMAND_RECONCILE_MS)', async () => {
    const api = await startTestApi(pgc.url, { COMMAND_RECONCILE_MS: '700' });
    try {
      const { token, deviceId } = await login(api.url, 'kettle-index-lost');
      await admin.query('ALTER TABLE command DISABLE TRIGGER command_due_notify');
      let id: number;
      try {
        id = Number((await admin.query<{ id: string }>(`INSERT INTO command (device_id, charge_on) VALUES ($1, true) RETURNING id`, [deviceId])).rows[0]!.id);
      } finally {
        await admin.query('ALTER TABLE command ENABLE TRIGGER command_due_notify');
      }
      const { answer, afterMs } = await untilCommand(api, token, 3000);
      assert.equal(answer.id, id);
      console.log(`  [figures] a command without its notification handed out after ${afterMs} ms (reconciliation every 700 ms)`);
    } finally {
      await api.close();
    }
  });

  it('the control connection killed: polls ask the database until it is back and read again, then memory again; nothing written meanwhile is missed', async () => {
    const api = await startTestApi(pgc.url, { COMMAND_RECONCILE_MS: '0' });
    try {
      const { token, deviceId } = await login(api.url, 'kettle-index-reconnect');
      assert.equal(await metric(api, 'loadlab_api_command_index_trusted'), 1);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'loadlab-api-control'`);
      // Written while the connection is (about to be) gone: its notification may reach nobody.
      const id = Number((await admin.query<{ id: string }>(`INSERT INTO command (device_id, charge_on) VALUES ($1, true) RETURNING id`, [deviceId])).rows[0]!.id);
      const { answer } = await untilCommand(api, token, 5000);
      assert.equal(answer.id, id);
      const deadline = Date.now() + 10_000;
      while ((await metric(api, 'loadlab_api_command_index_trusted')) !== 1 && Date.now() < deadline) await sleep(100);
      assert.equal(await metric(api, 'loadlab_api_command_index_trusted'), 1, 'the index is trusted again after the reconnect');
      const statements = await metric(api, STATEMENTS);
      for (let i = 0; i < 20; i++) assert.equal((await poll(api, token)).id, null);
      assert.equal(await metric(api, STATEMENTS), statements, 'idle polls answered from memory again');
      assert.equal((await fetch(`${api.url}/readyz`)).status, 200);
    } finally {
      await api.close();
    }
  });

  it('COMMAND_INDEX=false: every poll is a statement', async () => {
    const api = await startTestApi(pgc.url, { COMMAND_INDEX: 'false' });
    try {
      const { token } = await login(api.url, 'kettle-index-off');
      const statements = await metric(api, STATEMENTS);
      for (let i = 0; i < 10; i++) assert.equal((await poll(api, token)).id, null);
      assert.equal((await metric(api, STATEMENTS)) - statements, 10);
      assert.equal(await metric(api, 'loadlab_api_command_index_trusted'), 0);
    } finally {
      await api.close();
    }
  });
});

/** Registers a device through a short-lived API (the device row must exist before its commands). */
async function loginWith(url: string, serial: string): Promise<{ deviceId: number }> {
  const api = await startTestApi(url);
  try {
    return await login(api.url, serial);
  } finally {
    await api.close();
  }
}
