/**
 * A bounded cache of device tokens, direct-mapped: device d may live in slot d mod capacity, and
 * the first device to take a slot keeps it. A token is a pure function of its device, so there is
 * no order to keep, no allocation on a hit, and a miss costs one mint (2.6 µs). A fleet up to
 * `capacity` devices (indices 0..capacity-1) mints each token once; a larger one hits for the
 * devices that hold slots and mints the others' tokens per request, which die young. Replacing
 * entries instead would hit no more often on a fleet that cycles through all its devices, and
 * would turn every minted token into long-lived garbage (measured: peak RSS 1.4x at 1,000,000
 * devices against 1,000). An LRU on a Map also cost 140 µs per miss there (the Map's deleted
 * entries pile up at the front of its order).
 */
export class TokenCache {
  private readonly devices: Int32Array;
  private readonly tokens: (string | undefined)[];

  constructor(
    readonly capacity: number,
    private readonly mint: (device: number) => string,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new Error(`token cache capacity must be a whole number >= 1, got ${capacity}`);
    this.devices = new Int32Array(capacity).fill(-1);
    this.tokens = new Array<string | undefined>(capacity).fill(undefined);
  }

  /** Device index `device`'s token (>= 0), minted on a miss. */
  get(device: number): string {
    const slot = device % this.capacity;
    const holder = this.devices[slot];
    if (holder === device) return this.tokens[slot]!;
    const token = this.mint(device);
    if (holder === -1) {
      this.devices[slot] = device;
      this.tokens[slot] = token;
    }
    return token;
  }
}
