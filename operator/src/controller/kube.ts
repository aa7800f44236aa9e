import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import {
  createConfiguration,
  HttpMethod,
  KubeConfig,
  PatchStrategy,
  RequestContext,
  ServerConfiguration,
  type Configuration,
} from '@kubernetes/client-node';
import { fetch } from 'undici';
import type { LoadObjectKind } from '../schema/status.js';

/*
 * A small REST client over @kubernetes/client-node 2.x: its KubeConfig (kubeconfig files,
 * in-cluster service-account tokens, exec plugins, TLS) and its HTTP transport, with objects kept
 * as the plain JSON the apiserver sends. The generated typed clients turn timestamps into Date
 * objects on some paths and not on others (and watches never do); one representation everywhere
 * avoids that class of bug. Every request is counted by verb and resource, which is how the tests
 * check what an idle operator does.
 */

/** The resource of a kind: enough to build every path. */
export interface Resource {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const RESOURCES = {
  loadExperiments: { group: 'loadlab.dev', version: 'v1alpha1', plural: 'loadexperiments', kind: 'LoadExperiment', namespaced: true },
  deployments: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true },
  services: { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  secrets: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  testRuns: { group: 'k6.io', version: 'v1alpha1', plural: 'testruns', kind: 'TestRun', namespaced: true },
  jobs: { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job', namespaced: true },
  events: { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
} as const satisfies Record<string, Resource>;

/** The resource of each kind of object that runs a unit of the load (status.timeline's checkpoints name one). */
export const LOAD_OBJECT_RESOURCES: Readonly<Record<LoadObjectKind, Resource>> = { TestRun: RESOURCES.testRuns, Job: RESOURCES.jobs };

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** What a watch hands over: each event's type and object (an ERROR event's object is a Status). */
export type WatchEventHandler = (type: string, object: KubeObject & { code?: number; reason?: string; message?: string }) => void;

export interface KubeList<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

/** The apiserver refused a request; `reason` is its Status reason (NotFound, Conflict, AlreadyExists, Forbidden, Expired, ...). */
export class KubeError extends Error {
  override name = 'KubeError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly verb: string,
    readonly path: string,
  ) {
    super(message);
  }
}

export const isNotFound = (error: unknown) => error instanceof KubeError && error.status === 404;
export const isConflict = (error: unknown) => error instanceof KubeError && error.status === 409 && error.reason === 'Conflict';
export const isAlreadyExists = (error: unknown) => error instanceof KubeError && error.status === 409 && error.reason === 'AlreadyExists';
export const isGone = (error: unknown) => error instanceof KubeError && error.status === 410;

export function resourcePath(resource: Resource, namespace?: string, name?: string, subresource?: string): string {
  const base = resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`;
  const parts = [base];
  if (resource.namespaced && namespace) parts.push('namespaces', encodeURIComponent(namespace));
  parts.push(resource.plural);
  if (name) parts.push(encodeURIComponent(name));
  if (subresource) parts.push(subresource);
  return parts.join('/');
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

/** Requests by "<verb> <resource>", e.g. "get loadexperiments", "update leases", "watch deployments". */
export type RequestCounts = Map<string, number>;

export const REQUEST_TIMEOUT_MS = 30_000;

export class KubeClient {
  readonly counts: RequestCounts = new Map();
  private readonly configuration: Configuration;

  constructor(readonly kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster: set KUBECONFIG, or run in a pod with a service account');
    this.configuration = createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: kubeConfig } });
  }

  /** Total requests made (watches counted when opened). */
  get requestCount(): number {
    let total = 0;
    for (const count of this.counts.values()) total += count;
    return total;
  }

  count(verb: string, path: string): void {
    const key = `${verb} ${resourceOfPath(path)}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, options: RequestOptions = {}): Promise<T> {
    const verb = verbOf(method, path, options);
    this.count(verb, path);
    const context = this.configuration.baseServer.makeRequestContext(path, HttpMethod[method]);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) context.setQueryParam(key, String(value));
    }
    context.setHeaderParam('Accept', 'application/json');
    if (options.body !== undefined) {
      context.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
      context.setBody(JSON.stringify(options.body));
    }
    // Bounded: a reconcile never hangs on an apiserver that stopped answering (watches are separate).
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    context.setSignal(options.signal ? AbortSignal.any([options.signal, timeout]) : timeout);
    await this.kubeConfig.applySecurityAuthentication(context);
    const response = await this.configuration.httpApi.send(context).toPromise();
    const text = await response.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.httpStatusCode >= 400) {
      const status = (parsed ?? {}) as { reason?: string; message?: string };
      throw new KubeError(
        response.httpStatusCode,
        status.reason ?? 'Unknown',
        `${verb} ${path}: ${status.message ?? (text.slice(0, 300) || `HTTP ${response.httpStatusCode}`)}`,
        verb,
        path,
      );
    }
    return parsed as T;
  }

  get<T extends KubeObject>(resource: Resource, namespace: string, name: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', resourcePath(resource, namespace, name), { ...(signal ? { signal } : {}) });
  }

  list<T extends KubeObject>(resource: Resource, namespace: string | undefined, query: RequestOptions['query'] = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(resource, namespace), { query });
  }

  create<T extends KubeObject>(resource: Resource, namespace: string, object: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', resourcePath(resource, namespace), { body: object, ...(signal ? { signal } : {}) });
  }

  /** Server-side apply: creates the object or makes the fields this manager owns match `object`. */
  apply<T extends KubeObject>(resource: Resource, namespace: string, name: string, object: unknown, fieldManager: string): Promise<T> {
    return this.request<T>('PATCH', resourcePath(resource, namespace, name), {
      query: { fieldManager, force: true },
      body: object,
      contentType: PatchStrategy.ServerSideApply,
    });
  }

  mergePatch<T extends KubeObject>(resource: Resource, namespace: string, name: string, patch: unknown, subresource?: string): Promise<T> {
    return this.request<T>('PATCH', resourcePath(resource, namespace, name, subresource), { body: patch, contentType: PatchStrategy.MergePatch });
  }

  replace<T extends KubeObject>(resource: Resource, namespace: string, name: string, object: unknown, subresource?: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('PUT', resourcePath(resource, namespace, name, subresource), { body: object, ...(signal ? { signal } : {}) });
  }

  /** Deletes in the background (the garbage collector removes what the object owns); true when it was there. */
  async delete(resource: Resource, namespace: string, name: string, preconditionUid?: string): Promise<boolean> {
    try {
      await this.request('DELETE', resourcePath(resource, namespace, name), {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background', ...(preconditionUid ? { preconditions: { uid: preconditionUid } } : {}) },
      });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      // The uid precondition failed: a newer object of the same name is not ours to delete.
      if (error instanceof KubeError && error.status === 409 && preconditionUid) return false;
      throw error;
    }
  }

  /**
   * Opens a watch (?watch=true) with client-node's authentication and transport. `onEvent` gets
   * each event; the promise resolves with a handle once the request is sent, `done` is called once
   * when the watch ends (server timeout: no error).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: WatchEventHandler,
    done: (error: unknown) => void,
    inactivityTimeoutMs: number,
  ): Promise<AbortController> {
    this.count('watch', path);
    return watchStream(this.kubeConfig, path, query, onEvent, done, inactivityTimeoutMs);
  }
}

/*
 * A watch request of our own rather than client-node's Watch: that one aborts a watch that sent
 * nothing for 30 s and offers no way to change it, while an idle watch legitimately sends nothing
 * for minutes (bookmarks come about once a minute). The request is authenticated exactly as
 * client-node's (KubeConfig.applySecurityAuthentication, the context's TLS dispatcher); the
 * inactivity limit follows the server-side timeout instead.
 */
