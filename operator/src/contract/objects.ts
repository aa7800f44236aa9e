import type { KubernetesObject, V1EnvVar, V1ObjectMeta, V1OwnerReference, V1PodSecurityContext, V1ResourceRequirements, V1SecurityContext } from '@kubernetes/client-node';
import { API_VERSION, KIND, type LoadExperiment } from '../schema/load-experiment.js';
import { labelsFor } from './names.js';

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

/**
 * A secret a container is given: by reference to a Secret's key (what the operator builds: the value
 * is in no pod spec, TestRun or Job, only in the Secret), or in the clear where there is no Secret
 * (`loadlab render` output applied by hand, tests).
 */
export type SecretValue = string | { secretName: string; key: string };

export function secretEnvVar(name: string, value: SecretValue): V1EnvVar {
  return typeof value === 'string' ? { name, value } : { name, valueFrom: { secretKeyRef: { name: value.secretName, key: value.key } } };
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

/** Which run of which experiment a child object belongs to. */
export interface RunIdentity {
  /** Names the run: lowercase letters, digits and "-", at most 24 characters (e.g. "r3" or "step-4"). */
  runId: string;
  /** Default: the experiment's namespace, else "default". */
  namespace?: string;
  /** The LoadExperiment's uid: when given, the object is owned by (and garbage-collected with) it. */
  ownerUid?: string;
}

export function namespaceOf(experiment: LoadExperiment, identity: RunIdentity): string {
  return identity.namespace ?? experiment.metadata.namespace ?? 'default';
}

/** The metadata of a run's child object: its name, namespace, the run's labels, and the experiment as owner when known. */
export function runChildMetadata(experiment: LoadExperiment, identity: RunIdentity, name: string, component: string, annotations?: Record<string, string>): BuiltMetadata {
  const ownerReferences = identity.ownerUid ? [ownerReference(experiment, identity.ownerUid)] : undefined;
  return {
    name,
    namespace: namespaceOf(experiment, identity),
    labels: labelsFor(experiment, identity.runId, component),
    ...(annotations ? { annotations } : {}),
    ...(ownerReferences ? { ownerReferences } : {}),
  };
}

/**
 * Pod Security "restricted" for a pod: non-root with a numeric uid (the kubelet can only verify
 * runAsNonRoot for a number), RuntimeDefault seccomp. A fresh object per call: shared references
 * would print as YAML anchors.
 */
export function restrictedPodSecurityContext(uid: number): V1PodSecurityContext {
  return { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, seccompProfile: { type: 'RuntimeDefault' } };
}

/** Pod Security "restricted" for a container: no privilege escalation, no capabilities, a read-only root filesystem. */
export function restrictedContainerSecurityContext(): V1SecurityContext {
  return { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true };
}
