import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '@loadlab/sandbox/control-plane';

/*
 * The two images cluster:up builds, WITHOUT Docker (there is no Docker engine here): each
 * Dockerfile's build stage is replayed in a temp dir (its COPY lines from the files git tracks, which
 * is what .dockerignore leaves of the context; its RUN lines through sh, on this Node 24), then the
 * final stage's `COPY --from=build` sources must exist, and its entry point is started from a copy
 * of exactly those paths. Not verified: the base image, USER, and anything Docker itself does.
 */

interface Instruction {
  keyword: string;
  args: string;
}

function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
}

/** The stages of a Dockerfile, each its instructions after FROM. */
function stages(text: string): Instruction[][] {
  const result: Instruction[][] = [];
  for (const instruction of instructions(text)) {
    if (instruction.keyword === 'FROM') result.push([]);
    else result[result.length - 1]!.push(instruction);
  }
  return result;
}

const root = repoRoot();
const tracked = spawnSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
const nodeBinDir = dirname(process.execPath);

function copyFromContext(sources: string[], dest: string, workdir: string): void {
  const target = join(workdir, dest);
  for (const source of sources) {
    if (source.endsWith('/')) {
      for (const file of tracked.filter((path) => path.startsWith(source))) {
        const to = join(target, file.slice(source.length));
        mkdirSync(dirname(to), { recursive: true });
        cpSync(join(root, file), to);
      }
    } else {
      mkdirSync(target, { recursive: true });
      cpSync(join(root, source), join(target, source.split('/').pop()!));
    }
  }
}

/** Replays the build stage; returns the final stage's instructions and the build stage's root. */
function replayBuild(dockerfile: string, buildRoot: string): Instruction[] {
  const [build, final] = stages(readFileSync(join(root, dockerfile), 'utf8'));
  assert.ok(build && final, `${dockerfile}: a build stage and a final stage`);
  let workdir = buildRoot;
  for (const { keyword, args } of build) {
    if (keyword === 'WORKDIR') {
      workdir = join(buildRoot, args);
      mkdirSync(workdir, { recursive: true });
    } else if (keyword === 'COPY') {
      const parts = args.split(/\s+/);
      copyFromContext(parts.slice(0, -1), parts[parts.length - 1]!, workdir);
    } else if (keyword === 'RUN') {
      const result = spawnSync('sh', ['-c', args], {
        cwd: workdir,
        encoding: 'utf8',
        env: { ...process.env, PATH: `${nodeBinDir}:${process.env.PATH}`, npm_config_update_notifier: 'false' },
        timeout: 600_000,
      });
      assert.equal(result.status, 0, `${dockerfile}: RUN ${args}\n${result.stdout.slice(-2000)}${result.stderr.slice(-3000)}`);
    } else {
      assert.ok(['ENV', 'ARG', 'USER'].includes(keyword), `${dockerfile}: the replay does not know ${keyword}`);
    }
  }
  return final;
}

/** Assembles the final stage's files (its COPY --from=build lines) under appRoot; returns its WORKDIR and command. */
function assembleFinal(final: Instruction[], buildRoot: string, appRoot: string): { workdir: string; command: string[]; env: Record<string, string> } {
  let workdir = appRoot;
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  const env: Record<string, string> = {};
  for (const { keyword, args } of final) {
    if (keyword === 'WORKDIR') workdir = join(appRoot, args);
    if (keyword === 'ENV') for (const [, name, value] of args.matchAll(/(\w+)=(\S+)/g)) env[name!] = value!;
    if (keyword === 'COPY') {
      const match = /^--from=build\s+(\S+)\s+(\S+)$/.exec(args);
      assert.ok(match, `only COPY --from=build in the final stage: ${args}`);
      const from = join(buildRoot, match[1]!);
      assert.ok(existsSync(from), `the build stage produced ${match[1]}`);
      const to = join(workdir, match[2]!);
      mkdirSync(dirname(to), { recursive: true });
      cpSync(from, to, { recursive: true, verbatimSymlinks: true });
    }
    if (keyword === 'ENTRYPOINT') entrypoint = JSON.parse(args) as string[];
    if (keyword === 'CMD') cmd = JSON.parse(args) as string[];
  }
  return { workdir, command: [...entrypoint, ...cmd], env };
}

describe('the images, their build stage replayed WITHOUT Docker (no Docker engine here)', () => {
  const images = [
    {
      dockerfile: 'operator/Dockerfile',
      // The entry point with --help instead of its CMD (which would need a cluster).
      check: (command: string[]) => [...command.slice(1), '--help'],
      expect: (status: number | null, output: string) => {
        assert.equal(status, 0, output);
        assert.match(output, /Usage: loadlab operator/);
      },
    },
    {
      dockerfile: 'api/Dockerfile',
      // Started without a database: it must load every module and refuse the configuration.
      check: (command: string[]) => command.slice(1),
      expect: (status: number | null, output: string) => {
        assert.notEqual(status, 0);
        assert.match(output, /DATABASE_URL/, output);
        assert.doesNotMatch(output, /Cannot find|ERR_MODULE_NOT_FOUND/, output);
      },
    },
  ];
  for (const image of images) {
    it(`${image.dockerfile}: builds, and the final stage's files start its entry point`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'loadlab-image-'));
      try {
        const buildRoot = join(dir, 'build');
        const final = replayBuild(image.dockerfile, buildRoot);
        const { workdir, command, env } = assembleFinal(final, buildRoot, join(dir, 'final'));
        assert.equal(command[0], 'node');
        const environment: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
        const result = spawnSync(process.execPath, image.check(command), { cwd: workdir, encoding: 'utf8', env: environment, timeout: 30_000 });
        image.expect(result.status, `${result.stdout}${result.stderr}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
