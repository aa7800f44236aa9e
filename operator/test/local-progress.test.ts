/** Local mode's progress view (pure). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { phaseLabel, ProgressView } from '../src/local/progress.js';
import { buildTrafficPlan } from '../src/traffic/index.js';
import { FIVE_STAGES, experimentWith } from './support/fixtures.js';

const ESC = '\u001b';

describe('ProgressView: the live view in a terminal, plain lines elsewhere', () => {
  const snapshot = (elapsedS: number) => ({
    elapsedS, phase: 0, fleet: 1500, offeredRps: 100, sentRps: 100, achievedRps: 99.5, p95Ms: 12.34, p99Ms: 20, errors: 1, late: 2, dropped: 0, inFlight: 3, lagS: 0.01, sendLagP99Ms: 4, concurrency: 64,
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
    assert.match(text, /errors 1 {3}late 2 {3}dropped 0 {3}in flight 3 of 64/);
    text = '';
    view.update(snapshot(60));
    assert.ok(text.startsWith(`${ESC}[3F`), 'moves up over the previous view');
    assert.equal(text.split(`${ESC}[2K`).length - 1, 3, 'clears each line it redraws');
    assert.match(text, /█{15}░{15}/, 'half way');
    view.finish();
    text = '';
    view.update(snapshot(61));
    assert.doesNotMatch(text, /\[\d+F/, 'after finish(), output starts below the last view');
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

describe('phaseLabel: what the progress view calls where the schedule is', () => {
  it('names the stage of a run of stages, the step of a search, and the end of the schedule (the driver\'s phase -1) as the wait for requests in flight', () => {
    const stages = buildTrafficPlan(experimentWith(FIVE_STAGES, 'stages'));
    assert.deepEqual(stages.phases.map((_, i) => phaseLabel(stages, i)), ['stage 1/5 ramp', 'stage 2/5 hold', 'stage 3/5 ramp', 'stage 4/5 hold', 'stage 5/5 ramp']);
    const search = buildTrafficPlan(experimentWith({ fleet: { devices: 40 }, load: { search: { startDevices: 20, step: { devices: 20 }, maxDevices: 40, hold: '30s', rampUp: '5s' } } }, 'search'));
    assert.deepEqual(search.phases.map((_, i) => phaseLabel(search, i)), ['step 1 ramp', 'step 1 hold', 'step 2 ramp', 'step 2 hold']);
    assert.equal(phaseLabel(stages, -1), 'load done, answering the requests in flight');
  });
});
