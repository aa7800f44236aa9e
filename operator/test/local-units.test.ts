import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DriverResult, EndpointTotals } from '../src/driver/index.js';
import { ProgressView } from '../src/local/progress.js';
import { clientSideBreak } from '../src/local/run.js';
import { experimentWith } from './support/fixtures.js';

/** Local mode's pure parts: when a breaking-point search stops (the step as the driver saw it), and the progress view. */
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

const ESC = '\u001b';

describe('ProgressView: the live view in a terminal, plain lines elsewhere', () => {
  const snapshot = (elapsedS: number) => ({
    elapsedS, phase: 0, fleet: 1500, offeredRps: 100, sentRps: 100, achievedRps: 99.5, p95Ms: 12.34, p99Ms: 20, errors: 1, late: 2, dropped: 0, inFlight: 3, lagS: 0.01,
  });
  const context = { experiment: 'demo', totalS: 120, phaseName: () => 'stage 1/2 hold' };

  it('redraws three lines in place in a terminal, and leaves them on screen when finished', () => {
    let text = '';
    const view = new ProgressView({ write: (chunk: string) => (text += chunk), isTTY: true }, context);
    view.update(snapshot(1));
    assert.doesNotMatch(text, /\[\d+F/, 'nothing to move over yet');
    assert.equal(text.split('\n').length - 1, 3);
    assert.match(text, /demo {2}█*░+ {2}00:01 \/ 02:00 {2}stage 1\/2 hold/);
    assert.match(text, /fleet 1,500 devices {3}offered 100 rps {3}achieved 99\.5 rps {3}p95 12\.3 ms/);
    assert.match(text, /errors 1 {3}late 2 {3}dropped 0 {3}in flight 3/);
    text = '';
    view.update(snapshot(60));
    assert.ok(text.startsWith(`${ESC}[3F`), 'moves up over the previous view');
    assert.equal(text.split(`${ESC}[2K`).length - 1, 3, 'clears each line it redraws');
    assert.match(text, /█{15}░{15}/, 'half way');
    view.finish();
    text = '';
    view.update(snapshot(61));
    assert.doesNotMatch(text, /\[\d+F/, 'after finish(), output starts below the last view');
    assert.ok(view.cpuSeconds >= 0);
  });

  it('writes a plain line every 5 s when not a terminal (CI logs)', () => {
    const lines: string[] = [];
    const view = new ProgressView({ write: (chunk: string) => lines.push(chunk) }, context);
    for (let s = 0; s <= 12; s++) view.update(snapshot(s));
    assert.equal(lines.length, 3, lines.join(''));
    assert.match(lines[1]!, /^\[00:05\/02:00\] stage 1\/2 hold: fleet 1,500, offered 100 rps, achieved 99\.5 rps, p95 12\.3 ms, errors 1, late 2, dropped 0\n$/);
    assert.ok(!lines.join('').includes(ESC), 'no escape codes in logs');
  });
});
