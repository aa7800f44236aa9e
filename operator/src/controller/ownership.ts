import type { KubeObject, Resource } from './kube.js';

/** Whether `object` is owned by the experiment object with this uid. */
export function ownedBy(object: KubeObject, uid: string): boolean {
  return (object.metadata.ownerReferences ?? []).some((owner) => owner.uid === uid);
}

/** "namespace/name" of the LoadExperiment that controls `object`, if one does. */
export function ownerKey(object: KubeObject): string | undefined {
  const owner = (object.metadata.ownerReferences ?? []).find((reference) => reference.kind === 'LoadExperiment' && reference.apiVersion.startsWith('loadlab.dev/'));
  return owner ? `${object.metadata.namespace ?? ''}/${owner.name}` : undefined;
}

/**
 * Why the operator will not touch an object of the name it wants: no ownerReference has this
 * experiment's uid (somebody else made it, or an earlier experiment of the same name whose
 * children were not collected yet), and applying over it would take it over.
 */
export function nameConflictMessage(resource: Pick<Resource, 'kind'>, object: KubeObject, experiment: { name: string; uid: string }): string {
  const { name, namespace } = object.metadata;
  const owners = (object.metadata.ownerReferences ?? []).map((owner) => `${owner.kind} ${owner.name} (uid ${owner.uid})`);
  const ownedBy = owners.length > 0 ? `it belongs to ${owners.join(', ')}` : 'it has no owner';
  return `a ${resource.kind} named ${namespace ? `${namespace}/` : ''}${name} already exists and does not belong to LoadExperiment ${experiment.name} (uid ${experiment.uid}): ${ownedBy}; the operator will not take it over: rename the experiment, or delete or rename that ${resource.kind}, then edit the experiment to run again`;
}
