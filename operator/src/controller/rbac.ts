/*
 * The operator's permissions, as data: exactly the verbs and resources the code uses (no
 * wildcards; Secrets: create only, it never reads one). The cdk8s operator chart imports these to write the Role/ClusterRole;
 * the RBAC test runs the operator under a ServiceAccount bound to exactly these rules.
 *
 * - EXPERIMENT_RULES apply in every watched namespace: a ClusterRole with a ClusterRoleBinding
 *   when WATCH_NAMESPACES is all, else the same rules in a Role (and RoleBinding) per namespace.
 * - LEASE_RULES apply in LEASE_NAMESPACE only (leader election).
 *
 * Where each verb is used:
 *   loadexperiments            get (re-read before a status write), list/watch (the cache),
 *                              patch (add/remove the finalizer)
 *   loadexperiments/status     update (status is written with PUT after re-reading)
 *   loadexperiments/finalizers update (ownerReferences with blockOwnerDeletion need it where the
 *                              OwnerReferencesPermissionEnforcement admission plugin runs)
 *   deployments                list/watch (the cache), get (one the cache lacks: is the name
 *                              somebody else's?), create + patch (server-side apply creates or
 *                              updates; creating through apply needs create), delete (cleanup)
 *   services                   get (is the name somebody else's?), create + patch, delete
 *   configmaps                 create + patch (server-side apply: k6 scripts, the drivers'
 *                              experiment), get + delete (cleanup: a ConfigMap is deleted only
 *                              when it is the experiment's own, read first, by uid precondition)
 *   secrets                    create (the API's Secret: named after its content and immutable,
 *                              so never updated; never read: no get, list or watch; owned by the
 *                              experiment, the garbage collector deletes them with it)
 *   testruns                   get (confirm a TestRun the cache lacks), list/watch (the cache),
 *                              create, delete (stop the load, cleanup)
 *   jobs (batch)               the loadlab engine's driver Jobs, as testruns: get, list/watch,
 *                              create, delete (their pods go with them: background propagation;
 *                              the operator never touches the pods themselves)
 *   events (events.k8s.io)     create (one per transition; duplicates are refused by name)
 *   leases                     get, create, update (acquire, renew, release)
 */

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const EXPERIMENT_RULES: readonly PolicyRule[] = [
  { apiGroups: ['loadlab.dev'], resources: ['loadexperiments'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: ['loadlab.dev'], resources: ['loadexperiments/status'], verbs: ['update'] },
  { apiGroups: ['loadlab.dev'], resources: ['loadexperiments/finalizers'], verbs: ['update'] },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  { apiGroups: ['k6.io'], resources: ['testruns'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
];

export const LEASE_RULES: readonly PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

/** Every rule, for checks: no wildcard, and Secrets only created. */
export function allRules(): PolicyRule[] {
  return [...EXPERIMENT_RULES, ...LEASE_RULES].map((rule) => ({ apiGroups: [...rule.apiGroups], resources: [...rule.resources], verbs: [...rule.verbs] }));
}

/** The RBAC objects for one operator installation (what the cdk8s chart renders), as plain data. */
export function rbacManifests(options: { serviceAccount: string; namespace: string; watchNamespaces: 'all' | readonly string[]; leaseNamespace: string; name?: string }) {
  const name = options.name ?? 'loadlab-operator';
  const subject = { kind: 'ServiceAccount', name: options.serviceAccount, namespace: options.namespace };
  const rules = allRules();
  const experimentRules = rules.slice(0, EXPERIMENT_RULES.length);
  const leaseRules = rules.slice(EXPERIMENT_RULES.length);
  const objects: Record<string, unknown>[] = [];
  if (options.watchNamespaces === 'all') {
    objects.push(
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: experimentRules },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name }, subjects: [subject] },
    );
  } else {
    for (const namespace of options.watchNamespaces) {
      objects.push(
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace }, rules: experimentRules },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name, namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [subject] },
      );
    }
  }
  objects.push(
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: `${name}-leader-election`, namespace: options.leaseNamespace }, rules: leaseRules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${name}-leader-election`, namespace: options.leaseNamespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${name}-leader-election` },
      subjects: [subject],
    },
  );
  return objects;
}
