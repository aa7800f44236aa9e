import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The absolute path of an executable on PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

export class MissingBinaryError extends Error {}

export function requireBinary(name: string, howToGet: string): string {
  const path = findBinary(name);
  if (!path) throw new MissingBinaryError(`${name} is not installed: ${howToGet}`);
  return path;
}
