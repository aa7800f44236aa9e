/*
 * Pod Security "restricted" for everything we ship: a numeric non-root user (so the kubelet can
 * verify runAsNonRoot), RuntimeDefault seccomp, no privilege escalation, every capability dropped,
 * a read-only root filesystem (writable paths are emptyDirs, named where they are mounted).
 */

export function restrictedPod(uid: number) {
  return { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, seccompProfile: { type: 'RuntimeDefault' } };
}

export const RESTRICTED_CONTAINER = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
} as const;

/** The namespace labels that make the API server enforce "restricted" on every pod in it. */
export const ENFORCE_RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
  'pod-security.kubernetes.io/warn': 'restricted',
} as const;
