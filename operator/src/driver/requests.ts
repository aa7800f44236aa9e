import { deviceKey, mintDeviceToken } from '../contract/device-token.js';
import type { LoadExperiment } from '../schema/load-experiment.js';
import { deviceSerial, measurementPayload } from '../traffic/payload.js';
import { TokenCache } from './token-cache.js';

/*
 * The HTTP requests the fleet's devices make, as the engine sends them. Device tokens are minted
 * here with the API's TOKEN_SECRET (the format of contract/device-token.ts), so no device has to
 * log in before it sends; a bounded cache keeps some (token-cache.ts), never a table of the whole fleet.
 */

export const DRIVER_ENDPOINTS = ['measurements', 'command', 'login'] as const;
export type DriverEndpoint = (typeof DRIVER_ENDPOINTS)[number];

const ROUTES: Readonly<Record<DriverEndpoint, string>> = {
  measurements: '/v1/measurements',
  command: '/v1/command',
  login: '/v1/devices/login',
};

export interface DeviceRequest {
  /** Index into the API origins: a device's requests stay on one replica, as behind a sticky balancer. */
  origin: number;
  method: 'GET' | 'POST';
  path: string;
  /** Flat [name, value, ...]. */
  headers: string[];
  body: string | null;
}

export interface RequestOptions {
  experiment: LoadExperiment;
  /** API base URLs: an origin and an optional path prefix each. */
  baseUrls: readonly string[];
  tokenSecret: string;
  /** The API's id of device index i. */
  deviceId: (index: number) => number;
  tokenExpiresAtS: number;
  tokenCacheSize: number;
}

export class DeviceRequests {
  /** The origins the engine opens pools to, in baseUrls order. */
  readonly origins: readonly string[];
  private readonly prefixes: readonly string[];
  private readonly tokens: TokenCache;

  constructor(private readonly options: RequestOptions) {
    if (options.baseUrls.length === 0) throw new Error('baseUrls: give at least one API base URL, e.g. http://127.0.0.1:3000');
    const bases = options.baseUrls.map(parseBaseUrl);
    this.origins = bases.map((base) => base.origin);
    this.prefixes = bases.map((base) => base.prefix);
    this.tokens = new TokenCache(options.tokenCacheSize, (device) => flat(`Bearer ${mintDeviceToken(options.tokenSecret, options.deviceId(device), options.tokenExpiresAtS)}`));
  }

  /** The request of `endpoint` that device index `device` sends at deviceTimeMs (unix ms). */
  build(endpoint: DriverEndpoint, device: number, deviceTimeMs: number): DeviceRequest {
    const origin = device % this.origins.length;
    const path = this.prefixes[origin]! + ROUTES[endpoint];
    switch (endpoint) {
      case 'measurements': {
        const body = JSON.stringify(measurementPayload(this.options.experiment, device, Math.round(deviceTimeMs)));
        return { origin, method: 'POST', path, headers: ['authorization', this.authorization(device), 'content-type', 'application/json'], body };
      }
      case 'command':
        return { origin, method: 'GET', path, headers: ['authorization', this.authorization(device)], body: null };
      case 'login': {
        const serial = deviceSerial(this.options.experiment, device);
        return { origin, method: 'POST', path, headers: ['content-type', 'application/json'], body: JSON.stringify({ serial, key: deviceKey(this.options.tokenSecret, serial) }) };
      }
    }
  }

  /** Device index `device`'s Authorization header value, "Bearer <token>". */
  authorization(device: number): string {
    return this.tokens.get(device);
  }
}

/**
 * The same text as one flat string. A token is built by concatenation, which V8 keeps as a tree of
 * its pieces; a cache of 100,000 such trees held 100 MB more than flat strings would (peak RSS with
 * 1,000,000 devices against 1,000).
 */
function flat(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

/** "http://127.0.0.1:3000/api/" -> origin http://127.0.0.1:3000, prefix /api; anything but plain http(s) is refused. */
export function parseBaseUrl(text: string): { origin: string; prefix: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`baseUrls: "${text}" is not a URL: give the API's origin, e.g. http://127.0.0.1:3000`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username || url.password) {
    throw new Error(`baseUrls: "${text}" must be a plain http(s) origin with an optional path prefix, e.g. http://127.0.0.1:3000`);
  }
  return { origin: url.origin, prefix: url.pathname.replace(/\/+$/, '') };
}
