import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { DatabaseBusyError, DatabaseUnavailableError, pgCode } from '../db/database.js';
import type { ApiMetrics } from '../metrics/metrics.js';
import type { MeasurementInput } from './measurement.schema.js';
import type { DeviceReadings, MeasurementsRepository } from './measurements.repository.js';

/** The queue of rows waiting to be written is full: shed the request (503) instead of growing. */
export class WriteQueueFullError extends Error {}
/** The token names a device the database does not know (e.g. after a reset): log in again. */
export class UnknownDeviceError extends Error {}

/** What became of a request's readings once its statement committed. */
export interface WriteOutcome {
  /**
   * The readings (indexes into the request's rows) refused because a different reading of the
   * same device and device time is stored; every other reading is stored.
   */
  conflicts: number[];
}

interface PendingWrite extends DeviceReadings {
  resolve: (outcome: WriteOutcome) => void;
  reject: (error: unknown) => void;
}

export interface WriterSettings {
  maxBatchRows: number;
  maxConcurrency: number;
  maxPendingRows: number;
}

/**
 * Group commit: rows of requests that arrive while earlier statements are in flight are coalesced
 * into one statement (up to maxBatchRows), with at most maxConcurrency statements at once. At low
 * load every request is written at once; under load batches grow, so the database does fewer,
 * larger commits. A request is resolved only after its statement committed.
 */
export class MeasurementWriter implements OnApplicationShutdown {
  private readonly logger = new Logger('MeasurementWriter');
  private queue: PendingWrite[] = [];
  private queuedRows = 0;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly measurements: MeasurementsRepository,
    private readonly metrics: ApiMetrics,
    private readonly settings: WriterSettings,
  ) {}

  write(deviceId: number, rows: MeasurementInput[]): Promise<WriteOutcome> {
    if (this.queuedRows + rows.length > this.settings.maxPendingRows) {
      return Promise.reject(new WriteQueueFullError(`write queue full (${this.queuedRows} rows pending)`));
    }
    return new Promise<WriteOutcome>((resolve, reject) => {
      this.queue.push({ deviceId, rows, resolve, reject });
      this.queuedRows += rows.length;
      this.metrics.pendingWrites.set(this.queuedRows);
      this.pump();
    });
  }

  // Nest runs this once the HTTP server has closed (no request can queue a write any more) and
  // before the database module closes the pool.
  async onApplicationShutdown(): Promise<void> {
    this.logger.log('http server closed; flushing queued writes');
    await this.drain();
  }

  /** Resolves once nothing is queued or being written (graceful shutdown). */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < this.settings.maxConcurrency && this.queue.length > 0) {
      const batch: PendingWrite[] = [];
      let rows = 0;
      // Always take at least one request, even one larger than maxBatchRows.
      while (this.queue.length > 0 && (batch.length === 0 || rows + this.queue[0]!.rows.length <= this.settings.maxBatchRows)) {
        const next = this.queue.shift()!;
        batch.push(next);
        rows += next.rows.length;
      }
      this.queuedRows -= rows;
      this.metrics.pendingWrites.set(this.queuedRows);
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
        if (this.inFlight === 0 && this.queue.length === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
      });
    }
  }

  private async flush(batch: PendingWrite[]): Promise<void> {
    try {
      const outcomes = await this.store(batch);
      batch.forEach((pending, i) => pending.resolve(outcomes[i]!));
    } catch (error) {
      // Splitting only helps against a bad request; a database that is away or timing out would
      // just be asked the same thing once per request.
      if (error instanceof DatabaseUnavailableError || error instanceof DatabaseBusyError || batch.length === 1) {
        for (const pending of batch) pending.reject(this.explain(error));
        return;
      }
      // One bad request must not fail its neighbours: write them one by one to find it.
      for (const pending of batch) {
        try {
          pending.resolve((await this.store([pending]))[0]!);
        } catch (single) {
          pending.reject(this.explain(single));
        }
      }
    }
  }

  /** One statement for the batch; per request, the readings that conflict with stored ones. */
  private async store(batch: PendingWrite[]): Promise<WriteOutcome[]> {
    let total = 0;
    for (const { rows } of batch) total += rows.length;
    const inserted = await this.measurements.insert(batch);
    this.metrics.writeBatchRows.observe(total);
    this.metrics.ingested.inc(inserted);
    const outcomes: WriteOutcome[] = batch.map(() => ({ conflicts: [] }));
    // Every row new (the common case): nothing else to ask. Otherwise some are retries of stored
    // readings (fine) or readings that contradict stored ones (refused): one more query tells.
    if (inserted === total) return outcomes;
    const conflicting = await this.measurements.conflicts(batch);
    let first = 0;
    let next = 0;
    batch.forEach((pending, i) => {
      while (next < conflicting.length && conflicting[next]! < first + pending.rows.length) outcomes[i]!.conflicts.push(conflicting[next++]! - first);
      first += pending.rows.length;
    });
    this.metrics.conflicts.inc(conflicting.length);
    this.metrics.duplicates.inc(total - inserted - conflicting.length);
    return outcomes;
  }

  private explain(error: unknown): unknown {
    return pgCode(error) === '23503' ? new UnknownDeviceError('device is not registered (database reset?): log in again with POST /v1/devices/login') : error;
  }
}
