import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DriverResult, EndpointTotals } from '../src/driver/index.js';
import { clientSideBreak } from '../src/local/run.js';
import { experimentWith } from './support/fixtures.js';

/** When local mode stops a breaking-point search: the step as the driver saw it (pure). */
const experiment = experimentWith(
  {
    fleet: { devices: 1000, reportInterval: '10s', pollInterval: '10s' },
    load: { search: { startDevices: 100, step: { factor: 2 }, maxDevices: 1000, rampUp: '5s', hold: '20s' } },
    slo: { latencyPercentile: 95, latencyThreshold: '250ms', maxErrorRate: 0.01 },
  },
  'search',
);

function step({ sent = 1000, errors = 0, dropped = 0, late = 0, p95Ms = 20, p99Ms = 40, loginP95Ms = 20 }): DriverResult {
  const endpoint = (p95: number, p99: number): EndpointTotals => ({
    offered: sent / 2, sent: sent / 2, dropped: 0, late: 0, responses: {}, errors: 0,
    latency: { count: sent / 2, meanMs: p95 / 2, p50Ms: p95 / 3, p90Ms: p95 * 0.9, p95Ms: p95, p99Ms: p99, maxMs: p99 * 2 },
  });
  return {
    totals: { offered: sent + dropped, sent, dropped, late, errors, responses: {} },
    endpoints: { measurements: endpoint(p95Ms, p99Ms), command: endpoint(p95Ms, p99Ms), login: endpoint(loginP95Ms, loginP95Ms) },
  } as unknown as DriverResult;
}

describe('clientSideBreak: when a local breaking-point search stops', () => {
  it('goes on while the step meets the SLO', () => {
    assert.equal(clientSideBreak(experiment, step({})), undefined);
    assert.equal(clientSideBreak(experiment, step({ sent: 0 })), undefined, 'nothing sent: nothing to judge');
  });
  it('stops on the error rate, the latency percentile, or a generator that fell behind', () => {
    assert.match(clientSideBreak(experiment, step({ errors: 11 }))!, /error rate 1\.10 % > 1\.00 %/);
    assert.equal(clientSideBreak(experiment, step({ errors: 10 })), undefined, 'exactly at the limit holds');
    assert.match(clientSideBreak(experiment, step({ p95Ms: 300 }))!, /measurements p95 300\.0 ms > 250 ms/);
    assert.match(clientSideBreak(experiment, step({ dropped: 40, late: 20 }))!, /fell behind/);
  });
  it('judges the percentile at or above the SLO\'s (never stops late), and ignores logins', () => {
    const p97 = experimentWith({ ...experiment.spec, slo: { latencyPercentile: 97, latencyThreshold: '250ms', maxErrorRate: 0.01 } }, 'p97');
    assert.match(clientSideBreak(p97, step({ p95Ms: 100, p99Ms: 260 }))!, /p99 260\.0 ms/);
    assert.equal(clientSideBreak(experiment, step({ loginP95Ms: 5000 })), undefined);
  });
});
