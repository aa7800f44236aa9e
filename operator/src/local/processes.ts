import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Lifeline } from './lifeline.js';

/**
 * A child process local mode started and must stop: keeps the tail of its output for error
 * messages, and is stopped by `stopAll()` on every exit path (normal end, error, Ctrl-C).
 */
export class ManagedProcess {
  private static readonly running = new Set<ManagedProcess>();
  private output = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    void this.exited.then(() => ManagedProcess.running.delete(this));
    ManagedProcess.running.add(this);
  }

  static start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ManagedProcess {
    // detached: a Ctrl-C in the terminal reaches only us; we stop the children in order.
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.once('error', () => undefined); // reported through `exited` and the output tail
    // Written down before anything else can happen: if this process is killed, the run's
    // watchdog (or the next run) stops it.
    Lifeline.current?.trackProcess(child.pid);
    return new ManagedProcess(name, child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  tail(lines = 15): string {
    return this.output.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Polls `url` until it answers 2xx; fails early, with the process's output, if it dies. */
  async waitForHttp(url: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.isRunning) throw new Error(`${this.name} exited during start-up:\n${this.tail()}`);
      const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await sleep(100);
    }
    throw new Error(`${this.name} did not answer ${url} within ${timeoutMs / 1000} s:\n${this.tail()}`);
  }

  async stop(graceMs = 5000): Promise<void> {
    if (!this.isRunning) return;
    this.child.kill('SIGTERM');
    const killed = await Promise.race([this.exited.then(() => false), sleep(graceMs).then(() => true)]);
    if (killed) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  static async stopAll(): Promise<void> {
    await Promise.all([...ManagedProcess.running].reverse().map((p) => p.stop()));
  }
}
