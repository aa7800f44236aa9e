import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { composeDeviceKey, composeDeviceToken, deviceKey, mintDeviceToken, tokenExpiryS } from '../src/contract/index.js';

/*
 * Known tokens, computed once by the API's own class (api/src/auth/device-token.ts, compiled):
 *   node -e "import('/work/main/api/dist/src/auth/device-token.js').then(m =>
 *     console.log(new m.DeviceTokens('s'.repeat(16), 60).issue(42, 1e12)))"
 * (issue(deviceId, nowMs) expires at floor(nowMs / 1000) + ttl). Hard-coded rather than imported:
 * the operator's build must not reach into the api workspace.
 */
const API_TOKENS = [
  { secret: 's'.repeat(16), deviceId: 42, expiresAtS: 1_000_000_060, token: 'NDIuMTAwMDAwMDA2MA.-zs6ZM38SkoiWDtdYPralxyn8dQj3yHZGcbw64-VYtA' },
  // new DeviceTokens('loadlab-tëst-secret-✓', 3600).issue(1234567, 1.7e12): a non-ASCII secret is used as UTF-8.
  { secret: 'loadlab-tëst-secret-✓', deviceId: 1_234_567, expiresAtS: 1_700_003_600, token: 'MTIzNDU2Ny4xNzAwMDAzNjAw.dW3bgistvy5kJPfpbpw8wG-ztd0r3VhHut076YUjZow' },
  // new DeviceTokens('0123456789abcdef0123456789abcdef', 86400).issue(1, 1767225600000)
  { secret: '0123456789abcdef0123456789abcdef', deviceId: 1, expiresAtS: 1_767_312_000, token: 'MS4xNzY3MzEyMDAw.CvTQpWyQ3-B4_wETvAnErsQitAI17fvViaWhhpozalI' },
];

/*
 * Known device keys, computed once by the API's own class (api/src/auth/device-key.ts, compiled):
 *   node -e "import('/work/main/api/dist/src/auth/device-key.js').then(m =>
 *     console.log(new m.DeviceKeys('s'.repeat(16)).keyOf('kettle-000042')))"
 * The second serial is longer than one HMAC block's message (the driver's fast HMAC refuses those).
 */
const API_KEYS = [
  { secret: 's'.repeat(16), serial: 'kettle-000042', key: 'hzTaCbkXW8DBbicauZivtxg2SyLjCYrz5HnhDi2ZLFc' },
  { secret: 'loadlab-tëst-secret-✓', serial: `lab:kettle.7_x-${'y'.repeat(100)}`, key: 'uTKLeF8bS2KpK-Ma6XMu8nusAScczjKW5cYq6jPG7YQ' },
];

describe('device keys the load generators log in with', () => {
  for (const known of API_KEYS) {
    it(`are byte-identical to the API's DeviceKeys.keyOf (${known.serial.slice(0, 20)})`, () => {
      assert.equal(deviceKey(known.secret, known.serial), known.key);
    });
  }

  it('are one HMAC of "loadlab-device-key:" + serial, as k6 computes it (hmac base64rawurl)', () => {
    const calls: string[] = [];
    const key = composeDeviceKey({ hmacSha256Base64url: (secret, text) => (calls.push(`${secret}|${text}`), 'KEY') }, 'secret', 'kettle-1');
    assert.deepEqual(calls, ['secret|loadlab-device-key:kettle-1']);
    assert.equal(key, 'KEY');
  });
});

describe('device tokens minted by the load generators', () => {
  for (const known of API_TOKENS) {
    it(`are byte-identical to the API's DeviceTokens.issue (device ${known.deviceId})`, () => {
      assert.equal(mintDeviceToken(known.secret, known.deviceId, known.expiresAtS), known.token);
    });
  }

  it('are composed from unpadded base64url, as k6 builds them (b64encode rawurl, hmac base64rawurl)', () => {
    const calls: string[] = [];
    const token = composeDeviceToken(
      {
        base64url: (text) => {
          calls.push(`b64:${text}`);
          return Buffer.from(text).toString('base64url');
        },
        hmacSha256Base64url: (secret, text) => {
          calls.push(`hmac:${secret}:${text}`);
          return 'SIG';
        },
      },
      'secret',
      7,
      99,
    );
    assert.deepEqual(calls, ['b64:7.99', `hmac:secret:${Buffer.from('7.99').toString('base64url')}`]);
    assert.equal(token, `${Buffer.from('7.99').toString('base64url')}.SIG`);
    assert.doesNotMatch(mintDeviceToken('x'.repeat(16), 123, 456), /[=+/]/);
  });

  it('expire one to two hours ahead, changing once an hour', () => {
    const hour = 3_600_000;
    for (const now of [0, 1, hour - 1, hour, 1.7e12, 1.7e12 + 1234567]) {
      const ahead = tokenExpiryS(now) - now / 1000;
      assert.ok(ahead > 3600 && ahead <= 7200, `${ahead} s ahead at ${now}`);
    }
    assert.equal(tokenExpiryS(5 * hour), tokenExpiryS(6 * hour - 1));
  });
});
