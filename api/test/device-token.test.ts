import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeviceTokens } from '../src/auth/device-token.js';

const SECRET = 'device-token-test-secret';

describe('device tokens with the verified-token cache (pure)', () => {
  test('a cached token is still refused once it expires', () => {
    const tokens = new DeviceTokens(SECRET, 60, 10);
    const now = Date.now();
    const { token } = tokens.issue(7, now);
    assert.deepEqual(tokens.verify(token, now), { deviceId: 7, expiresAt: Math.floor(now / 1000) + 60 });
    assert.equal(tokens.verify(token, now + 30_000)?.deviceId, 7, 'served from the cache');
    assert.equal(tokens.verify(token, now + 61_000), undefined);
  });

  test('a cached genuine token lets no forged, tampered or other-secret token through', () => {
    const tokens = new DeviceTokens(SECRET, 60, 10);
    const { token } = tokens.issue(7);
    assert.ok(tokens.verify(token));
    const [payload, signature] = token.split('.') as [string, string];
    const otherDevice = Buffer.from(`8.${Buffer.from(payload, 'base64url').toString().split('.')[1]}`).toString('base64url');
    for (const bad of [`${otherDevice}.${signature}`, `${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`, new DeviceTokens('another-secret-0123456789', 60).issue(7).token, '']) {
      assert.equal(tokens.verify(bad), undefined, bad);
      assert.equal(tokens.verify(bad), undefined, `${bad}, asked again`);
    }
  });

  test('the cache is bounded: the oldest token is evicted and checked in full again', () => {
    const tokens = new DeviceTokens(SECRET, 60, 2);
    const issued = [1, 2, 3].map((id) => tokens.issue(id).token);
    for (const token of issued) assert.ok(tokens.verify(token));
    // All three still verify: the evicted one by its HMAC again.
    for (const [i, token] of issued.entries()) assert.equal(tokens.verify(token)?.deviceId, i + 1);
  });
});
