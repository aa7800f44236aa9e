import { RESOURCES, type KubeClient, type KubeObject } from '../../src/controller/index.js';

/** A container's env entry: a value, or a reference to a Secret's key (what the operator builds). */
export interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

/**
 * The environment a container gets, as the kubelet resolves it: values as written, secretKeyRef
 * read from the Secret in the pod's namespace (data is base64). A reference to a Secret or key that
 * does not exist throws, as the kubelet refuses to start such a container.
 */
export async function resolveEnv(client: KubeClient | undefined, namespace: string, env: readonly EnvEntry[]): Promise<Record<string, string>> {
  const resolved: Record<string, string> = {};
  for (const entry of env) {
    const ref = entry.valueFrom?.secretKeyRef;
    if (!ref) {
      resolved[entry.name] = entry.value ?? '';
      continue;
    }
    if (!client) throw new Error(`${entry.name} comes from Secret ${ref.name}, and no client was given to read it`);
    const secret = await client.get<KubeObject & { data?: Record<string, string> }>(RESOURCES.secrets, namespace, ref.name);
    const data = secret.data?.[ref.key];
    if (data === undefined) throw new Error(`Secret ${namespace}/${ref.name} has no key ${ref.key}`);
    resolved[entry.name] = Buffer.from(data, 'base64').toString('utf8');
  }
  return resolved;
}
