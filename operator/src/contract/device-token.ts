import { createHmac } from 'node:crypto';
import { composeDeviceKey, composeDeviceToken, type TokenPrimitives } from './device-token-format.js';
import { HmacSha256 } from './hmac-sha256.js';

// The secret's HMAC, keyed once per secret (hmac-sha256.ts: node:crypto's createHmac costs 21 µs
// per token with a string key and leaves native memory behind per call; this costs a few µs and
// none), for the driver mints a token per request once the fleet outgrows its token cache.
let lastSecret: string | undefined;
let lastHmac: HmacSha256 | undefined;
function hmacOf(secret: string): HmacSha256 {
  if (secret !== lastSecret || !lastHmac) {
    lastHmac = new HmacSha256(Buffer.from(secret, 'utf8'));
    lastSecret = secret;
  }
  return lastHmac;
}

const nodePrimitives: TokenPrimitives = {
  base64url: (text) => Buffer.from(text, 'utf8').toString('base64url'),
  hmacSha256Base64url: (secret, text) => hmacOf(secret).base64url(text),
};

/** The token the API would issue to `deviceId`, valid until `expiresAtS` (unix seconds). */
export function mintDeviceToken(secret: string, deviceId: number, expiresAtS: number): string {
  return composeDeviceToken(nodePrimitives, secret, deviceId, expiresAtS);
}

/**
 * The key device `serial` logs in with. node:crypto's HMAC: a serial may be longer than the one
 * block HmacSha256 takes, and a device logs in once, so the cost does not matter here.
 */
export function deviceKey(secret: string, serial: string): string {
  return composeDeviceKey({ hmacSha256Base64url: (key, text) => createHmac('sha256', key).update(text).digest('base64url') }, secret, serial);
}
