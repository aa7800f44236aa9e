/*
 * The k6 entry point of a loadlab experiment. bundle.ts bundles it with the traffic model into one
 * self-contained file per experiment and defines LOADLAB_CONFIG at the top of that file: the
 * experiment's ScriptConfig (the plan, the seed, the routes, the k6 options). It runs inside k6 (never under Node here: k6 is
 * AGPL and this workplace does not run it); tsconfig.k6.json type-checks it against @types/k6.
 *
 * Runner environment (set by the TestRun, testrun.ts):
 *   LOADLAB_TOKEN_SECRET  the API's TOKEN_SECRET, to mint device tokens (required)
 *   LOADLAB_RUN_ID        tags every metric with run=<id>
 *   LOADLAB_API_URL       the API's base URL (default: the one rendered into the script)
 */
import { check } from 'k6';
import { hmac } from 'k6/crypto';
import { b64encode } from 'k6/encoding';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Gauge } from 'k6/metrics';
import type { Options } from 'k6/options';
import { deviceSerial, measurementPayload } from '../../traffic/payload.js';
import type { ScriptConfig } from '../script-config.js';
import type { K6Endpoint } from '../options.js';
import { IterationDevices, deviceId, slotOrderFor } from '../../traffic/schedule.js';
import { composeDeviceKey, composeDeviceToken, tokenExpiryS, type TokenPrimitives } from '../../contract/device-token-format.js';

declare const LOADLAB_CONFIG: ScriptConfig;
const CONFIG: ScriptConfig = LOADLAB_CONFIG;

export const options: Options = {
  ...CONFIG.options,
  tags: { ...CONFIG.options.tags, run: __ENV.LOADLAB_RUN_ID || 'manual' },
};

const API_URL = (__ENV.LOADLAB_API_URL || CONFIG.apiUrl).replace(/\/+$/, '');
const FLEET = { spec: { fleet: { seed: CONFIG.fleet.seed, serialPrefix: CONFIG.fleet.serialPrefix, realism: { enabled: CONFIG.fleet.realism } } } };

function schedule(endpoint: 'measurements' | 'command'): IterationDevices {
  return new IterationDevices(CONFIG.phases, CONFIG.range.offsetS, {
    intervalS: CONFIG.fleet.intervalS[endpoint],
    order: slotOrderFor(CONFIG.fleet.seed, endpoint, CONFIG.fleet.jitter),
  });
}
const SCHEDULES = { measurements: schedule('measurements'), command: schedule('command') };

const k6Primitives: TokenPrimitives = {
  base64url: (text) => b64encode(text, 'rawurl'),
  hmacSha256Base64url: (secret, text) => hmac('sha256', secret, text, 'base64rawurl'),
};

/** Minted locally: the operator registered device i as id i+1 and shares the API's secret. */
function authorization(device: number): string {
  return `Bearer ${composeDeviceToken(k6Primitives, tokenSecret(), deviceId(device), tokenExpiryS(Date.now()))}`;
}

/** The API's TOKEN_SECRET: device tokens and device keys are derived from it. */
function tokenSecret(): string {
  const secret = __ENV.LOADLAB_TOKEN_SECRET;
  if (!secret) {
    throw new Error('LOADLAB_TOKEN_SECRET is not set: give the runners the TOKEN_SECRET of the experiment\'s API');
  }
  return secret;
}

function requestParams(endpoint: K6Endpoint, headers: Record<string, string>) {
  // `name` is the route template, so metrics never carry per-device URLs.
  return { headers, tags: { endpoint, name: CONFIG.routes[endpoint] }, timeout: CONFIG.requestTimeout };
}

const loginMismatches = new Counter('loadlab_login_device_mismatch');
// The fleet the plan has now (k6_loadlab_fleet_devices in Prometheus): the dashboard's x-axis of
// the story. Every runner reports the whole fleet, so take the max across runners.
const fleetDevices = new Gauge('loadlab_fleet_devices');

/** POST /v1/measurements: the device's reading now, from its deterministic random walk. */
export function measurements(): void {
  const { device, planTimeS } = SCHEDULES.measurements.forIteration(exec.scenario.iterationInTest);
  fleetDevices.add(Math.round(SCHEDULES.measurements.devicesAt(planTimeS)));
  const body = JSON.stringify(measurementPayload(FLEET, device, Date.now()));
  const response = http.post(
    `${API_URL}${CONFIG.routes.measurements}`,
    body,
    requestParams('measurements', { Authorization: authorization(device), 'Content-Type': 'application/json' }),
  );
  check(response, { 'measurement accepted (201)': (r) => r.status === 201 }, { endpoint: 'measurements' });
}

/** GET /v1/command: what the device should do next. */
export function command(): void {
  const { device } = SCHEDULES.command.forIteration(exec.scenario.iterationInTest);
  const response = http.get(`${API_URL}${CONFIG.routes.command}`, requestParams('command', { Authorization: authorization(device) }));
  check(response, { 'command served (200)': (r) => r.status === 200 }, { endpoint: 'command' });
}

/** POST /v1/devices/login once per device as it joins: the real login flow, checked against the registration. */
export function login(): void {
  const index = exec.scenario.iterationInTest;
  if (index >= CONFIG.login.devices) return; // rounding of the login rate (see options.ts) ran past the plan
  const device = CONFIG.login.firstDevice + index;
  const serial = deviceSerial(FLEET, device);
  const response = http.post(`${API_URL}${CONFIG.routes.login}`, JSON.stringify({ serial, key: composeDeviceKey(k6Primitives, tokenSecret(), serial) }), {
    ...requestParams('login', { 'Content-Type': 'application/json' }),
    responseType: 'text',
  });
  const ok = check(
    response,
    {
      'login succeeded (200)': (r) => r.status === 200,
      'login returned the registered device id': (r) => r.status === 200 && loggedInAs(r.body) === deviceId(device),
    },
    { endpoint: 'login' },
  );
  if (!ok && response.status === 200) loginMismatches.add(1, { endpoint: 'login' });
}

function loggedInAs(body: unknown): number | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && 'deviceId' in parsed && typeof parsed.deviceId === 'number' ? parsed.deviceId : undefined;
  } catch {
    return undefined;
  }
}
