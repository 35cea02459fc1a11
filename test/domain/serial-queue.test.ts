import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { SerialQueue } from '../../src/domain/serial-queue.js';
import { AppError } from '../../src/errors.js';

test('tasks run one at a time, in order', async () => {
  const queue = new SerialQueue();
  const events: string[] = [];
  let running = 0;
  const task = (id: number) => async () => {
    running += 1;
    assert.equal(running, 1, 'never two at once');
    events.push(`start ${id}`);
    await sleep(5);
    events.push(`end ${id}`);
    running -= 1;
    return id;
  };
  const results = await Promise.all([1, 2, 3].map((id) => queue.run(task(id), 1000)));
  assert.deepEqual(results, [1, 2, 3]);
  assert.deepEqual(events, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
});

test('a task stuck behind a slow one gives up with SESSION_BUSY; order is kept for the rest', async () => {
  const queue = new SerialQueue();
  let release!: () => void;
  const slow = queue.run(() => new Promise<string>((resolve) => (release = () => resolve('slow'))), 1000);
  const impatient = queue.run(async () => 'never', 20);
  await assert.rejects(impatient, (err: unknown) => err instanceof AppError && err.code === 'SESSION_BUSY');
  let laterRan = false;
  const later = queue.run(async () => (laterRan = true), 5000);
  await sleep(30);
  assert.equal(laterRan, false, 'the next task still waits for the slow one');
  release();
  assert.equal(await slow, 'slow');
  await later;
  assert.equal(laterRan, true);
});

test('a failing task does not block the queue', async () => {
  const queue = new SerialQueue();
  await assert.rejects(queue.run(async () => { throw new Error('boom'); }, 100), /boom/);
  assert.equal(await queue.run(async () => 'next', 100), 'next');
});
