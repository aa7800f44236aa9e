/*
 * The API's device token (api/src/auth/device-token.ts), composed from two primitives so the same
 * code runs in Node (node:crypto, see token.ts) and in a k6 VU (k6/crypto and k6/encoding, see
 * script/main.ts):
 *
 *   base64url("<deviceId>.<expiresAtUnixSeconds>") + "." + base64url(HMAC-SHA256(secret, thatPayload))
 *
 * base64url without padding on both sides. Only the operator and the API know the secret: the
 * operator gives it to the load generators (LOADLAB_TOKEN_SECRET) so k6 can mint each device's
 * token without logging every device in from every VU. It is a disposable secret made for one
 * experiment's API, never a production one.
 */
export interface TokenPrimitives {
  /** Unpadded base64url of the text's UTF-8 bytes. */
  base64url(text: string): string;
  /** Unpadded base64url of HMAC-SHA256(key = the secret's UTF-8 bytes, message = text). */
  hmacSha256Base64url(secret: string, text: string): string;
}

export function composeDeviceToken(primitives: TokenPrimitives, secret: string, deviceId: number, expiresAtS: number): string {
  const payload = primitives.base64url(`${deviceId}.${expiresAtS}`);
  return `${payload}.${primitives.hmacSha256Base64url(secret, payload)}`;
}

/**
 * A device's key, which it proves itself with at login (api/src/auth/device-key.ts): unpadded
 * base64url of HMAC-SHA256(secret, "loadlab-device-key:" + serial). The load generators derive
 * each simulated device's key from the API's TOKEN_SECRET as provisioning would.
 */
export function composeDeviceKey(primitives: Pick<TokenPrimitives, 'hmacSha256Base64url'>, secret: string, serial: string): string {
  return primitives.hmacSha256Base64url(secret, `loadlab-device-key:${serial}`);
}

/** A token expiry between one and two hours ahead that changes once an hour. */
export function tokenExpiryS(nowMs: number): number {
  return (Math.floor(nowMs / 3_600_000) + 2) * 3600;
}
