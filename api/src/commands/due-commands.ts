import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import type pg from 'pg';
import type { Database } from '../db/database.js';
import { COMMAND_DUE_CHANNEL } from '../db/migrations/1732700000002-command-due-notify.js';
import type { ApiMetrics } from '../metrics/metrics.js';
import type { CommandRow, CommandsRepository } from './commands.repository.js';
import { DueIndex } from './due-index.js';

export interface DueCommandsSettings {
  /** COMMAND_INDEX: answer polls with nothing due from memory (false: every poll is a statement). */
  enabled: boolean;
  /** COMMAND_RECONCILE_MS: how often the index is read again in full (0: only on each reconnect). */
  reconcileMs: number;
}

/** Every device with a pending command and the earliest due time, as epoch ms (a float8: exact). */
const PENDING_SQL = `
SELECT device_id::float8 AS device_id, floor(extract(epoch FROM min(not_before)) * 1000)::float8 AS due_ms
FROM command WHERE delivered_at IS NULL GROUP BY device_id`;

/**
 * The poll path. A poll asks the database only when the device may have a command due (due-index.ts);
 * the rest, almost every poll, is answered "nothing" from memory. The index is fed by the command
 * table's notifications (migration 1732700000002) on the control connection, read in full whenever
 * that connection (re)opens and every COMMAND_RECONCILE_MS. While the connection is down the
 * index may miss commands, so every poll asks the database until it is back and read again.
 *
 * Guarantees: a command is handed out once (the statement takes it with SKIP LOCKED, whichever
 * replica polls); a command committed while the control connection is up is handed out at the
 * device's first poll after it is due and its notification arrived (milliseconds on a LAN);
 * one whose notification was lost, within COMMAND_RECONCILE_MS more.
 */
export class DueCommands implements OnApplicationShutdown {
  private readonly log = new Logger('DueCommands');
  private readonly index = new DueIndex();
  private trusted = false;
  private schema: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;

  constructor(
    private readonly commands: CommandsRepository,
    private readonly db: Database,
    private readonly metrics: ApiMetrics,
    private readonly settings: DueCommandsSettings,
  ) {
    metrics.trackCommandIndex(() => ({ devices: this.index.size, trusted: this.trusted }));
    if (!settings.enabled) return;
    db.control.listen(COMMAND_DUE_CHANNEL, {
      onUp: (client) => this.onUp(client),
      onDown: () => {
        if (this.trusted) this.log.warn('control connection lost: every poll asks the database until it is back');
        this.trusted = false;
      },
      onNotification: (payload) => this.onNotification(payload),
    });
    if (settings.reconcileMs > 0) {
      this.timer = setInterval(() => void this.reconcile(), settings.reconcileMs);
      this.timer.unref();
    }
  }

  /** The device's oldest due command, taken (delivered) now; undefined when none is due. */
  async take(deviceId: number, nowMs = Date.now()): Promise<CommandRow | undefined> {
    if (this.trusted && !this.index.mayHaveDue(deviceId, nowMs)) {
      this.metrics.commandPolls.inc({ answered: 'memory' });
      return undefined;
    }
    this.metrics.commandPolls.inc({ answered: 'database' });
    const mark = this.index.mark();
    const row = await this.commands.takeNextDue(deviceId);
    if (this.settings.enabled) this.index.settle(deviceId, row?.next_due_ms ?? undefined, mark);
    return row && row.id !== null ? row : undefined;
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  private async onUp(client: pg.Client): Promise<void> {
    this.trusted = false;
    this.schema = (await client.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]?.schema;
    await this.readAll(client);
    if (!this.trusted) this.log.log(`command index: ${this.index.size} devices with pending commands; polls for others answered from memory`);
    this.trusted = true;
  }

  private onNotification(payload: string): void {
    const [device, due, schema] = payload.split(' ', 3);
    if (schema !== this.schema) return;
    const deviceId = Number(device);
    const dueMs = Number(due);
    if (Number.isSafeInteger(deviceId) && Number.isFinite(dueMs)) this.index.add(deviceId, dueMs);
  }

  private async readAll(client?: pg.Client): Promise<void> {
    const mark = this.index.mark();
    const rows = client ? (await client.query<{ device_id: number; due_ms: number }>(PENDING_SQL)).rows : await this.db.control.query<{ device_id: number; due_ms: number }>(PENDING_SQL);
    this.index.reconcile(new Map(rows.map((row) => [row.device_id, row.due_ms])), mark);
  }

  private reconcile(): Promise<void> {
    if (!this.trusted) return Promise.resolve();
    // A failure drops the control connection (or was a passing error): the next reconnect reads all.
    return (this.reconciling ??= this.readAll()
      .catch((error: unknown) => this.log.warn(`command index reconciliation failed: ${(error as Error).message}`))
      .finally(() => (this.reconciling = undefined)));
  }
}
