import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlreadyExists, isConflict, isNotFound, RESOURCES, type KubeClient, type KubeObject } from './kube.js';
import type { Logger } from './log.js';

/*
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does:
 * - a candidate tries every retryPeriod to take the Lease: it may when nobody holds it, or when the
 *   holder's record has not changed for leaseDuration as seen by THIS process's clock (no clock
 *   comparison between machines);
 * - the leader renews every retryPeriod; if it cannot renew for renewDeadline (< leaseDuration) it
 *   stops leading before anybody else may start, so two leaders never overlap. The deadline counts
 *   from the start of the last renewal that succeeded (the renewTime it wrote), and every attempt
 *   is aborted at the deadline: a request that hangs (the client's own timeout is 30 s, longer
 *   than any lease) cannot keep a leader acting after another may have taken over;
 * - on a clean stop the leader releases the Lease (holder cleared, duration 1 s) so a standby
 *   takes over at once instead of after leaseDuration.
 * Writes are optimistic (resourceVersion): two candidates racing for an expired Lease cannot both
 * win. The leader renews with one PUT from its last copy (client-go does a GET and a PUT).
 * Every duration here is measured on the monotonic clock (monoMs): a wall clock stepped back or
 * forward (NTP, a VM resumed) must neither keep a leader past its deadline nor let a candidate
 * take a Lease early. The wall clock only writes the Lease's timestamps, which are for people.
 */

