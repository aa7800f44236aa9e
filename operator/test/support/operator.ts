import { createLogger, loadKubeConfig, loadOperatorConfig, Operator } from '../../src/controller/index.js';

/**
 * The operator under test, configured from environment variables as its container is, against the
 * test's apiserver, once it leads. Its log lines go to `logs` (and to stderr with LOADLAB_TEST_LOG
 * set; LOADLAB_TEST_LOG_LEVEL sets the level).
 */
export async function startTestOperator(env: Record<string, string>, kubeconfigPath: string, logs: string[]): Promise<Operator> {
  const operator = new Operator({
    config: loadOperatorConfig(env),
    kubeConfig: loadKubeConfig(kubeconfigPath),
    log: createLogger((process.env.LOADLAB_TEST_LOG_LEVEL ?? 'info') as 'info', (line) => {
      logs.push(line);
      if (process.env.LOADLAB_TEST_LOG) process.stderr.write(`${line}\n`);
    }),
  });
  await operator.start();
  await operator.whenLeader();
  return operator;
}
