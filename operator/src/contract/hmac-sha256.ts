/*
 * HMAC-SHA256 (RFC 2104 over FIPS 180-4) of short ASCII messages under one key, in plain
 * JavaScript with preallocated state, for minting device tokens at request rate. node:crypto's
 * createHmac allocates an OpenSSL context per call that only a garbage collection frees: minting a
 * million tokens grew the process by 51 MB of native memory (the V8 heap by 12 MB), and the driver
 * mints one per request once the fleet outgrows its token cache. Here the key's inner and outer
 * states are computed once, and a token costs two compressions and no allocation but its string.
 * The test checks it against node:crypto on many keys and messages.
 */

import { createHash } from 'node:crypto';

/** The first n primes. */
function primes(n: number): number[] {
  const found: number[] = [];
  for (let candidate = 2; found.length < n; candidate++) if (found.every((p) => candidate % p !== 0)) found.push(candidate);
  return found;
}

/** The first 32 bits of the fractional part of x, as FIPS 180-4 derives its constants. */
const fraction32 = (x: number) => Math.floor((x - Math.floor(x)) * 2 ** 32) | 0;

// Round constants: cube roots of the first 64 primes; initial state: square roots of the first 8.
const K = Int32Array.from(primes(64), (p) => fraction32(Math.cbrt(p)));
const IV = Int32Array.from(primes(8), (p) => fraction32(Math.sqrt(p)));

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

/** SHA-256's compression of one 64-byte block (as 16 big-endian words in w[0..15]) into state. */
function compress(state: Int32Array, w: Int32Array): void {
  for (let i = 16; i < 64; i++) {
    const a = w[i - 15]!;
    const b = w[i - 2]!;
    const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
    const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!, e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/** Unpadded base64url of bytes[0..length). */
export function base64urlOf(bytes: Uint8Array, length = bytes.length): string {
  let out = '';
  let i = 0;
  for (; i + 3 <= length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]! + BASE64URL[(n >>> 6) & 63]! + BASE64URL[n & 63]!;
  }
  if (length - i === 1) {
    const n = bytes[i]! << 16;
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]!;
  } else if (length - i === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]! + BASE64URL[(n >>> 6) & 63]!;
  }
  return out;
}

export class HmacSha256 {
  /** Longest message: what fits one block after the inner key block (55 bytes + padding). */
  static readonly MAX_MESSAGE = 55;
  private readonly inner = new Int32Array(8);
  private readonly outer = new Int32Array(8);
  private readonly state = new Int32Array(8);
  private readonly w = new Int32Array(64);
  private readonly digest = new Uint8Array(32);

  constructor(secret: Uint8Array) {
    // RFC 2104: a key longer than the block is hashed first (once per key, so node:crypto is fine here).
    const key = secret.length > 64 ? createHash('sha256').update(secret).digest() : secret;
    for (const [pad, state] of [[0x36, this.inner], [0x5c, this.outer]] as const) {
      state.set(IV);
      for (let i = 0; i < 16; i++) {
        let word = 0;
        for (let j = 0; j < 4; j++) word = (word << 8) | ((key[i * 4 + j] ?? 0) ^ pad);
        this.w[i] = word;
      }
      compress(state, this.w);
    }
  }

  /** Unpadded base64url of HMAC-SHA256(key, message); message: ASCII, at most 55 characters. */
  base64url(message: string): string {
    const length = message.length;
    if (length > HmacSha256.MAX_MESSAGE) throw new Error(`HmacSha256: messages longer than ${HmacSha256.MAX_MESSAGE} characters are not supported (got ${length})`);
    const w = this.w;
    // Inner hash: the key block is in `inner`; this block is the message, 0x80, zeros, bit length.
    w.fill(0, 0, 16);
    for (let i = 0; i < length; i++) {
      const code = message.charCodeAt(i);
      if (code > 0x7f) throw new Error('HmacSha256: the message must be ASCII');
      w[i >> 2] = w[i >> 2]! | (code << (24 - 8 * (i & 3)));
    }
    w[length >> 2] = w[length >> 2]! | (0x80 << (24 - 8 * (length & 3)));
    w[15] = (64 + length) * 8;
    const state = this.state;
    state.set(this.inner);
    compress(state, w);
    // Outer hash: the inner digest (32 bytes), 0x80, zeros, bit length of 64 + 32 bytes.
    for (let i = 0; i < 8; i++) w[i] = state[i]!;
    w[8] = 0x80000000 | 0;
    w.fill(0, 9, 15);
    w[15] = (64 + 32) * 8;
    state.set(this.outer);
    compress(state, w);
    const digest = this.digest;
    for (let i = 0; i < 8; i++) {
      const word = state[i]!;
      digest[i * 4] = word >>> 24;
      digest[i * 4 + 1] = (word >>> 16) & 0xff;
      digest[i * 4 + 2] = (word >>> 8) & 0xff;
      digest[i * 4 + 3] = word & 0xff;
    }
    return base64urlOf(digest);
  }
}
