/*
 * Seeded integer hashing for the traffic model. Everything random-looking in a plan (device
 * phases, jitter, payload walks) is a pure function of the seed and a few integers, so any part of
 * the traffic can be recomputed anywhere (a k6 VU, the local driver, a test) without shared state.
 *
 * Why a 32-bit integer hash is enough: nothing here faces an adversary, so a cryptographic hash
 * would only cost time; what matters is that nearby inputs (device 41 and 42, minute 7 and 8) give
 * unrelated outputs, which a full-avalanche mixer provides in a handful of multiplications. The
 * finalizer is "lowbias32" (Chris Wellons' hash-prospector), a bijection on 32-bit integers with
 * lower avalanche bias than MurmurHash3's fmix32; several inputs are folded in MurmurHash3-style.
 */

/** A bijective 32-bit mixer: distinct inputs always give distinct outputs. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Hash of a seed and up to three 32-bit words, as an unsigned 32-bit integer. */
export function hash32(seed: number, a: number, b = 0, c = 0): number {
  let h = mix32(seed ^ 0x9e3779b9);
  h = mix32(h ^ Math.imul(a | 0, 0xcc9e2d51));
  h = mix32(h ^ Math.imul(b | 0, 0x1b873593));
  h = mix32(h ^ Math.imul(c | 0, 0xe6546b64));
  return h;
}

/** A uniform number in [0, 1) from the same inputs. */
export function unit(seed: number, a: number, b = 0, c = 0): number {
  return hash32(seed, a, b, c) / 4_294_967_296;
}
