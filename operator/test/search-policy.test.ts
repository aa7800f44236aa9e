import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgedStepTransition } from '../src/controller/load-step.js';
import { runUnits, type Checkpoint } from '../src/controller/run-units.js';
import { searchStepByStep } from '../src/local/local-run.js';
import { buildTrafficPlan } from '../src/traffic/plan.js';
import { afterSearchStep, type StepOutcome } from '../src/traffic/search-policy.js';
import { experimentWith } from './support/fixtures.js';

// A search of five steps (500, 1000, 2000, 4000, 5000 devices).
const plan = buildTrafficPlan(
  experimentWith({ fleet: { devices: 5000 }, load: { search: { startDevices: 500, step: { factor: 2 }, maxDevices: 5000, hold: '30s', rampUp: '10s' } } }, 'search-policy'),
);
const units = runUnits(plan);

const judgements: Record<string, StepOutcome[]> = {
  'holds, then breaks at the third step': ['Held', 'Held', 'Broke', 'Held', 'Held'],
  'breaks at once': ['Broke', 'Held', 'Held', 'Held', 'Held'],
  'holds to the end': ['Held', 'Held', 'Held', 'Held', 'Held'],
  'cannot judge the first steps, then breaks': ['Undetermined', 'Undetermined', 'Held', 'Broke', 'Held'],
  'cannot judge the last step': ['Held', 'Held', 'Held', 'Held', 'Undetermined'],
};

/** Local mode: its step loop, with each step's judgement scripted. */
async function localSteps(outcomes: readonly StepOutcome[]): Promise<number[]> {
  return searchStepByStep(units.length, { run: async () => 'ran', judge: async (step) => outcomes[step]! });
}

/** The operator: one checkpoint per step, the status transition after each judgement, until it leaves Running. */
function controllerSteps(outcomes: readonly StepOutcome[]): number[] {
  let timeline: Checkpoint[] = [];
  for (const unit of units) {
    timeline = [...timeline, { unit: unit.unit, kind: 'TestRun', name: `t${unit.unit}`, phases: { ...unit.phases }, startTime: '2026-12-01T00:00:00Z', endTime: '2026-12-01T00:01:00Z' }];
    const next = judgedStepTransition(plan, timeline, units, outcomes[unit.unit]!, 'the verdict');
    timeline = next.fields!.timeline!;
    if (next.to !== 'Running') break;
  }
  return timeline.map((checkpoint) => checkpoint.unit);
}

describe('the search policy: local mode and the operator stop at the same step for the same judgements', () => {
  assert.equal(units.length, 5);
  for (const [name, outcomes] of Object.entries(judgements)) {
    it(name, async () => {
      const local = await localSteps(outcomes);
      assert.deepEqual(controllerSteps(outcomes), local);
      const broke = outcomes.indexOf('Broke');
      assert.deepEqual(local, Array.from({ length: broke >= 0 ? broke + 1 : units.length }, (_, i) => i), 'up to and including the first step that broke, or all of them');
    });
  }

  it('the rule itself: stop at a break or after the last step, go on otherwise (an undetermined step included)', () => {
    assert.deepEqual(afterSearchStep(0, 3, 'Held'), { action: 'next', step: 1 });
    assert.deepEqual(afterSearchStep(1, 3, 'Undetermined'), { action: 'next', step: 2 });
    assert.deepEqual(afterSearchStep(1, 3, 'Broke'), { action: 'stop', reason: 'broke' });
    assert.deepEqual(afterSearchStep(2, 3, 'Held'), { action: 'stop', reason: 'completed' });
    assert.throws(() => afterSearchStep(3, 3, 'Held'), /not one of the plan's 3 steps/);
  });
});
