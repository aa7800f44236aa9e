import type { BenchDatabase } from './database.js';
import type { BenchOptions } from './options.js';
import type { Log } from './output.js';
import type { QuietGate } from './quiet.js';

/** What the parts of one benchmark run share. */
export interface BenchContext {
  options: BenchOptions;
  db: BenchDatabase;
  quiet: QuietGate;
  log: Log;
  /** A temp dir of this run (CPU profiles), removed at the end. */
  workDir: string;
}
