import { z } from 'zod';
import { loginSchema } from '../devices/login.schema.js';
import { measurementSchema, type IngestLimits } from '../measurements/measurement.schema.js';

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { target: 'openapi-3.0', unrepresentable: 'any' });
const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});
const unavailable = { ...error('Database unavailable or the service is overloaded; retry after the Retry-After header.'), headers: { 'Retry-After': { schema: { type: 'integer' } } } };
const auth = [{ deviceToken: [] }];
const timeout = error('The headers (HTTP_HEADERS_TIMEOUT_MS) or the whole request (HTTP_REQUEST_TIMEOUT_MS) did not arrive in time; the connection is closed.');

/**
 * The OpenAPI 3 document served at GET /openapi.json. Request schemas are generated from the same
 * zod schemas that validate requests, so the document cannot drift from what the API accepts.
 */
export function openApiDocument({ maxBatch, maxAgeHours, maxSkewSeconds }: IngestLimits) {
  const measurement = json(measurementSchema);
  // The time window is checked against the server's clock, which a JSON schema cannot express: said in words.
  const deviceTime = measurement.properties?.deviceTime;
  if (deviceTime && typeof deviceTime === 'object') {
    deviceTime.description = `When the device took the reading (ISO 8601 with zone): at most ${maxAgeHours} h before the server's clock and at most ${maxSkewSeconds} s after it; outside that window the reading is refused with 400.`;
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'loadlab model IoT API',
      version: '1.0.0',
      description: 'A fleet of battery-powered kettles reports measurements and polls for commands. The system under test of loadlab experiments.',
    },
    components: {
      securitySchemes: { deviceToken: { type: 'http', scheme: 'bearer', description: 'The token from POST /v1/devices/login.' } },
      schemas: {
        Login: json(loginSchema),
        Measurement: measurement,
        Error: {
          type: 'object',
          required: ['statusCode', 'message'],
          properties: {
            statusCode: { type: 'integer' },
            error: { type: 'string' },
            message: { type: 'string' },
            issues: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, reason: { type: 'string' } } } },
          },
        },
      },
    },
    paths: {
      '/v1/devices/login': {
        post: {
          summary: 'Log a device in with its serial and key (registering it on first use) and get a signed token.',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Login' } } } },
          responses: {
            200: {
              description: 'The device token, checked on every request without a database round trip.',
              content: { 'application/json': { schema: { type: 'object', properties: { deviceId: { type: 'integer' }, token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' } } } } },
            },
            400: error('A field is missing or invalid (the key too, unless the API runs with DEVICE_LOGIN=serial); `issues` names each field and the reason.'),
            401: error("The key is not the serial's device key."),
            408: timeout,
            413: error('The body is larger than MAX_BODY_BYTES.'),
            415: error('The body is not application/json.'),
            503: unavailable,
          },
        },
      },
      '/v1/measurements': {
        post: {
          summary: 'Store one measurement, or a batch a device buffered while offline.',
          description: `Acknowledged (201) only after the rows are committed. A retried measurement (same device, deviceTime and values) is acknowledged but stored once; one with the same device and deviceTime but other values is refused with 409. A batch holds at most ${maxBatch} measurements.`,
          security: auth,
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/Measurement' }, { type: 'array', minItems: 1, maxItems: maxBatch, items: { $ref: '#/components/schemas/Measurement' } }] } } },
          },
          responses: {
            201: { description: 'Committed: `accepted` readings are stored (retries of stored readings included).', content: { 'application/json': { schema: { type: 'object', properties: { accepted: { type: 'integer' } } } } } },
            400: error(`A field is invalid (type, range, chargeNow > chargeFull, a deviceTime outside its window), or a batch is empty or holds more than ${maxBatch} measurements; \`issues\` names each field and the reason.`),
            401: error('No valid device token.'),
            408: timeout,
            409: {
              description: 'Some readings contradict the stored reading of the same device and deviceTime (readings are never overwritten) and were not stored; the request\'s other readings were. `issues` names each refused reading, `accepted` counts the stored ones.',
              content: { 'application/json': { schema: { allOf: [{ $ref: '#/components/schemas/Error' }, { type: 'object', properties: { accepted: { type: 'integer' } } }] } } },
            },
            413: error('The body is larger than MAX_BODY_BYTES.'),
            415: error('The body is not application/json.'),
            503: unavailable,
          },
        },
      },
      '/v1/command': {
        get: {
          summary: "The device's next command: the oldest due one (delivered once), or the no-op.",
          security: auth,
          responses: {
            200: {
              description: 'chargeOn/fillOn: true = switch on, false = switch off, null = leave as is; flushLitres: water to flush. The no-op has id null.',
              content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'integer', nullable: true }, chargeOn: { type: 'boolean', nullable: true }, fillOn: { type: 'boolean', nullable: true }, flushLitres: { type: 'number' }, notBefore: { type: 'string', format: 'date-time', nullable: true } } } } },
            },
            401: error('No valid device token.'),
            503: unavailable,
          },
        },
      },
      '/v1/stats': {
        get: {
          summary: 'Fleet statistics, computed from rollups so the cost does not grow with history.',
          responses: {
            200: {
              description: 'totalChargeWh, totalWaterLitres and totalWaterEnergyKWh use the latest reading of each device. Water energy is the heat stored above ambient: litres × 4186 J/(kg·K) × max(0, water − ambient), in kWh. waterTempByHour is by UTC hour of the device time, with the sample standard deviation.',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            503: unavailable,
          },
        },
      },
      '/healthz': { get: { summary: 'Liveness: the process serves HTTP.', responses: { 200: { description: 'Alive.' } } } },
      '/readyz': { get: { summary: 'Readiness: the database answers and the process is not shutting down.', responses: { 200: { description: 'Ready.' }, 503: unavailable } } },
      '/metrics': { get: { summary: 'Prometheus metrics (text exposition format).', responses: { 200: { description: 'Metrics.' } } } },
      '/openapi.json': { get: { summary: 'This document.', responses: { 200: { description: 'OpenAPI 3 document.' } } } },
    },
  };
}
