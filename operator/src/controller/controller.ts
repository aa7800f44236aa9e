import type { OperatorConfig } from './config.js';
import { describeError, type Caches, type Deps, type DeploymentObject, type ExperimentObject, type JobObject, type TestRunObject } from './context.js';
import { EventRecorder } from './events.js';
import { Informer, keyOf } from './informer.js';
import { RESOURCES, type KubeClient } from './kube.js';
import type { Logger } from './log.js';
import type { Fence } from './experiment-database.js';
import { ownerKey } from './ownership.js';
import { reconcile } from './reconciler.js';
import { WorkQueue } from './workqueue.js';
import { LABELS } from '../contract/names.js';

/*
 * The controller: four caches (LoadExperiments, and the Deployments, TestRuns and Jobs the operator
 * made, selected by label), a work queue keyed by namespace/name, and N workers that reconcile.
 * Cache events only enqueue keys — an experiment's own key, or the owner's key for a child — and
 * the reconcile reads the caches. Reconcile errors are logged and retried with backoff; they never
 * stop the process (as Pepr's watch processor does).
 */

export const MANAGED_BY_SELECTOR = 'app.kubernetes.io/managed-by=loadlab-operator';

export interface ControllerStats {
  reconciles: number;
  errors: number;
  /** Milliseconds spent in reconciles (summed over workers). */
  busyMs: number;
}

export interface ControllerOptions {
  client: KubeClient;
  config: OperatorConfig;
  log: Logger;
  identity: string;
  /** The leadership term's fence for destructive database work; none without leader election. */
  fence?: Fence;
  now?: () => Date;
}

export class Controller {
  readonly caches: Caches;
  readonly queue: WorkQueue;
  readonly stats: ControllerStats = { reconciles: 0, errors: 0, busyMs: 0 };
  private readonly deps: Deps;
  private readonly abort = new AbortController();
  private workers: Promise<void>[] = [];
  /** Errors by key, for tests and the log (the last one). */
  readonly lastErrors = new Map<string, string>();

  constructor(private readonly options: ControllerOptions) {
    const { client, config, log } = options;
    const namespaces = config.watchNamespaces;
    this.caches = {
      experiments: new Informer<ExperimentObject>(client, RESOURCES.loadExperiments, { namespaces, log }),
      deployments: new Informer<DeploymentObject>(client, RESOURCES.deployments, { namespaces, labelSelector: MANAGED_BY_SELECTOR, log }),
      // k6-operator may not be installed where every experiment runs the loadlab engine.
      testRuns: new Informer<TestRunObject>(client, RESOURCES.testRuns, { namespaces, labelSelector: `${MANAGED_BY_SELECTOR},${LABELS.experiment}`, log, mayBeAbsent: true }),
      jobs: new Informer<JobObject>(client, RESOURCES.jobs, { namespaces, labelSelector: `${MANAGED_BY_SELECTOR},${LABELS.experiment}`, log }),
    };
    this.queue = new WorkQueue({ baseMs: config.retry.baseMs, maxMs: config.retry.maxMs });
    this.deps = {
      client,
      config,
      caches: this.caches,
      events: new EventRecorder(client, options.identity, log),
      log,
      secretKey: config.secretKey,
      ...(options.fence ? { fence: { ...options.fence } } : {}),
      now: options.now ?? (() => new Date()),
    };
    this.caches.experiments.on((_event, object) => this.queue.add(keyOf(object)));
    const enqueueOwner = (_event: string, object: DeploymentObject | TestRunObject | JobObject) => {
      const key = ownerKey(object);
      if (key) this.queue.add(key);
    };
    this.caches.deployments.on(enqueueOwner);
    this.caches.testRuns.on(enqueueOwner);
    this.caches.jobs.on(enqueueOwner);
  }

  /** Syncs the caches (children first, so the first reconciles see them), then starts the workers. */
  async start(): Promise<void> {
    await Promise.all([this.caches.deployments.start(), this.caches.testRuns.start(), this.caches.jobs.start()]);
    await this.caches.experiments.start();
    this.workers = Array.from({ length: this.options.config.maxConcurrentReconciles }, () => this.work());
    this.options.log.info('controller started', { namespaces: this.options.config.watchNamespaces, workers: this.workers.length });
  }

  /** Stops taking work, cancels reconciles in flight (their requests are aborted) and the watches. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.queue.shutdown();
    await Promise.allSettled(this.workers);
    await Promise.allSettled([this.caches.experiments.stop(), this.caches.deployments.stop(), this.caches.testRuns.stop(), this.caches.jobs.stop()]);
  }

  /** Runs one reconcile directly (tests; the workers go through the queue). */
  reconcile(key: string) {
    return reconcile(key, this.deps, this.abort.signal);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = performance.now();
      try {
        this.stats.reconciles++;
        const result = await reconcile(key, this.deps, this.abort.signal);
        this.queue.forget(key);
        this.lastErrors.delete(key);
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
      } catch (error) {
        if (this.abort.signal.aborted) return;
        this.stats.errors++;
        const delayMs = this.queue.addRateLimited(key);
        const message = describeError(error);
        this.lastErrors.set(key, message);
        this.options.log.warn('reconcile failed; retrying', { key, delayMs: Math.round(delayMs), failures: this.queue.backoff.failuresOf(key), error: message });
      } finally {
        this.stats.busyMs += performance.now() - started;
        this.queue.done(key);
      }
    }
  }
}
