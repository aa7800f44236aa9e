import { setTimeout as sleep } from 'node:timers/promises';
import { isGone, isNotFound, KubeError, resourcePath, type KubeClient, type KubeObject, type Resource } from './kube.js';
import type { Logger } from './log.js';

/*
 * A cache of one resource kind kept current by list + watch, as client-go's reflector does: list
 * (paginated), then watch from the list's resourceVersion with bookmarks; when the watch ends
 * (server timeout) resume it from the last resourceVersion seen; when that version is too old (410
 * Gone, as an HTTP status or an ERROR event) list again and report the differences as events, so
 * nothing that happened while disconnected is missed. Failures back off (1 s doubling to 30 s).
 *
 * Handlers only learn THAT something changed: the reconciler reads the cache, never the event.
 */

export type CacheEvent = 'added' | 'modified' | 'deleted';
export type CacheHandler<T extends KubeObject> = (event: CacheEvent, object: T) => void;

export interface InformerOptions {
  /** 'all', or the namespaces to watch (one list+watch each). */
  namespaces: 'all' | readonly string[];
  labelSelector?: string;
  /** Server-side watch timeout, seconds; each watch gets a random value in [min, 2 × min) (client-go: 5-10 min). */
  minWatchTimeoutS?: number;
  /**
   * A kind whose CRD may not be installed (k6-operator's TestRun where every experiment runs the
   * loadlab engine): while it is not served (404), the cache counts as synced and empty, and the
   * list is tried again now and then, so installing it later needs no restart.
   */
  mayBeAbsent?: boolean;
  log: Logger;
}

/** How often a kind that is not served is looked for again. */
const ABSENT_RETRY_MS = 60_000;

export interface InformerStats {
  lists: number;
  watches: number;
  relists: number;
  events: number;
  errors: number;
}

const PAGE_SIZE = 500;