async function watchStream(
  kubeConfig: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  onEvent: WatchEventHandler,
  done: (error: unknown) => void,
  inactivityTimeoutMs: number,
): Promise<AbortController> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server + path);
  url.searchParams.set('watch', 'true');
  for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  let finished = false;
  const finish = (error: unknown) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    controller.abort();
    done(timedOut ? new Error(`watch ${path}: nothing received for ${inactivityTimeoutMs} ms`) : error);
  };
  const resetTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      finish(undefined);
    }, inactivityTimeoutMs);
    timer.unref();
  };
  const context = new RequestContext(url.toString(), HttpMethod.GET);
  await kubeConfig.applySecurityAuthentication(context);
  resetTimer();
  try {
    const response = await fetch(url, { method: 'GET', headers: context.getHeaders(), dispatcher: context.getDispatcher(), signal: controller.signal });
    if (response.status !== 200 || !response.body) {
      const body = await response.text().catch(() => '');
      throw Object.assign(new Error(`watch ${path}: ${response.status} ${body.slice(0, 300)}`), { statusCode: response.status });
    }
    resetTimer();
    const body = Readable.fromWeb(response.body);
    body.on('data', resetTimer);
    body.on('error', finish);
    const lines = createInterface({ input: body });
    lines.on('error', finish);
    lines.on('line', (line) => {
      let event: { type?: string; object?: KubeObject } | undefined;
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        return; // a torn line at a connection reset: the watch ends right after
      }
      if (event?.type && event.object) onEvent(event.type, event.object);
    });
    lines.on('close', () => finish(undefined));
  } catch (error) {
    finish(error);
  }
  return controller;
}

function verbOf(method: string, path: string, options: RequestOptions): string {
  switch (method) {
    case 'GET': {
      const resource = resourceOfPath(path);
      const segments = path.split('?')[0]!.split('/').filter(Boolean);
      // .../<plural> is a list; .../<plural>/<name>[/<sub>] a get.
      const last = segments.at(-1);
      return last === resource.split('/')[0] && !options.query?.watch ? 'list' : 'get';
    }
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return method.toLowerCase();
  }
}

/** "loadexperiments", "loadexperiments/status", "leases" from an API path. */
export function resourceOfPath(path: string): string {
  const segments = path.split('?')[0]!.split('/').filter(Boolean);
  // /api/v1/... or /apis/<group>/<version>/...
  const rest = segments[0] === 'api' ? segments.slice(2) : segments.slice(3);
  const afterNamespace = rest[0] === 'namespaces' && rest.length > 2 ? rest.slice(2) : rest;
  const [plural, , subresource] = afterNamespace;
  return subresource ? `${plural}/${subresource}` : (plural ?? '');
}

/** The kubeconfig: a file when given, else KUBECONFIG / ~/.kube/config / the pod's service account. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (path) kubeConfig.loadFromFile(path);
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}
