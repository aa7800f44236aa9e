/**
 * loadlab's own query for postgres_exporter (`--extend.query-path`, in local mode and in the
 * charts): what its collectors do not export and the analysis judges the database by. Metric
 * names are `pg_loadlab_<column>`; the `pg_` prefix puts them under the database's selector in the
 * catalog like every other postgres_exporter series.
 *
 * - lock_waiting: client backends waiting for a heavyweight lock (a row, a table, a transaction
 *   id): a transaction holding what ingest needs shows here, where the pg_locks collector only
 *   counts locks by mode, granted or not.
 * - longest_transaction_seconds: the oldest open transaction of a client, running or idle in
 *   transaction (postgres_exporter's max_tx_duration is split by state; a lock holder is often idle
 *   in transaction).
 *
 * The exporter's own connection is left out. (postgres_exporter deprecated extended queries in
 * 0.13 but still runs them, 0.17 included; Debian's 0.11 is what runs here.)
 */
export const POSTGRES_EXPORTER_QUERIES = `pg_loadlab:
  master: true
  query: |
    SELECT count(*) FILTER (WHERE wait_event_type = 'Lock')::float8 AS lock_waiting,
           coalesce(extract(epoch FROM clock_timestamp() - min(xact_start)), 0)::float8 AS longest_transaction_seconds
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()
  metrics:
    - lock_waiting:
        usage: GAUGE
        description: Client backends of this database waiting for a lock.
    - longest_transaction_seconds:
        usage: GAUGE
        description: Age of the oldest open transaction of a client of this database, running or idle in transaction.
`;
