import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The seed's device, measurement and command tables, plus two small rollups that keep
 * GET /stats independent of history: `measurement_hourly` (hour-of-day aggregates, split into
 * shards so concurrent ingest batches rarely wait on the same row) and `device_latest`
 * (the newest reading per device). Ingest updates all three in one statement, so they agree.
 */
export class InitialSchema1732700000000 implements MigrationInterface {
  name = 'InitialSchema1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE device (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        serial     text NOT NULL UNIQUE CHECK (length(serial) BETWEEN 1 AND 128),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    // One row per (device, device time): a retried report hits the key and is not stored twice.
    await q.query(`
      CREATE TABLE measurement (
        device_id    bigint NOT NULL REFERENCES device (id) ON DELETE CASCADE,
        device_time  timestamptz NOT NULL,
        received_at  timestamptz NOT NULL DEFAULT now(),
        charge_now   double precision NOT NULL,
        charge_full  double precision NOT NULL,
        charge_rate  double precision NOT NULL,
        ambient_temp double precision NOT NULL,
        water_temp   double precision NOT NULL,
        water_level  double precision NOT NULL,
        PRIMARY KEY (device_id, device_time)
      )`);
    await q.query(`
      CREATE TABLE command (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        device_id    bigint NOT NULL REFERENCES device (id) ON DELETE CASCADE,
        not_before   timestamptz NOT NULL DEFAULT now(),
        charge_on    boolean,
        fill_on      boolean,
        flush_litres double precision NOT NULL DEFAULT 0 CHECK (flush_litres >= 0),
        created_at   timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz
      )`);
    // Polls only ever look for undelivered commands of one device: keep that index tiny.
    await q.query(`CREATE INDEX command_pending_idx ON command (device_id, not_before, id) WHERE delivered_at IS NULL`);
    await q.query(`
      CREATE TABLE measurement_hourly (
        hour_of_day      smallint NOT NULL CHECK (hour_of_day BETWEEN 0 AND 23),
        shard            smallint NOT NULL,
        measurements     bigint NOT NULL,
        water_temp_sum   double precision NOT NULL,
        water_temp_sumsq double precision NOT NULL,
        PRIMARY KEY (hour_of_day, shard)
      )`);
    await q.query(`
      CREATE TABLE device_latest (
        device_id    bigint PRIMARY KEY REFERENCES device (id) ON DELETE CASCADE,
        device_time  timestamptz NOT NULL,
        charge_now   double precision NOT NULL,
        ambient_temp double precision NOT NULL,
        water_temp   double precision NOT NULL,
        water_level  double precision NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE device_latest, measurement_hourly, command, measurement, device');
  }
}
