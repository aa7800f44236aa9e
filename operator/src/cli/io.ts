/** Where a command writes, and its environment: process streams in the bin, buffers in tests. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

/** Exit statuses shared by every subcommand. */
export const EXIT = {
  ok: 0,
  /** The input could not be read, or the command failed for a reason outside the input. */
  unreadable: 1,
  /** The input or an option is invalid (the message says which and what to do). */
  invalid: 2,
  /** `loadlab run`: the experiment ran and its SLO broke (k6 exits 99 when a threshold fails). */
  sloBroken: 99,
} as const;

export const processIo: Io = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
};
