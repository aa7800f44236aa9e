import type { LoadExperiment } from '../schema/load-experiment.js';
import { deviceSerial, measurementPayload } from '../traffic/payload.js';
import { mintDeviceToken } from '../contract/device-token.js';
import { LruCache } from './lru-cache.js';
import type { DriverEndpoint } from './metrics.js';

/*
 * vegeta's JSON target lines ({"method","url","header":{name:[values]},"body":base64}) for one
 * request. The URL carries the request's in-flight slot as a fragment (#<slot>): HTTP clients
 * never send the fragment, so the API sees a plain path, while vegeta copies the URL into the
 * result, which lets the driver match each result to the moment it wrote the target.
 */

export const ENDPOINT_PATHS: Readonly<Record<DriverEndpoint, string>> = {
  measurements: '/v1/measurements',
  command: '/v1/command',
  login: '/v1/devices/login',
};

export interface TargetOptions {
  experiment: LoadExperiment;
  baseUrls: readonly string[];
  tokenSecret: string;
  deviceId: (index: number) => number;
  tokenExpiresAtS: number;
  tokenCacheSize: number;
}

export class TargetLines {
  private readonly prefixes: Record<DriverEndpoint, string[]>;
  private readonly tokens: LruCache<number, string>;

  constructor(private readonly options: TargetOptions) {
    if (options.baseUrls.length === 0) throw new Error('baseUrls: give at least one API base URL, e.g. http://127.0.0.1:3000');
    const bases = options.baseUrls.map(normaliseBaseUrl);
    const prefix = (method: string, path: string) => bases.map((base) => `{"method":"${method}","url":"${base}${path}#`);
    this.prefixes = {
      measurements: prefix('POST', ENDPOINT_PATHS.measurements),
      command: prefix('GET', ENDPOINT_PATHS.command),
      login: prefix('POST', ENDPOINT_PATHS.login),
    };
    this.tokens = new LruCache(options.tokenCacheSize);
  }

  /** The target line (with its newline) for a request of `device` in slot `id`, scheduled at deviceTimeMs. */
  line(endpoint: DriverEndpoint, id: number, device: number, deviceTimeMs: number): string {
    // Same device, same replica: a device's requests stay on one API process, as behind a sticky balancer.
    const start = this.prefixes[endpoint][device % this.prefixes[endpoint].length]!;
    switch (endpoint) {
      case 'measurements': {
        const body = Buffer.from(JSON.stringify(measurementPayload(this.options.experiment, device, Math.round(deviceTimeMs)))).toString('base64');
        return `${start}${id}","header":{"Authorization":["Bearer ${this.token(device)}"],"Content-Type":["application/json"]},"body":"${body}"}\n`;
      }
      case 'command':
        return `${start}${id}","header":{"Authorization":["Bearer ${this.token(device)}"]}}\n`;
      case 'login': {
        const body = Buffer.from(`{"serial":"${deviceSerial(this.options.experiment, device)}"}`).toString('base64');
        return `${start}${id}","header":{"Content-Type":["application/json"]},"body":"${body}"}\n`;
      }
    }
  }

  token(device: number): string {
    let token = this.tokens.get(device);
    if (token === undefined) {
      token = mintDeviceToken(this.options.tokenSecret, this.options.deviceId(device), this.options.tokenExpiresAtS);
      this.tokens.set(device, token);
    }
    return token;
  }
}

/** "http://127.0.0.1:3000/" -> "http://127.0.0.1:3000"; anything but a plain http(s) origin is refused. */
export function normaliseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`baseUrls: "${text}" is not a URL: give the API's origin, e.g. http://127.0.0.1:3000`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username || url.password) {
    throw new Error(`baseUrls: "${text}" must be a plain http(s) origin with an optional path prefix, e.g. http://127.0.0.1:3000`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}
