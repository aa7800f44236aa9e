// Throwaway PostgreSQL clusters (sandbox/src/postgres.ts), which local mode uses too.
export { freePort, PostgresCluster, postgresBinDir } from '@loadlab/sandbox/postgres';
