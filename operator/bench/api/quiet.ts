import { setTimeout as sleep } from 'node:timers/promises';
import { snapshot, usageBetween } from '@loadlab/sandbox/procstat';
import { fmt, type Log } from './output.js';

/** Other processes using this much CPU (% of one core) count as interference: wait before a step, repeat a failed one once. */
export const INTERFERENCE_PERCENT = 25;

/**
 * Other work on this shared machine skews a step. Before each step, wait (at most 30 s per step and
 * 180 s per run) until processes other than ours use less than INTERFERENCE_PERCENT of a core.
 */
export class QuietGate {
  private budgetMs = 180_000;

  constructor(private readonly log: Log) {}

  async wait(groups: Record<string, () => number>): Promise<void> {
    const until = Date.now() + Math.min(30_000, this.budgetMs);
    const started = Date.now();
    let other = 0;
    for (;;) {
      const a = snapshot(groups);
      await sleep(1000);
      other = usageBetween(a, snapshot(groups)).percent.other ?? 0;
      if (other < INTERFERENCE_PERCENT || Date.now() >= until) break;
      if (Date.now() - started < 1500) this.log(`  other processes use ${fmt(other)} % of a core: waiting up to ${fmt((until - Date.now()) / 1000)} s for the machine to quiet down`);
    }
    this.budgetMs -= Date.now() - started;
    if (other >= INTERFERENCE_PERCENT) this.log(`  the machine is still busy (other processes ${fmt(other)} % of a core); measuring anyway`);
  }
}