export class Informer<T extends KubeObject> {
  readonly stats: InformerStats = { lists: 0, watches: 0, relists: 0, events: 0, errors: 0 };
  private readonly store = new Map<string, T>();
  private readonly handlers: CacheHandler<T>[] = [];
  private readonly abort = new AbortController();
  private readonly watches = new Set<AbortController>();
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly client: KubeClient,
    readonly resource: Resource,
    private readonly options: InformerOptions,
  ) {}

  on(handler: CacheHandler<T>): void {
    this.handlers.push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    return this.store.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /** Resolves once every scope has been listed (the cache is synced); keeps watching until stop(). */
  async start(): Promise<void> {
    const scopes = this.options.namespaces === 'all' ? [undefined] : [...this.options.namespaces];
    const synced = scopes.map(
      (namespace) =>
        new Promise<void>((resolve) => {
          this.loops.push(this.run(namespace, resolve));
        }),
    );
    await Promise.race([Promise.all(synced), new Promise<void>((resolve) => this.abort.signal.addEventListener('abort', () => resolve(), { once: true }))]);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const watch of this.watches) watch.abort();
    await Promise.allSettled(this.loops);
  }

  /**
   * Records an object this process just wrote, so a reconcile that runs before the watch delivers
   * the change does not act on the older copy. Never replaces a newer copy. The watch event of
   * that write will then carry a version the cache already has and be dropped, so the change is
   * reported to the handlers here instead.
   */
  observe(object: T): void {
    const key = keyOf(object);
    const cached = this.store.get(key);
    if (cached && !isNewer(object.metadata.resourceVersion, cached.metadata.resourceVersion)) return;
    this.store.set(key, { apiVersion: apiVersion(this.resource), kind: this.resource.kind, ...object });
    this.emit(cached ? 'modified' : 'added', object);
  }

  private async run(namespace: string | undefined, synced: () => void): Promise<void> {
    const path = resourcePath(this.resource, namespace);
    let resourceVersion: string | undefined;
    let failures = 0;
    let absent = false;
    while (!this.abort.signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.relist(namespace, path);
          synced();
          if (absent) this.options.log.info('now served', { resource: this.resource.plural, namespace: namespace ?? '(all)' });
          absent = false;
        }
        const outcome = await this.watchOnce(path, resourceVersion, (version) => (resourceVersion = version));
        if (outcome === 'expired') {
          this.stats.relists++;
          resourceVersion = undefined;
        }
        failures = 0;
      } catch (error) {
        if (this.abort.signal.aborted) break;
        if (this.options.mayBeAbsent && resourceVersion === undefined && isNotFound(error)) {
          synced();
          if (!absent) this.options.log.info('not served; its cache stays empty until it is', { resource: this.resource.plural, namespace: namespace ?? '(all)', ...hint(this.resource, error) });
          absent = true;
          await sleep(ABSENT_RETRY_MS, undefined, { signal: this.abort.signal }).catch(() => undefined);
          continue;
        }
        this.stats.errors++;
        if (isGone(error)) {
          this.stats.relists++;
          resourceVersion = undefined;
        }
        failures++;
        const delayMs = Math.min(30_000, 1000 * 2 ** (failures - 1)) * (0.8 + Math.random() * 0.4);
        this.options.log.warn('watch failed, retrying', { resource: this.resource.plural, namespace: namespace ?? '(all)', delayMs: Math.round(delayMs), error: String((error as Error).message ?? error), ...hint(this.resource, error) });
        await sleep(delayMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  /** Lists every page; replaces this scope's part of the store, reporting what changed. */
  private async relist(namespace: string | undefined, path: string): Promise<string> {
    this.stats.lists++;
    const seen = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.client.request<{ metadata: { resourceVersion: string; continue?: string }; items: T[] }>('GET', path, {
        query: { limit: PAGE_SIZE, labelSelector: this.options.labelSelector, continue: continueToken },
        signal: this.abort.signal,
      });
      for (const item of page.items) {
        // List items carry no apiVersion/kind; the handlers and owners expect them.
        const object = { apiVersion: apiVersion(this.resource), kind: this.resource.kind, ...item } as T;
        seen.set(keyOf(object), object);
      }
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken);

    for (const [key, old] of this.store) {
      if (namespace !== undefined && old.metadata.namespace !== namespace) continue;
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('deleted', old);
      }
    }
    for (const [key, object] of seen) {
      const old = this.store.get(key);
      this.store.set(key, object);
      if (!old) this.emit('added', object);
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) this.emit('modified', object);
    }
    return resourceVersion;
  }

  private watchOnce(path: string, resourceVersion: string, progress: (version: string) => void): Promise<'ended' | 'expired'> {
    const min = this.options.minWatchTimeoutS ?? 300;
    const timeoutS = Math.floor(min + Math.random() * min);
    this.stats.watches++;
    this.options.log.debug('watch', { resource: this.resource.plural, path, resourceVersion, timeoutS });
    return new Promise((resolve, reject) => {
      let expired = false;
      let finished = false;
      let controller: AbortController | undefined;
      const finish = (error: unknown) => {
        finished = true;
        if (controller) this.watches.delete(controller);
        if (this.abort.signal.aborted) resolve('ended');
        else if (expired) resolve('expired');
        else if (error) reject(error instanceof Error ? Object.assign(error, { status: (error as { statusCode?: number }).statusCode }) : new Error(String(error)));
        else resolve('ended');
      };
      this.client
        .watch(
          path,
          { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: timeoutS, labelSelector: this.options.labelSelector },
          (type, object) => {
            if (type === 'ERROR') {
              // 410: the version is older than the apiserver keeps; anything else: start over too.
              expired = true;
              this.options.log.debug('watch error event', { resource: this.resource.plural, code: object.code, message: object.message });
              controller?.abort();
              return;
            }
            this.options.log.debug('watch event', { resource: this.resource.plural, type, name: object.metadata?.name, resourceVersion: object.metadata?.resourceVersion });
            const version = object.metadata?.resourceVersion;
            if (version) progress(version);
            if (type === 'BOOKMARK') return;
            this.apply(type, object as T);
          },
          (error) => {
            const status = (error as { statusCode?: number } | null)?.statusCode;
            this.options.log.debug('watch ended', { resource: this.resource.plural, status, error: error ? String((error as Error).message ?? error) : undefined });
            if (status === 410) expired = true;
            finish(expired ? null : error);
          },
          (timeoutS + 30) * 1000,
        )
        .then((handle) => {
          controller = handle;
          if (finished) return;
          this.watches.add(handle);
          if (this.abort.signal.aborted) handle.abort();
        }, reject);
    });
  }

  private apply(type: string, object: T): void {
    const key = keyOf(object);
    if (type === 'DELETED') {
      this.store.delete(key);
      this.emit('deleted', object);
      return;
    }
    const old = this.store.get(key);
    if (old && old.metadata.resourceVersion === object.metadata.resourceVersion) return;
    this.store.set(key, object);
    this.emit(old ? 'modified' : 'added', object);
  }

  private emit(event: CacheEvent, object: T): void {
    this.stats.events++;
    for (const handler of this.handlers) {
      try {
        handler(event, object);
      } catch (error) {
        this.options.log.error('cache handler failed', { resource: this.resource.plural, error: String(error) });
      }
    }
  }
}

/** What a person can do about a list/watch that keeps failing. */
function hint(resource: Resource, error: unknown): { hint?: string } {
  const status = error instanceof KubeError ? error.status : (error as { statusCode?: number } | undefined)?.statusCode;
  const name = `${resource.plural}${resource.group ? `.${resource.group}` : ''}`;
  if (status === 404) return { hint: `${name} is not served: install its CRD (${resource.group === 'k6.io' ? "k6-operator's" : "loadlab's"} ${name})` };
  if (status === 403) return { hint: `the operator's ServiceAccount may not list/watch ${name} here: apply the RBAC from operator/src/controller/rbac.ts` };
  if (status === 401) return { hint: 'the operator\'s credentials were refused: check the kubeconfig or the ServiceAccount token' };
  return {};
}

export function keyOf(object: { metadata: { namespace?: string; name: string } }): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

function apiVersion(resource: Resource): string {
  return resource.group ? `${resource.group}/${resource.version}` : resource.version;
}

/**
 * Whether `a` is a later resourceVersion than `b`. Kubernetes calls them opaque, but etcd's are
 * increasing integers; anything else is treated as not newer (the watch will bring it).
 */
export function isNewer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) > BigInt(b);
}