/** Milliseconds on a clock that never jumps. */
const monoMs = () => performance.now();

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  /**
   * Called when this process becomes leader; `signal` aborts when it stops leading; `token` is
   * this term's fencing token (fencingToken()).
   */
  onStartedLeading: (signal: AbortSignal, token: number) => void | Promise<void>;
  /** Called when it stops leading (lost or released); awaited before trying again. */
  onStoppedLeading: () => void | Promise<void>;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Lease = KubeObject & { spec?: LeaseSpec };

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * A number that grows with every change of the Lease's holder, fixed when this process took it: the
 * Lease's transitions, above the second its object was created (a Lease deleted and made again
 * restarts its transitions at 0, but is created later). A leader's writes to shared state carry it
 * and are refused once a higher one has been seen (experiment-database.ts: the database's fence),
 * so a leader that lost its Lease without noticing (paused, partitioned) cannot act after its
 * successor started. Below 2^53 until the year 2255 with a million transitions.
 */
export function fencingToken(lease: Lease | undefined): number {
  const createdS = Math.floor(Date.parse(lease?.metadata.creationTimestamp ?? '1970-01-01T00:00:00Z') / 1000);
  return createdS * 2 ** 20 + Math.min(lease?.spec?.leaseTransitions ?? 0, 2 ** 20 - 1);
}

export class LeaderElector {
  private lease: Lease | undefined;
  private observed: { record: string; atMs: number } | undefined;
  private leading: AbortController | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  transitions = 0;

  constructor(private readonly options: LeaderElectionOptions) {}

  get isLeader(): boolean {
    return this.leading !== undefined && !this.leading.signal.aborted;
  }

  /** Starts campaigning in the background. */
  start(): void {
    this.loop ??= this.campaign();
  }

  /** Stops; a leader releases the Lease unless `release` is false (a crash, in tests). */
  async stop(release = true): Promise<void> {
    this.stopping.abort();
    await this.loop?.catch(() => undefined);
    if (this.leading) await this.stopLeading(release);
  }

  private async campaign(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, log } = this.options;
    while (!this.stopping.signal.aborted) {
      // --- candidate ---
      let renewedAtMs = monoMs();
      // Bounded too: leading starts once the acquiring write returns, before its deadline.
      if (!(await this.attempt(renewDeadlineMs))) {
        await this.pause(retryPeriodMs * (1 + Math.random() * 0.2));
        continue;
      }
      log.info('became leader', { lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity });
      this.leading = new AbortController();
      this.transitions++;
      // Not awaited: the renewals must go on while the controller syncs its caches (which waits
      // for the apiserver, maybe long), or the Lease would lapse under a busy leader.
      const signal = this.leading.signal;
      const token = fencingToken(this.lease);
      void Promise.resolve()
        .then(() => this.options.onStartedLeading(signal, token))
        .catch((error: unknown) => log.error('starting to lead failed', { error: String(error) }));
      // --- leader ---
      while (!this.stopping.signal.aborted && this.isLeader) {
        const deadlineMs = renewedAtMs + renewDeadlineMs;
        await this.pause(Math.min(retryPeriodMs, deadlineMs - monoMs()));
        if (this.stopping.signal.aborted) break;
        const startedMs = monoMs();
        if (await this.attempt(deadlineMs - startedMs)) {
          renewedAtMs = startedMs;
        } else if (monoMs() >= deadlineMs || (this.lease !== undefined && this.lease.spec?.holderIdentity !== this.options.identity)) {
          log.warn('lost leadership', { sinceRenewMs: Math.round(monoMs() - renewedAtMs), holder: this.lease?.spec?.holderIdentity });
          await this.stopLeading(false);
        }
      }
    }
  }

  private async stopLeading(release: boolean): Promise<void> {
    const leading = this.leading;
    if (!leading) return;
    this.leading = undefined;
    leading.abort();
    try {
      await this.options.onStoppedLeading();
    } catch (error) {
      this.options.log.error('stopping to lead failed', { error: String(error) });
    }
    if (release) await this.release();
  }

  private async release(): Promise<void> {
    const { client, namespace, name, identity, log } = this.options;
    let lease = this.lease;
    // Twice at most: a renewal cut short by the stop may have been written after our copy was
    // read, so a conflict means "read it again", not "someone else holds it".
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!lease || lease.spec?.holderIdentity !== identity) return;
      const now = microTime(new Date());
      try {
        this.lease = await client.replace<Lease>(RESOURCES.leases, namespace, name, {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
        });
        log.info('released the lease', { lease: `${namespace}/${name}` });
        return;
      } catch (error) {
        if (attempt === 0 && isConflict(error)) {
          lease = await client.get<Lease>(RESOURCES.leases, namespace, name).catch(() => undefined);
          continue;
        }
        log.warn('could not release the lease; a standby takes over once it expires', { error: String(error) });
        return;
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }

  /**
   * One attempt bounded by `budgetMs`: its requests are aborted then, and it answers false at
   * once even if the transport were slow to give up (the aborted request settles on its own).
   */
  private async attempt(budgetMs: number): Promise<boolean> {
    if (budgetMs <= 0 || this.stopping.signal.aborted) return false;
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(Math.ceil(budgetMs))]);
    const givenUp = new Promise<false>((resolve) => signal.addEventListener('abort', () => resolve(false), { once: true }));
    return Promise.race([this.tryAcquireOrRenew(signal), givenUp]);
  }

  /** One attempt; true when this process holds the Lease afterwards. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name, identity, leaseDurationMs } = this.options;
    const nowMs = monoMs();
    const now = microTime(new Date());
    const durationS = Math.max(1, Math.ceil(leaseDurationMs / 1000));
    try {
      // A leader renews from its own last write; anybody else reads the current record first.
      if (!this.lease || this.lease.spec?.holderIdentity !== identity) {
        try {
          this.lease = await client.get<Lease>(RESOURCES.leases, namespace, name, signal);
        } catch (error) {
          if (!isNotFound(error)) throw error;
          this.lease = await client.create<Lease>(RESOURCES.leases, namespace, {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          }, signal);
          this.observed = { record: JSON.stringify(this.lease.spec), atMs: nowMs };
          return true;
        }
      }
      const spec = this.lease.spec ?? {};
      const record = JSON.stringify(spec);
      if (this.observed?.record !== record) this.observed = { record, atMs: nowMs };
      const holder = spec.holderIdentity ?? '';
      const heldMs = (spec.leaseDurationSeconds ?? durationS) * 1000;
      if (holder !== '' && holder !== identity && this.observed.atMs + heldMs > nowMs) return false;

      const taking = holder !== identity;
      const next: LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds: durationS,
        acquireTime: taking ? now : (spec.acquireTime ?? now),
        renewTime: now,
        // As client-go counts: a new holder is a transition, a released Lease (holder '') included.
        leaseTransitions: (spec.leaseTransitions ?? 0) + (taking ? 1 : 0),
      };
      this.lease = await client.replace<Lease>(RESOURCES.leases, namespace, name, { ...this.lease, spec: next }, undefined, signal);
      this.observed = { record: JSON.stringify(this.lease.spec), atMs: nowMs };
      return true;
    } catch (error) {
      if (isConflict(error) || isAlreadyExists(error)) {
        // Somebody else wrote it first: read it again next time.
        this.lease = undefined;
        return false;
      }
      if (this.stopping.signal.aborted) return false;
      const gaveUp = signal.aborted ? 'given up at the renew deadline: ' : '';
      this.options.log.warn('lease request failed', { error: `${gaveUp}${String((error as Error).message ?? error)}` });
      return false;
    }
  }
}
