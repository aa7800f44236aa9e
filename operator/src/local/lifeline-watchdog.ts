/*
 * A local run's watchdog (see lifeline.ts): waits for the end of its stdin, which comes when the
 * run ends however it ends, then takes back what the run's list names. A run that ended normally
 * removed its list before: then there is nothing to do.
 */
import { readFileSync, rmSync } from 'node:fs';
import { reclaim, type Leftovers } from './lifeline.js';

const file = process.argv[2];
// The run's terminal may go away before the run does: this process must outlive both.
for (const signal of ['SIGHUP', 'SIGINT'] as const) process.on(signal, () => undefined);
process.stdin.resume();
process.stdin.once('close', () => void finish());
process.stdin.once('end', () => void finish());
process.stdin.once('error', () => void finish());

let finished = false;
async function finish(): Promise<void> {
  if (finished || !file) return;
  finished = true;
  let leftovers: Leftovers;
  try {
    leftovers = JSON.parse(readFileSync(file, 'utf8')) as Leftovers;
  } catch {
    process.exit(0); // ended normally: the list is gone
  }
  await reclaim(leftovers);
  rmSync(file, { force: true });
  process.exit(0);
}
