import { PostgresCluster } from '@loadlab/sandbox/postgres';

/** A throwaway PostgreSQL; other processes on this machine pick free ports too, so a lost race is retried. */
export async function startPostgres(): Promise<PostgresCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await PostgresCluster.start();
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}
