import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { allowedCpus, onCpus, parseCpuList, pinProcess, splitCpus } from '../src/local/cpu-affinity.js';

const cpusOf = (pid: number | string) => readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Cpus_allowed_list:\s*(.+)$/m)![1];

describe('loadlab run --api-cpus (CPU affinity with taskset)', () => {
  it('reads CPU lists as taskset and the kernel write them, and refuses anything else with the reason', () => {
    assert.deepEqual(parseCpuList('0'), [0]);
    assert.deepEqual(parseCpuList('0-2,5'), [0, 1, 2, 5]);
    assert.deepEqual(parseCpuList(' 3 , 1-1 '), [1, 3]);
    assert.throws(() => parseCpuList('a'), /"a" is not a CPU list/);
    assert.throws(() => parseCpuList('3-1'), /empty range/);
    assert.throws(() => parseCpuList(''), /not a CPU list/);
  });

  it('gives the API its CPUs and everything else the rest, and refuses a split that leaves nothing', () => {
    assert.deepEqual(splitCpus([0], [0, 1]), { api: [0], rest: [1], original: [0, 1] });
    assert.throws(() => splitCpus([0, 1], [0, 1]), /leaves no CPU for the load generator and the database/);
    assert.throws(() => splitCpus([7], [0, 1]), /CPU 7 is not available here \(this process may use 0,1\)/);
    assert.ok(allowedCpus().length >= 1);
  });

  it('starts a child on the given CPUs, and moves a running process with all its threads (real taskset)', async () => {
    const cpu = allowedCpus()[0]!;
    const { command, args } = onCpus([cpu], process.execPath, ['-e', 'console.log(require("fs").readFileSync("/proc/self/status", "utf8").match(/^Cpus_allowed_list:\\s*(.+)$/m)[1])']);
    assert.equal(execFileSync(command, args, { encoding: 'utf8' }).trim(), String(cpu));

    // It says so once it runs: by then Node has started its worker threads, all of which must move.
    const child = spawn(process.execPath, ['-e', 'console.log("up"); setTimeout(() => {}, 10_000)']);
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve));
      pinProcess(child.pid!, [cpu]);
      assert.equal(cpusOf(child.pid!), String(cpu));
      const threads = execFileSync('ls', [`/proc/${child.pid}/task`], { encoding: 'utf8' }).trim().split('\n');
      assert.ok(threads.length > 1, 'node runs several threads');
      for (const tid of threads) assert.equal(cpusOf(`${child.pid}/task/${tid}`), String(cpu), `thread ${tid}`);
      assert.throws(() => pinProcess(999_999_999, [cpu]), /taskset could not move process 999999999/);
    } finally {
      child.kill();
    }
  });
});
