import { setTimeout as sleep } from 'node:timers/promises';
import { RESOURCES, type KubeClient, type KubeObject } from '../../src/controller/kube.js';

/*
 * Stand-ins for the controllers an envtest-style control plane does not run (kube-apiserver + etcd
 * only: no kubelet, no Deployment or Job controller, no k6-operator). They write what those controllers
 * would write, through the real /status subresources, so the operator under test sees exactly the
 * objects it would see in a cluster. For the operator's tests and for whole-pipeline tests that
 * stand in for k6-operator; never used by the operator itself.
 */

/** What the Deployment controller and the kubelet report once every replica is ready. */
export async function markDeploymentAvailable(client: KubeClient, namespace: string, name: string): Promise<KubeObject> {
  const deployment = await client.get<KubeObject & { spec: { replicas?: number }; status?: unknown }>(RESOURCES.deployments, namespace, name);
  const replicas = deployment.spec.replicas ?? 1;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return client.replace(RESOURCES.deployments, namespace, name, {
    ...deployment,
    status: {
      observedGeneration: deployment.metadata.generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
      conditions: [
        { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.', lastUpdateTime: now, lastTransitionTime: now },
        { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${name}" has successfully progressed.`, lastUpdateTime: now, lastTransitionTime: now },
      ],
    },
  }, 'status');
}

export type TestRunStage = 'initialization' | 'initialized' | 'created' | 'started' | 'stopped' | 'finished' | 'error';

/**
 * Moves a TestRun to `stage` as k6-operator v1.6 does, with its TestRunRunning condition: Unknown
 * while preparing, True from started (lastTransitionTime = when the load began), False once
 * finished or failed (lastTransitionTime = when it ended). `at` backdates the transition, so a test
 * can replay a run that "happened" over minutes in milliseconds.
 */
export async function setTestRunStage(client: KubeClient, namespace: string, name: string, stage: TestRunStage, options: { at?: Date; message?: string } = {}): Promise<KubeObject> {
  const testRun = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string; lastTransitionTime: string }[] } }>(RESOURCES.testRuns, namespace, name);
  const at = (options.at ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const running = stage === 'started' || stage === 'stopped' ? 'True' : stage === 'finished' || stage === 'error' ? 'False' : 'Unknown';
  const previous = testRun.status?.conditions?.find((condition) => condition.type === 'TestRunRunning');
  const reason = { True: 'TestRunRunningTrue', False: stage === 'error' ? 'TestRunFailed' : 'TestRunRunningFalse', Unknown: 'TestRunPreparation' }[running];
  const condition = {
    type: 'TestRunRunning',
    status: running,
    reason,
    message: options.message ?? (stage === 'error' ? 'a runner job failed' : ''),
    lastTransitionTime: previous && previous.status === running ? previous.lastTransitionTime : at,
  };
  return client.replace(RESOURCES.testRuns, namespace, name, { ...testRun, status: { ...testRun.status, stage, conditions: [condition] } }, 'status');
}

export type JobState = 'running' | 'succeeded' | 'failed';

/**
 * Moves a Job's status as the Job controller (kube-controller-manager) of Kubernetes 1.33 does for
 * an Indexed Job whose pods all start together: running (startTime, every pod active and ready);
 * succeeded (every index completed: SuccessCriteriaMet, then Complete, at `at`); failed (one pod
 * failed with backoffLimit 0: FailureTarget, then Failed with reason BackoffLimitExceeded). `at`
 * backdates the transition, as setTestRunStage does.
 */
export async function setJobStatus(client: KubeClient, namespace: string, name: string, state: JobState, options: { at?: Date; startedAt?: Date; message?: string } = {}): Promise<KubeObject> {
  const job = await client.get<KubeObject & { spec: { completions?: number }; status?: Record<string, unknown> }>(RESOURCES.jobs, namespace, name);
  const rfc3339 = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const at = rfc3339(options.at ?? new Date());
  const completions = job.spec.completions ?? 1;
  const startTime = (job.status?.startTime as string | undefined) ?? rfc3339(options.startedAt ?? options.at ?? new Date());
  const condition = (type: string, reason: string, message: string) => ({ type, status: 'True', reason, message, lastProbeTime: at, lastTransitionTime: at });
  const status =
    state === 'running'
      ? { startTime, active: completions, ready: completions, terminating: 0, uncountedTerminatedPods: {} }
      : state === 'succeeded'
        ? {
            startTime, completionTime: at, succeeded: completions, active: 0, ready: 0, terminating: 0, completedIndexes: completions > 1 ? `0-${completions - 1}` : '0', uncountedTerminatedPods: {},
            conditions: [condition('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods'), condition('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods')],
          }
        : {
            startTime, failed: 1, active: 0, ready: 0, terminating: 0, uncountedTerminatedPods: {},
            conditions: [
              condition('FailureTarget', 'BackoffLimitExceeded', options.message ?? 'Job has reached the specified backoff limit'),
              condition('Failed', 'BackoffLimitExceeded', options.message ?? 'Job has reached the specified backoff limit'),
            ],
          };
  return client.replace(RESOURCES.jobs, namespace, name, { ...job, status }, 'status');
}

/** Polls `check` until it returns a value (not undefined/false), or fails with `what` after the timeout. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String((lastError as Error).message ?? lastError)})` : ''}`);
    await sleep(options.intervalMs ?? 20);
  }
}
