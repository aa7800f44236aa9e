import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** What one LISTEN channel's user is told. */
export interface ChannelListener {
  /**
   * A connection is up and LISTENs on the channel: read what may have been missed while there was
   * none. Notifications from here on reach onNotification (some may repeat what this reads).
   */
  onUp(client: pg.Client): Promise<void>;
  /** The connection broke: notifications are missed until the next onUp. */
  onDown(): void;
  onNotification(payload: string): void;
}

/**
 * One connection per API process, outside the request pool, for what must not wait behind requests:
 * readiness pings (a request pool saturated by load must not mark every replica unready at once)
 * and LISTEN (notifications only reach a connection that stays open). It reconnects by itself, with
 * a backoff of 0.2 s doubling to 5 s, until closed.
 */
export class ControlConnection {
  private client: pg.Client | undefined;
  private up = false;
  private closed = false;
  private connecting: Promise<void> | undefined;
  /** The client being connected by attempt(), so close() can end it too. */
  private pending: pg.Client | undefined;
  private started: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly listeners = new Map<string, ChannelListener>();

  constructor(private readonly config: pg.ClientConfig) {}

  /** Listens on `channel` from the next connection on (call before start()). */
  listen(channel: string, listener: ChannelListener): void {
    if (this.started) throw new Error(`listen(${channel}) after the control connection started`);
    this.listeners.set(channel, listener);
  }

  get hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  /**
   * Starts connecting in the background (once; later calls return the same promise); resolves
   * after the first attempt, whether it worked or not.
   */
  start(): Promise<void> {
    if (!this.started) {
      const first = this.attempt();
      void this.keepOpen(first);
      this.started = first.catch(() => undefined);
    }
    return this.started;
  }

  /**
   * Runs one statement on the control connection; rejects when it is down. A statement that
   * outlives the client's query timeout drops the connection: the server stopped answering.
   */
  async query<Row extends object = Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<Row[]> {
    const client = this.client;
    if (!client || !this.up) throw new Error('the control connection is down');
    try {
      return (await client.query<Row>(sql, values)).rows;
    } catch (error) {
      if (!/^\d{2}[0-9A-Z]{3}$/.test(String((error as { code?: unknown }).code ?? ''))) this.drop(client);
      throw error;
    }
  }

  /** Whether the database answers on this connection within `timeoutMs`; asks for a reconnect if not up. */
  async ping(timeoutMs: number): Promise<boolean> {
    if (!this.started && !this.closed) await this.start();
    if (!this.up) {
      this.wake?.();
      return false;
    }
    let timer: NodeJS.Timeout | undefined;
    const answered = this.query('SELECT 1').then(
      () => true,
      () => false,
    );
    try {
      return await Promise.race([answered, new Promise<false>((resolve) => (timer = setTimeout(resolve, timeoutMs, false)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const clients = [this.client, this.pending];
    this.client = undefined;
    this.up = false;
    // A connection still being set up is ended too: left alone it would keep the process alive.
    await Promise.all(clients.map((client) => client?.end().catch(() => undefined)));
  }

  private async keepOpen(first: Promise<void>): Promise<void> {
    await first.catch(() => undefined);
    let delayMs = 200;
    while (!this.closed) {
      if (this.up) {
        // Sleeps until the connection breaks (drop() wakes it) or close().
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        delayMs = 200;
        continue;
      }
      await Promise.race([sleep(delayMs), new Promise<void>((resolve) => (this.wake = resolve))]);
      this.wake = undefined;
      if (this.closed) break;
      try {
        await this.attempt();
        delayMs = 200;
      } catch {
        delayMs = Math.min(5000, delayMs * 2);
      }
    }
  }

  private attempt(): Promise<void> {
    this.connecting ??= (async () => {
      if (this.closed) throw new Error('the control connection is closed');
      const client = new pg.Client(this.config);
      this.pending = client;
      // A broken connection emits 'error' (and 'end'): either way it is replaced.
      client.on('error', () => this.drop(client));
      client.on('end', () => this.drop(client));
      client.on('notification', (message) => this.listeners.get(message.channel)?.onNotification(message.payload ?? ''));
      try {
        await client.connect();
        this.client = client;
        for (const [channel, listener] of this.listeners) {
          await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
          await listener.onUp(client);
        }
        if (this.closed || this.client !== client) throw new Error('the control connection closed while it was set up');
        this.up = true;
      } catch (error) {
        this.drop(client);
        throw error;
      } finally {
        this.pending = undefined;
      }
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private drop(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      this.up = false;
      for (const listener of this.listeners.values()) listener.onDown();
      this.wake?.();
    }
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
  }
}
