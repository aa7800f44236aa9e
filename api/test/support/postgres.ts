// Throwaway PostgreSQL clusters are local mode's (operator/src/local/postgres.ts); tests reuse them.
export { freePort, PostgresCluster, postgresBinDir } from '@loadlab/operator/local/postgres';
