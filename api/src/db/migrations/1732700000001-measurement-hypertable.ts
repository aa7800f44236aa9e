import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * On TimescaleDB, `measurement` becomes a hypertable; on plain PostgreSQL this migration does
 * nothing, so the same migrations serve both.
 *
 * - 1-day chunks: at the seed's 20k devices every 30 s a day is ~58M rows, a chunk whose indexes
 *   fit in memory; smaller fleets simply get smaller chunks.
 * - Compression segmented by device_id and ordered by device_time DESC: readings of one device
 *   compress together (similar values, delta-encoded times) and per-device reads stay cheap.
 *   Chunks are compressed after 7 days, the same horizon as MEASUREMENT_MAX_AGE_HOURS, so late
 *   reports from buffering devices rarely land in a compressed chunk.
 */
export class MeasurementHypertable1732700000001 implements MigrationInterface {
  name = 'MeasurementHypertable1732700000001';

  async up(q: QueryRunner): Promise<void> {
    const available = await q.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'`);
    if (available.length === 0) return;
    await q.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
    await q.query(`SELECT create_hypertable('measurement', 'device_time', chunk_time_interval => INTERVAL '1 day', migrate_data => true)`);
    await q.query(`ALTER TABLE measurement SET (
      timescaledb.compress,
      timescaledb.compress_segmentby = 'device_id',
      timescaledb.compress_orderby = 'device_time DESC')`);
    await q.query(`SELECT add_compression_policy('measurement', INTERVAL '7 days')`);
  }

  async down(q: QueryRunner): Promise<void> {
    const installed = await q.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`);
    if (installed.length === 0) return;
    await q.query(`SELECT remove_compression_policy('measurement', if_exists => true)`);
  }
}
