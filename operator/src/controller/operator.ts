import type { KubeConfig } from '@kubernetes/client-node';
import type { OperatorConfig } from './config.js';
import { Controller } from './controller.js';
import { KubeClient } from './kube.js';
import { LeaderElector } from './leader.js';
import { createLogger, type Logger } from './log.js';
import type { Fence } from './experiment-database.js';

/*
 * The operator process: leader election (when enabled) around the controller. Only the leader
 * watches and reconciles; a standby makes nothing but its Lease requests. Losing the Lease stops
 * the controller (in-flight requests are aborted) before anybody else may take over; a clean stop
 * releases the Lease so a standby takes over at once.
 */

export interface OperatorOptions {
  config: OperatorConfig;
  kubeConfig: KubeConfig;
  log?: Logger;
  now?: () => Date;
}

export class Operator {
  readonly client: KubeClient;
  readonly log: Logger;
  private controllerInstance: Controller | undefined;
  private elector: LeaderElector | undefined;
  private leaderWaiters: (() => void)[] = [];
  /** Controllers started over this process' life (one per leadership term). */
  terms = 0;

  constructor(private readonly options: OperatorOptions) {
    this.client = new KubeClient(options.kubeConfig);
    this.log = options.log ?? createLogger(options.config.logLevel);
  }

  get identity(): string {
    return this.options.config.leaderElection.identity;
  }

  /** The running controller (while leading), for tests and metrics. */
  get controller(): Controller | undefined {
    return this.controllerInstance;
  }

  get isLeader(): boolean {
    return this.controllerInstance !== undefined;
  }

  async start(): Promise<void> {
    const { leaderElection } = this.options.config;
    if (!leaderElection.enabled) {
      await this.lead();
      return;
    }
    this.elector = new LeaderElector({
      client: this.client,
      namespace: leaderElection.namespace,
      name: leaderElection.name,
      identity: leaderElection.identity,
      leaseDurationMs: leaderElection.leaseDurationMs,
      renewDeadlineMs: leaderElection.renewDeadlineMs,
      retryPeriodMs: leaderElection.retryPeriodMs,
      log: this.log,
      onStartedLeading: (_signal, token) => this.lead({ lease: `${leaderElection.namespace}/${leaderElection.name}`, token }),
      onStoppedLeading: () => this.follow(),
    });
    this.elector.start();
  }

  /** Resolves once this process leads (at once without leader election). */
  whenLeader(): Promise<void> {
    if (this.controllerInstance) return Promise.resolve();
    return new Promise((resolve) => this.leaderWaiters.push(resolve));
  }

  /**
   * Stops. `release: false` leaves the Lease held, as a crashed process would; a standby then
   * takes over only once it expires.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    if (this.elector) await this.elector.stop(options.release ?? true);
    else await this.follow();
  }

  /** Starts the controller; `fence`: this leadership term's (none without leader election). */
  private async lead(fence?: Fence): Promise<void> {
    const controller = new Controller({
      client: this.client,
      config: this.options.config,
      log: this.log,
      identity: this.identity,
      ...(fence ? { fence } : {}),
      ...(this.options.now ? { now: this.options.now } : {}),
    });
    this.controllerInstance = controller;
    this.terms++;
    await controller.start();
    for (const resolve of this.leaderWaiters.splice(0)) resolve();
  }

  private async follow(): Promise<void> {
    const controller = this.controllerInstance;
    this.controllerInstance = undefined;
    await controller?.stop();
  }
}
