import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * A device proves who it is at login with its key: HMAC-SHA256(TOKEN_SECRET, "loadlab-device-key:"
 * + serial), unpadded base64url (43 characters), computed once when the device is provisioned and
 * flashed into it. Knowing a serial is then not enough to get that device's token and commands.
 * The load generators derive each simulated device's key the same way (operator/src/contract/
 * device-token-format.ts). The prefix keeps a key from ever being a token signature: those sign
 * base64url text, which has no colon.
 */
export class DeviceKeys {
  private readonly key: KeyObject;

  constructor(secret: string) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  keyOf(serial: string): string {
    return createHmac('sha256', this.key).update(`loadlab-device-key:${serial}`).digest('base64url');
  }

  /** Whether `key` is the serial's key (compared in constant time). */
  matches(serial: string, key: string): boolean {
    const expected = Buffer.from(this.keyOf(serial), 'base64url');
    const given = Buffer.from(key, 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
