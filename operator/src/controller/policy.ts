import type { LoadExperiment } from '../schema/load-experiment.js';
import type { OperatorConfig } from './config.js';

/*
 * What this installation allows an experiment, from the operator's configuration, checked before
 * anything is created: the CRD cannot know an installation's limits. A refusal fails the run as
 * InvalidSpec with the field, the figure and the knob that sets the limit.
 */

/** Connections the operator itself opens as the experiment's role (data preparation, migration checks). */
const OPERATOR_CONNECTIONS = 4;
/** Each API process's control connection: readiness pings and LISTEN (api/src/db/control-connection.ts). */
const CONTROL_CONNECTIONS = 1;

/**
 * Database connections an experiment's role may hold at most: its API replicas' pools and each
 * one's control connection (readiness pings and the command index's LISTEN, outside the request
 * pool), plus the pods a rolling update adds for a while (the Deployment's default maxSurge, 25% rounded up), plus the operator's
 * own. The role gets this as its CONNECTION LIMIT, so one experiment cannot take
 * the shared database's every connection whatever its pods do.
 */
export function experimentConnectionLimit(experiment: LoadExperiment): number {
  const { replicas, dbPoolSize } = experiment.spec.target;
  return (replicas + Math.ceil(replicas / 4)) * (dbPoolSize + CONTROL_CONNECTIONS) + OPERATOR_CONNECTIONS;
}

/** Why this installation refuses the experiment (empty: allowed). */
export function policyProblems(experiment: LoadExperiment, config: Pick<OperatorConfig, 'databaseConnectionsPerExperiment'>): string[] {
  const problems: string[] = [];
  const connections = experimentConnectionLimit(experiment);
  if (connections > config.databaseConnectionsPerExperiment) {
    const { replicas, dbPoolSize } = experiment.spec.target;
    problems.push(
      `spec.target: ${replicas} replicas x dbPoolSize ${dbPoolSize} need up to ${connections} database connections (with each pod's control connection, a rolling update's extra pods and the operator's ${OPERATOR_CONNECTIONS}); ` +
        `this installation allows ${config.databaseConnectionsPerExperiment} per experiment (the operator's DATABASE_CONNECTIONS_PER_EXPERIMENT): lower replicas or dbPoolSize`,
    );
  }
  return problems;
}
