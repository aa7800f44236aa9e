import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DueIndex } from '../src/commands/due-index.js';

describe('DueIndex (the poll index, pure)', () => {
  it('a device is asked for only once something of it may be due', () => {
    const index = new DueIndex();
    assert.equal(index.mayHaveDue(1, 1000), false);
    index.add(1, 2000);
    assert.equal(index.mayHaveDue(1, 1999), false);
    assert.equal(index.mayHaveDue(1, 2000), true);
    index.add(1, 500);
    assert.equal(index.mayHaveDue(1, 600), true, 'the earliest due time counts');
  });

  it("a poll's answer removes the device or moves its due time, unless a command was announced while the poll ran", () => {
    const index = new DueIndex();
    index.add(1, 100);
    let mark = index.mark();
    index.settle(1, undefined, mark);
    assert.equal(index.size, 0, 'nothing pending: removed');

    index.add(1, 100);
    mark = index.mark();
    index.settle(1, 5000, mark);
    assert.equal(index.mayHaveDue(1, 4999), false, 'the next one is due later');

    mark = index.mark();
    index.add(1, 200); // committed after the poll's snapshot
    index.settle(1, undefined, mark);
    assert.equal(index.mayHaveDue(1, 200), true, 'kept: the poll could not have seen it');
  });

  it('a reconciliation replaces what it read, keeps what was announced meanwhile', () => {
    const index = new DueIndex();
    index.add(1, 100); // stale: handed out by another replica
    index.add(2, 100);
    const mark = index.mark();
    index.add(3, 300); // announced while the reconciliation read
    index.reconcile(new Map([[2, 150], [4, 400]]), mark);
    assert.equal(index.mayHaveDue(1, 10_000), false);
    assert.equal(index.mayHaveDue(2, 149), false);
    assert.equal(index.mayHaveDue(2, 150), true);
    assert.equal(index.mayHaveDue(3, 300), true);
    assert.equal(index.mayHaveDue(4, 400), true);
    assert.equal(index.size, 3);
  });
});
