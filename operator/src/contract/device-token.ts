import { createHmac } from 'node:crypto';
import { composeDeviceToken, type TokenPrimitives } from './device-token-format.js';

const nodePrimitives: TokenPrimitives = {
  base64url: (text) => Buffer.from(text, 'utf8').toString('base64url'),
  hmacSha256Base64url: (secret, text) => createHmac('sha256', Buffer.from(secret, 'utf8')).update(text).digest('base64url'),
};

/** The token the API would issue to `deviceId`, valid until `expiresAtS` (unix seconds). */
export function mintDeviceToken(secret: string, deviceId: number, expiresAtS: number): string {
  return composeDeviceToken(nodePrimitives, secret, deviceId, expiresAtS);
}
