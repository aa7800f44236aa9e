/**
 * The devices that may have a pending command, with the earliest time one of them is due: what
 * lets a poll be answered "nothing for you" without a statement. It may hold too much (a command
 * another replica already handed out costs the next poll one statement, which corrects it), never
 * too little while it is fed: every notification and reconciliation adds, and only what the
 * database said after the last addition removes.
 *
 * Additions are numbered, so a poll's answer (read from a snapshot taken when the poll began) does
 * not erase a command announced while that poll ran.
 */
export class DueIndex {
  private readonly entries = new Map<number, { dueMs: number; added: number }>();
  private additions = 0;

  get size(): number {
    return this.entries.size;
  }

  /** A pending command of `deviceId` is due from `dueMs` on (epoch ms). */
  add(deviceId: number, dueMs: number): void {
    const added = ++this.additions;
    const entry = this.entries.get(deviceId);
    if (entry) {
      entry.dueMs = Math.min(entry.dueMs, dueMs);
      entry.added = added;
    } else {
      this.entries.set(deviceId, { dueMs, added });
    }
  }

  /** Whether a command of `deviceId` may be due at `nowMs`: only then does a poll ask the database. */
  mayHaveDue(deviceId: number, nowMs: number): boolean {
    const entry = this.entries.get(deviceId);
    return entry !== undefined && entry.dueMs <= nowMs;
  }

  /** Taken before asking the database; given back to settle() or reconcile() with its answer. */
  mark(): number {
    return this.additions;
  }

  /**
   * What the database said about `deviceId` in a statement begun after `mark`: the due time of its
   * earliest command still pending, or undefined for none.
   */
  settle(deviceId: number, nextDueMs: number | undefined, mark: number): void {
    const entry = this.entries.get(deviceId);
    if (entry && entry.added > mark) {
      // Announced while the statement ran: it may not have seen that command.
      if (nextDueMs !== undefined) entry.dueMs = Math.min(entry.dueMs, nextDueMs);
    } else if (nextDueMs === undefined) {
      this.entries.delete(deviceId);
    } else {
      this.entries.set(deviceId, { dueMs: nextDueMs, added: entry?.added ?? 0 });
    }
  }

  /**
   * Every pending command's device with its earliest due time, read in a statement begun after
   * `mark`: becomes the index, except for what was added meanwhile.
   */
  reconcile(pending: ReadonlyMap<number, number>, mark: number): void {
    // Each device as one poll's answer: absent from `pending`, it has nothing pending.
    for (const deviceId of this.entries.keys()) if (!pending.has(deviceId)) this.settle(deviceId, undefined, mark);
    for (const [deviceId, dueMs] of pending) this.settle(deviceId, dueMs, mark);
  }
}
