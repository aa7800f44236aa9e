import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatErrors, parseExperiment, type LoadExperiment } from '../src/schema/index.js';
import { deviceSerial, measurementPayload, type Measurement } from '../src/traffic/index.js';

function experimentWith(fleet: Record<string, unknown>): LoadExperiment {
  const manifest = {
    apiVersion: 'loadlab.dev/v1alpha1',
    kind: 'LoadExperiment',
    metadata: { name: 'payload' },
    spec: { fleet: { devices: 10_000_000, ...fleet }, load: { stages: [{ devices: 1, duration: '1s' }] } },
  };
  const result = parseExperiment(JSON.stringify(manifest), 'payload.json');
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.experiment;
}

/**
 * The API's acceptance rules for one reading, replicated from
 * api/src/measurements/measurement.schema.ts (the API workspace cannot be imported from here:
 * each workspace builds on its own). Keep the two in step.
 */
function apiProblems(m: Measurement): string[] {
  const problems: string[] = [];
  const keys = ['deviceTime', 'chargeNow', 'chargeFull', 'chargeRate', 'ambientTemp', 'waterTemp', 'waterLevel'];
  if (JSON.stringify(Object.keys(m).sort()) !== JSON.stringify([...keys].sort())) problems.push(`keys ${Object.keys(m).join(',')}`);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(m.deviceTime)) problems.push(`deviceTime ${m.deviceTime}`);
  const within = (name: keyof Measurement, min: number, max: number, minExclusive = false) => {
    const value = m[name] as number;
    if (typeof value !== 'number' || !Number.isFinite(value) || value > max || (minExclusive ? value <= min : value < min)) {
      problems.push(`${name} ${value}`);
    }
  };
  within('chargeNow', 0, 100_000);
  within('chargeFull', 0, 100_000, true);
  within('chargeRate', -10_000, 10_000);
  within('ambientTemp', -50, 70);
  within('waterTemp', -20, 110);
  within('waterLevel', 0, 20);
  if (m.chargeNow > m.chargeFull) problems.push(`chargeNow ${m.chargeNow} > chargeFull ${m.chargeFull}`);
  return problems;
}

const START = Date.parse('2026-11-27T00:00:00Z');
const HOUR = 3_600_000;

describe('measurement payloads', () => {
  for (const realism of [true, false]) {
    it(`always pass the API's validation (realism ${realism ? 'on' : 'off'}): 2,000 devices over 3 days`, () => {
      const experiment = experimentWith({ seed: 42, realism: { enabled: realism } });
      for (let device = 0; device < 2000; device++) {
        // Different times per device, so every part of every cycle is sampled somewhere.
        for (let sample = 0; sample < 12; sample++) {
          const at = START + ((device * 7919 + sample * 6.1 * HOUR) % (72 * HOUR));
          const payload = measurementPayload(experiment, device * 4999, at);
          assert.deepEqual(apiProblems(payload), [], `device ${device * 4999} at ${new Date(at).toISOString()}`);
        }
      }
    });
  }

  it('is a pure function of (seed, device, time)', () => {
    const a = experimentWith({ seed: 3 });
    const b = experimentWith({ seed: 3 });
    const other = experimentWith({ seed: 4 });
    const at = new Date(START + 5 * HOUR);
    assert.deepEqual(measurementPayload(a, 123, at), measurementPayload(b, 123, at.getTime()));
    assert.notDeepEqual(measurementPayload(a, 123, at), measurementPayload(other, 123, at));
    assert.notDeepEqual(measurementPayload(a, 123, at), measurementPayload(a, 124, at));
    assert.equal(measurementPayload(a, 123, at).deviceTime, '2026-11-27T05:00:00.000Z');
  });

  it('walks: over a day the battery drains and charges, the reservoir fills and empties, the water heats and cools', () => {
    const experiment = experimentWith({ seed: 9 });
    for (const device of [0, 1, 77, 999_999]) {
      const day = Array.from({ length: 24 * 60 }, (_, minute) => measurementPayload(experiment, device, START + minute * 60_000));
      const range = (key: keyof Measurement) => {
        const values = day.map((m) => m[key] as number);
        return Math.max(...values) - Math.min(...values);
      };
      assert.ok(day.some((m) => m.chargeRate < 0) && day.some((m) => m.chargeRate > 0), `device ${device}: drains and charges`);
      assert.ok(range('chargeNow') > 0.3 * day[0]!.chargeFull, `device ${device}: battery moves`);
      assert.ok(range('waterLevel') > 0.4, `device ${device}: reservoir fills and empties`);
      assert.ok(day.some((m) => m.waterTemp > 95) && day.some((m) => m.waterTemp < 40), `device ${device}: water boils and cools`);
      assert.ok(range('ambientTemp') > 1, `device ${device}: the room warms by day`);
      // A walk, not noise: a minute apart, the battery moves by at most a few percent.
      for (let i = 1; i < day.length; i++) {
        const step = Math.abs(day[i]!.chargeNow - day[i - 1]!.chargeNow);
        assert.ok(step < 0.02 * day[i]!.chargeFull, `device ${device}: battery jumped ${step} Wh in a minute`);
      }
    }
  });

  it('reports one constant, plausible reading for every device when realism is off', () => {
    const experiment = experimentWith({ realism: { enabled: false } });
    const { deviceTime: _a, ...first } = measurementPayload(experiment, 1, START);
    const { deviceTime: _b, ...later } = measurementPayload(experiment, 500, START + 17 * HOUR);
    assert.deepEqual(first, later);
  });
});

describe('device serials', () => {
  it('are <prefix>-<seed>-<index padded to 8 digits>, valid for the API\'s login', () => {
    const experiment = experimentWith({ seed: 7, serialPrefix: 'kettle' });
    assert.equal(deviceSerial(experiment, 42), 'kettle-7-00000042');
    assert.equal(deviceSerial(experiment, 9_999_999), 'kettle-7-09999999');
    const longest = deviceSerial(experimentWith({ seed: 4_294_967_295, serialPrefix: 'k'.repeat(64) }), 9_999_999);
    // The login schema in api/src/devices/login.schema.ts: 1..128 of [A-Za-z0-9._:-].
    assert.match(longest, /^[A-Za-z0-9._:-]{1,128}$/);
  });

  it('differ between seeds, so experiments that keep the database do not share devices', () => {
    assert.notEqual(deviceSerial(experimentWith({ seed: 1 }), 5), deviceSerial(experimentWith({ seed: 2 }), 5));
  });
});
