import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FleetIntegral } from '../src/traffic/schedule.js';
import { MetricsServer, type ExperimentOutcome } from '../src/controller/metrics-server.js';

describe("the operator's /metrics, /healthz and /readyz", () => {
  let server: MetricsServer;
  let leader = false;
  let started = false;
  let experiments: ExperimentOutcome[] = [];
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
    return { status: response.status, text: await response.text() };
  };
  before(async () => {
    server = await MetricsServer.start({ port: 0, host: '127.0.0.1', isLeader: () => leader, isStarted: () => started, experiments: () => experiments });
  });
  after(async () => {
    await server.close();
  });

  it('is live at once, ready once started', async () => {
    assert.equal((await get('/healthz')).status, 200);
    assert.equal((await get('/readyz')).status, 503);
    started = true;
    assert.equal((await get('/readyz')).status, 200);
    assert.equal((await get('/nothing')).status, 404);
  });

  it('reports leadership and each analysed run\'s breaking point, labelled as the run\'s series', async () => {
    assert.match((await get('/metrics')).text, /^loadlab_operator_leader 0$/m);
    leader = true;
    experiments = [
      { namespace: 'lab', name: 'seed-20k', runId: 'r2-abcdef', devicesAtBreak: 34000, breakingPointRps: 2210.5 },
      { namespace: 'lab', name: 'held', runId: 'r1-000000' },
    ];
    const text = (await get('/metrics')).text;
    assert.match(text, /^loadlab_operator_leader 1$/m);
    assert.match(text, /^loadlab_experiment_breaking_point_devices\{experiment="lab\/seed-20k",run="r2-abcdef"\} 34000$/m);
    assert.match(text, /^loadlab_experiment_breaking_point_rps\{experiment="lab\/seed-20k",run="r2-abcdef"\} 2210.5$/m);
    assert.doesNotMatch(text, /experiment="lab\/held"/, 'a run that held has no breaking point (absent, not 0)');
    assert.match(text, /^nodejs_eventloop_lag_p99_seconds /m);
    experiments = [];
    assert.doesNotMatch((await get('/metrics')).text, /seed-20k/, 'a deleted experiment disappears');
  });
});

describe('FleetIntegral.devicesAt (the fleet gauge k6 reports)', () => {
  const integral = new FleetIntegral([
    { startS: 0, durationS: 10, devicesAtStart: 0, devicesAtEnd: 100 },
    { startS: 10, durationS: 20, devicesAtStart: 100, devicesAtEnd: 100 },
    { startS: 30, durationS: 10, devicesAtStart: 100, devicesAtEnd: 300 },
  ]);
  it('is linear in a ramp, flat in a hold, and the last fleet after the plan', () => {
    assert.deepEqual([0, 5, 10, 20, 30, 35, 40, 99].map((t) => integral.devicesAt(t)), [0, 50, 100, 100, 100, 200, 300, 300]);
  });
  it('is the derivative of the integral', () => {
    for (const t of [2.5, 17, 33]) assert.ok(Math.abs((integral.at(t + 1e-3) - integral.at(t - 1e-3)) / 2e-3 - integral.devicesAt(t)) < 1e-6, `t=${t}`);
  });
});
