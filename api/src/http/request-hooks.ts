import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiMetrics } from '../metrics/metrics.js';
import { retryAfterSeconds } from './retry-after.js';

export interface RequestHookSettings {
  maxInFlight: number;
  cpuCostMs: number;
}

const startedAt = Symbol('startedAt');
type TimedRequest = FastifyRequest & { [startedAt]?: number };

/**
 * Operational routes are never shed nor slowed: the harness must keep seeing the service. Judged by
 * the route the request matched, not its raw URL: `/%761/measurements` is `/v1/measurements` to the
 * router, and must get the same checks.
 */
const isDeviceRoute = (route: string | undefined): boolean => route?.startsWith('/v1/') === true;

/**
 * Fastify hooks (cheaper than Nest interceptors, and they also see 404/413/415 answered before any
 * controller runs): the request duration histogram by route template, in-flight count, overload
 * shedding and the CPU_COST_MS knob.
 */
export function installRequestHooks(app: FastifyInstance, metrics: ApiMetrics, settings: RequestHookSettings): void {
  let inFlight = 0;
  const routes = new RouteMethods();
  app.addHook('onRoute', (route) => routes.add(route.url ?? route.path, route.method));

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
    const route = request.routeOptions.url;
    if (route === undefined) {
      // No route for this method: if the path has others, it is 405 with the ones it has (RFC 9110).
      const allowed = routes.allowedFor(request.url);
      if (allowed.length > 0) {
        return reply.code(405).header('Allow', allowed.join(', ')).send({ statusCode: 405, error: 'Method Not Allowed', message: `${request.method} is not supported here; use ${allowed.join(' or ')}` });
      }
      return;
    }
    if (!isDeviceRoute(route)) return;
    if (inFlight > settings.maxInFlight) {
      metrics.shed.inc({ reason: 'in_flight' });
      return reply.code(503).header('Retry-After', retryAfterSeconds()).send({ statusCode: 503, error: 'Service Unavailable', message: `overloaded: more than ${settings.maxInFlight} requests in flight` });
    }
    if (request.method === 'POST' && !isJson(request.headers['content-type'])) {
      return reply.code(415).send({ statusCode: 415, error: 'Unsupported Media Type', message: 'send the body as application/json' });
    }
    if (settings.cpuCostMs > 0) burnCpu(settings.cpuCostMs);
  });
  app.addHook('onResponse', async (request: TimedRequest, reply) => finish(request, reply.statusCode));
  app.addHook('onRequestAbort', async (request: TimedRequest) => finish(request, 499));
}

/** The methods of every route, by path pattern, to answer a method a path does not have. */
class RouteMethods {
  private readonly byPattern = new Map<string, { pattern: RegExp; methods: Set<string> }>();

  add(path: string, method: string | string[]): void {
    let entry = this.byPattern.get(path);
    if (!entry) {
      // ':param' matches one path segment, as the router's parametric routes do.
      const source = path.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
      entry = { pattern: new RegExp(`^${source}/?$`), methods: new Set() };
      this.byPattern.set(path, entry);
    }
    for (const one of [method].flat()) entry.methods.add(one.toUpperCase());
  }

  allowedFor(url: string): string[] {
    const path = decodePath(url);
    if (path === undefined) return [];
    const methods = new Set<string>();
    for (const { pattern, methods: own } of this.byPattern.values()) if (pattern.test(path)) for (const method of own) methods.add(method);
    return [...methods].sort();
  }
}

/** The path of a request URL, percent-decoded as the router decodes it; undefined when malformed. */
function decodePath(url: string): string | undefined {
  const end = url.search(/[?#]/);
  try {
    return decodeURIComponent(end < 0 ? url : url.slice(0, end));
  } catch {
    return undefined;
  }
}

const isJson = (contentType: string | undefined): boolean => /^application\/json\s*(;|$)/i.test(contentType ?? '');

/**
 * The CPU_COST_MS knob: on-CPU work on the event loop, as heavy request processing would be.
 * Counted in the thread's CPU time, not wall time: a process that shares its cores with others
 * takes longer to do the same work, as a real one does (with wall time, four processes on two
 * cores each served as much as one alone, and a scaling study saw no contention).
 */
export function burnCpu(ms: number): void {
  const cpuUs = () => {
    const { user, system } = process.threadCpuUsage();
    return user + system;
  };
  const until = cpuUs() + ms * 1000;
  let x = 0;
  // The clock costs about 0.5 µs a read: read it every few hundred operations.
  while (cpuUs() < until) for (let i = 0; i < 256; i++) x += Math.sqrt(x + 1);
  if (x < 0) throw new Error('unreachable');
}
