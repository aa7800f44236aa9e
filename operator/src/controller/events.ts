import { isAlreadyExists, RESOURCES, type KubeClient, type KubeObject } from './kube.js';
import { microTime } from './leader.js';
import type { Logger } from './log.js';
import { eventName, REPORTING_CONTROLLER } from '../contract/names.js';

/*
 * Events (events.k8s.io/v1; `kubectl describe` and `kubectl get events` show them as core
 * Events). Each is named after the run and what happened, so a step that is retried after its
 * status write does not report twice: the second create is AlreadyExists and ignored. Recording
 * never fails a reconcile.
 */

export interface EventSpec {
  type: 'Normal' | 'Warning';
  /** CamelCase, e.g. Provisioned, TestRunFailed. */
  reason: string;
  /** For a person; at most 1 kB. */
  note: string;
  /** What the operator did, e.g. Provision, Run, Analyze, Cleanup. */
  action: string;
  runId: string;
  /** Distinguishes repeated events of the same reason within a run, e.g. the search step. */
  detail?: string | number;
}

export class EventRecorder {
  recorded = 0;
  constructor(
    private readonly client: KubeClient,
    private readonly identity: string,
    private readonly log: Logger,
  ) {}

  async record(regarding: KubeObject, event: EventSpec): Promise<void> {
    const namespace = regarding.metadata.namespace ?? 'default';
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: eventName(regarding.metadata.name, event.runId, event.reason, event.detail), namespace },
      eventTime: microTime(new Date()),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.identity.slice(0, 128),
      action: event.action,
      reason: event.reason,
      note: event.note.slice(0, 1024),
      type: event.type,
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: regarding.metadata.name,
        namespace,
        uid: regarding.metadata.uid,
      },
    };
    try {
      await this.client.create(RESOURCES.events, namespace, body);
      this.recorded++;
    } catch (error) {
      if (isAlreadyExists(error)) return;
      this.log.warn('could not record an event', { reason: event.reason, error: String((error as Error).message ?? error) });
    }
  }
}
