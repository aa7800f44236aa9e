import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiMetrics } from '../metrics/metrics.js';

export interface RequestHookSettings {
  maxInFlight: number;
  cpuCostMs: number;
}

const startedAt = Symbol('startedAt');
type TimedRequest = FastifyRequest & { [startedAt]?: number };

/** Operational routes are never shed nor slowed: the harness must keep seeing the service. */
const isDeviceRoute = (url: string): boolean => url.startsWith('/v1/');

/**
 * Fastify hooks (cheaper than Nest interceptors, and they also see 404/413/415 answered before any
 * controller runs): the request duration histogram by route template, in-flight count, overload
 * shedding and the CPU_COST_MS knob.
 */
export function installRequestHooks(app: FastifyInstance, metrics: ApiMetrics, settings: RequestHookSettings): void {
  let inFlight = 0;

  const finish = (request: TimedRequest, status: number): void => {
    const start = request[startedAt];
    if (start === undefined) return;
    request[startedAt] = undefined;
    inFlight--;
    metrics.inFlight.set(inFlight);
    metrics.httpDuration.observe(
      { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(status) },
      (performance.now() - start) / 1000,
    );
  };

  app.addHook('onRequest', async (request: TimedRequest, reply) => {
    request[startedAt] = performance.now();
    inFlight++;
    metrics.inFlight.set(inFlight);
    if (!isDeviceRoute(request.url)) return;
    if (inFlight > settings.maxInFlight) {
      metrics.shed.inc({ reason: 'in_flight' });
      return reply.code(503).header('Retry-After', '1').send({ statusCode: 503, error: 'Service Unavailable', message: `overloaded: more than ${settings.maxInFlight} requests in flight` });
    }
    if (request.method === 'POST' && !isJson(request.headers['content-type'])) {
      return reply.code(415).send({ statusCode: 415, error: 'Unsupported Media Type', message: 'send the body as application/json' });
    }
    if (settings.cpuCostMs > 0) burnCpu(settings.cpuCostMs);
  });
  app.addHook('onResponse', async (request: TimedRequest, reply) => finish(request, reply.statusCode));
  app.addHook('onRequestAbort', async (request: TimedRequest) => finish(request, 499));
}

const isJson = (contentType: string | undefined): boolean => /^application\/json\s*(;|$)/i.test(contentType ?? '');

/** The CPU_COST_MS knob: on-CPU work on the event loop, as heavy request processing would be. */
export function burnCpu(ms: number): void {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  if (x < 0) throw new Error('unreachable');
}
