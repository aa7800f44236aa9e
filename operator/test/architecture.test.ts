// The architecture rules `npm run lint` enforces (docs/architecture.md): a dependency rule
// (dependency-cruiser: layers in one direction, no cycles, no test code in src) and a dead-code
// check (knip). Each is shown to fail on a violation planted in a throwaway tree, with the
// repository's own configuration, and the repository itself passes both.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '@loadlab/sandbox/control-plane';

const run = promisify(execFile);
const ROOT = repoRoot();
const BIN = join(ROOT, 'node_modules', '.bin');

/** Runs a tool of the repository on `cwd`; resolves with its exit code and output. */
async function tool(name: 'depcruise' | 'knip', args: string[], cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(join(BIN, name), args, { cwd, env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` }, timeout: 120_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'loadlab-architecture-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('npm run lint: the architecture rules', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('runs both checks', () => {
    const lint = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.lint!;
    assert.match(lint, /depcruise sandbox api operator cdk8s --config \.dependency-cruiser\.cjs/);
    assert.match(lint, /\bknip\b/);
  });

  it('the dependency rule fails on a layer imported against the direction, on a cycle and on test code in src', async () => {
    const dir = tree({
      'tsconfig.depcruise.json': JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', noEmit: true }, include: ['operator'] }),
      // the schema (the bottom layer) importing the traffic model
      'operator/src/schema/spec.ts': "import { plan } from '../traffic/plan.js';\nexport const spec = plan;\n",
      'operator/src/traffic/plan.ts': 'export const plan = 1;\n',
      // two modules of one layer importing each other
      'operator/src/analysis/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'operator/src/analysis/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
      // shipped code importing a test fixture
      'operator/src/driver/driver.ts': "import { fixture } from '../../test/fixture.js';\nexport const driver = fixture;\n",
      'operator/test/fixture.ts': 'export const fixture = 1;\n',
    });
    dirs.push(dir);
    const { code, output } = await tool('depcruise', ['operator', '--config', join(ROOT, '.dependency-cruiser.cjs')], dir);
    assert.notEqual(code, 0, output);
    assert.match(output, /layer-schema: operator\/src\/schema\/spec\.ts → operator\/src\/traffic\/plan\.ts/);
    assert.match(output, /no-circular: operator\/src\/analysis\/a\.ts/);
    assert.match(output, /no-test-code-in-src: operator\/src\/driver\/driver\.ts → operator\/test\/fixture\.ts/);
  });

  it('the dead-code check fails on an export nothing uses', async () => {
    const dir = tree({
      'package.json': JSON.stringify({ name: 'planted', type: 'module', private: true, workspaces: ['operator'] }),
      'operator/package.json': JSON.stringify({ name: '@loadlab/operator', type: 'module', private: true }),
      'operator/src/k6/script/main.ts': "import { used } from '../lib.js';\nconsole.log(used());\n",
      'operator/src/k6/lib.ts': 'export function used() {\n  return 1;\n}\nexport function forgotten() {\n  return 2;\n}\n',
    });
    dirs.push(dir);
    copyFileSync(join(ROOT, 'knip.json'), join(dir, 'knip.json'));
    const { code, output } = await tool('knip', ['--no-progress'], dir);
    assert.notEqual(code, 0, output);
    assert.match(output, /Unused exports \(1\)\s+forgotten\s+function\s+operator\/src\/k6\/lib\.ts/);
  });

  it('covers every folder of operator/src, in the layers docs/architecture.md describes', () => {
    const folders = readdirSync(join(ROOT, 'operator', 'src'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    const config = createRequire(import.meta.url)(join(ROOT, '.dependency-cruiser.cjs')) as { forbidden: { name: string }[] };
    const layered = config.forbidden.filter((rule) => rule.name.startsWith('layer-')).map((rule) => rule.name.slice('layer-'.length)).sort();
    assert.deepEqual(layered, folders, 'a layer rule for each folder, and no rule for a folder that is gone');
    const page = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    for (const folder of folders) assert.match(page, new RegExp(`\\b${folder}/`), `docs/architecture.md does not place ${folder}/`);
  });

  it('npm test runs every operator test file exactly once: two at a time, or alone when it measures time or load', () => {
    // package.json runs the files that wait on a control plane or compute nothing timing-bound two
    // at a time, then the ones whose assertions depend on having the machine (local runs, the
    // driver's schedule, the pipelines' load) one at a time. A new file must be put in one of them.
    const script = (JSON.parse(readFileSync(join(ROOT, 'operator', 'package.json'), 'utf8')) as { scripts: { test: string } }).scripts.test;
    const groups = [...script.matchAll(/dist\/test\/\{([^}]+)\}\.test\.js/g)].map((match) => match[1]!.split(',').map((glob) => new RegExp(`^${glob.replace(/\*/g, '.*')}$`)));
    assert.equal(groups.length, 2, script);
    const files = readdirSync(join(ROOT, 'operator', 'test')).filter((name) => name.endsWith('.test.ts')).map((name) => name.slice(0, -'.test.ts'.length));
    for (const file of files) {
      const inGroups = groups.filter((group) => group.some((pattern) => pattern.test(file))).length;
      assert.equal(inGroups, 1, `${file}.test.ts is in ${inGroups} of the test script's groups`);
    }
  });

  it('the repository itself passes both', async () => {
    const depcruise = await tool('depcruise', ['sandbox', 'api', 'operator', 'cdk8s', '--config', '.dependency-cruiser.cjs'], ROOT);
    assert.equal(depcruise.code, 0, depcruise.output);
    const knip = await tool('knip', ['--no-progress'], ROOT);
    assert.equal(knip.code, 0, knip.output);
  });
});
