/**
 * kubectl as a child process, for the test control plane (control-plane.ts) and the local cluster
 * (cluster.ts): stdout on success, a KubectlError holding stderr on failure, always bounded in time.
 */
import { spawn } from 'node:child_process';

export interface KubectlOptions {
  /** Written to kubectl's standard input (for `-f -`). */
  stdin?: string;
  /** Default 60 s. */
  timeoutMs?: number;
  /** Receives kubectl's stderr of a successful run (warnings, e.g. Pod Security's). */
  onStderr?: (text: string) => void;
}

/** The error kubectl() throws: its message holds kubectl's stderr. */
export class KubectlError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`kubectl ${args.join(' ')} failed (exit ${code}): ${stderr.trim() || stdout.trim()}`);
    this.name = 'KubectlError';
  }
}

/** Runs `bin --kubeconfig=... --cache-dir=... ARGS`; resolves to stdout. */
export function runKubectl(bin: string, kubeconfig: string, cacheDir: string, args: readonly string[], options: KubectlOptions = {}): Promise<string> {
  const full = [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cacheDir}`, ...args];
  return new Promise((ok, fail) => {
    const child = spawn(bin, full, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => fail(new KubectlError(args, null, stdout, `${stderr}${error.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) {
        options.onStderr?.(stderr);
        ok(stdout);
      } else fail(new KubectlError(args, code, stdout, signal ? `${stderr}(killed by ${signal})` : stderr));
    });
    child.stdin.on('error', () => {}); // kubectl may exit before reading all of it
    child.stdin.end(options.stdin ?? '');
  });
}
