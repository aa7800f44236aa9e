import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp, extraFiles } from './app.js';

/*
 * `npm run synth` writes charts/; `npm run synth -- --check` exits 1 naming every file that differs
 * from what the code synthesizes now (the staleness test runs the same comparison).
 */

export const CHARTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'charts');

/** Synthesizes into a directory: the manifests under loadlab/, the values files beside them. */
export async function synthesize(dir: string): Promise<void> {
  await rm(join(dir, 'loadlab'), { recursive: true, force: true });
  buildApp(join(dir, 'loadlab')).synth();
  for (const [file, text] of Object.entries(extraFiles())) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), text);
  }
}

async function filesUnder(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (at: string) => {
    let entries;
    try {
      entries = await readdir(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name !== 'README.md') files.set(relative(dir, path), await readFile(path, 'utf8'));
    }
  };
  await walk(dir);
  return files;
}

/** The files of `committed` that differ from a fresh synthesis (missing, extra or changed). */
export async function staleFiles(committed = CHARTS_DIR): Promise<string[]> {
  const fresh = await mkdtemp(join(tmpdir(), 'loadlab-charts-'));
  try {
    await synthesize(fresh);
    const [want, have] = await Promise.all([filesUnder(fresh), filesUnder(committed)]);
    const names = new Set([...want.keys(), ...have.keys()]);
    return [...names].filter((name) => want.get(name) !== have.get(name)).sort();
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
}

async function main(args: string[]): Promise<number> {
  if (args.includes('--check')) {
    const stale = await staleFiles();
    if (stale.length === 0) {
      process.stdout.write('charts/ is up to date\n');
      return 0;
    }
    process.stderr.write(`charts/ is stale (run npm run synth): ${stale.join(', ')}\n`);
    return 1;
  }
  await synthesize(CHARTS_DIR);
  process.stdout.write(`wrote ${relative(process.cwd(), CHARTS_DIR) || '.'}/loadlab/*.yaml and values/\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
