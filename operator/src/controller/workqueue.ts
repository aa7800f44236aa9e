/*
 * The work queue between events and reconciles, with client-go's workqueue semantics:
 * - keyed ("namespace/name"): a key waiting in the queue is there once however many events came;
 * - serialised per key: a key being reconciled is not handed to a second worker; if it is added
 *   meanwhile it is marked dirty and queued again when the first reconcile is done;
 * - addAfter: a delayed add (requeue-after), keeping only the earliest pending time per key;
 * - addRateLimited: a retry after a per-key exponential backoff (base doubling to max, with
 *   jitter), reset by forget() once the key reconciles cleanly.
 */

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export class ExponentialBackoff {
  private readonly failures = new Map<string, number>();
  constructor(private readonly options: BackoffOptions) {}

  /** The delay before the next retry of key, counting this failure. */
  next(key: string): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delay = Math.min(this.options.maxMs, this.options.baseMs * 2 ** Math.min(failures - 1, 30));
    return delay * (0.9 + Math.random() * 0.2);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  readonly backoff: ExponentialBackoff;

  constructor(backoff: BackoffOptions) {
    this.backoff = new ExponentialBackoff(backoff);
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    // Node timers hold at most ~24.8 days; a later requeue is re-evaluated then.
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, Math.min(delayMs, 2_147_000_000));
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  addRateLimited(key: string): number {
    const delay = this.backoff.next(key);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.backoff.forget(key);
  }

  /** The next key to work on (marked processing), or undefined once shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks key done; if it was added while processing, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  shutdown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
