import type { KubeObject } from './kube.js';

/** Whether `object` is owned by the experiment object with this uid. */
export function ownedBy(object: KubeObject, uid: string): boolean {
  return (object.metadata.ownerReferences ?? []).some((owner) => owner.uid === uid);
}

/** "namespace/name" of the LoadExperiment that controls `object`, if one does. */
export function ownerKey(object: KubeObject): string | undefined {
  const owner = (object.metadata.ownerReferences ?? []).find((reference) => reference.kind === 'LoadExperiment' && reference.apiVersion.startsWith('loadlab.dev/'));
  return owner ? `${object.metadata.namespace ?? ''}/${owner.name}` : undefined;
}
