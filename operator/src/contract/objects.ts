import type { KubernetesObject, V1ObjectMeta, V1OwnerReference, V1ResourceRequirements } from '@kubernetes/client-node';
import { API_VERSION, KIND, type LoadExperiment } from '../schema/load-experiment.js';

/*
 * The Kubernetes objects loadlab builds, typed with client-node's model types (types only: the
 * objects stay the plain JSON `kubectl apply` and the apiserver read). A built object always has
 * its kind, name, namespace and labels.
 */

export type BuiltMetadata = V1ObjectMeta & { name: string; namespace: string; labels: Record<string, string> };

export type Built<T extends KubernetesObject> = Omit<T, 'metadata'> & { apiVersion: string; kind: string; metadata: BuiltMetadata };

/** The experiment as controller owner: its children are garbage-collected with it. */
export function ownerReference(experiment: LoadExperiment, uid: string): V1OwnerReference {
  return { apiVersion: API_VERSION, kind: KIND, name: experiment.metadata.name, uid, controller: true, blockOwnerDeletion: true };
}

type Quantities = { cpu?: string | number; memory?: string | number };

/**
 * Resource requirements as Kubernetes stores them: the schema takes a quantity as a number or a
 * string (as the apiserver does, int-or-string), the model types and the stored object a string.
 */
export function resourceRequirements(resources: { requests?: Quantities; limits?: Quantities } | undefined): V1ResourceRequirements | undefined {
  if (!resources) return undefined;
  const strings = (quantities: Quantities | undefined) =>
    quantities && Object.fromEntries(Object.entries(quantities).filter(([, value]) => value !== undefined).map(([key, value]) => [key, String(value)]));
  const requests = strings(resources.requests);
  const limits = strings(resources.limits);
  return { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) };
}
