import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { describeFault } from '../src/process-guard.js';

const CHILD = new URL('./fixtures/faulty-process.ts', import.meta.url).pathname;

test('faults outside any request are logged with name, code and frames, and the process keeps running', { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0, out);
  assert.match(out, /still alive/, 'the process survived every fault');

  const faults = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; origin?: string; fault?: { name: string; code?: string; message?: string; frames: string[] } })
    .filter((l) => l.fault);
  const byCode = new Map(faults.map((f) => [f.fault!.code ?? f.fault!.name, f]));
  assert.equal(byCode.get('EPARSE')?.fault?.name, 'TypeError');
  assert.equal(byCode.get('EPARSE')?.origin, 'uncaughtException');
  assert.equal(byCode.get('ERR_EWS_WEB')?.origin, 'unhandledRejection');
  assert.ok(byCode.get('RangeError'), 'the socket handler exception is logged');
  for (const f of faults) {
    assert.equal(f.level, 50, 'logged at error level');
    assert.ok(f.fault!.frames.length > 0 && f.fault!.frames.every((frame) => frame.startsWith('at ')), 'frames say where');
    assert.equal(f.fault!.message, undefined, 'a library message is not logged');
  }
  // what the libraries and servers said never reaches the log
  assert.doesNotMatch(out, /hunter2|quarterly|hostile greeting|ceo@example\.com|mail body/);
  assert.match(out, /"lib":"console"/, 'console output is noted without its text');
});

test('describeFault keeps our own secret-free messages and nothing of anything else', () => {
  assert.deepEqual(describeFault('a string with data'), { name: 'string', frames: [] });
  assert.deepEqual(describeFault(null), { name: 'object', frames: [] });
  const odd = describeFault({ name: '<script>', code: 'x'.repeat(200), stack: 'Error: secret\n    at f (file.js:1:1)' });
  assert.deepEqual(odd, { name: 'Error', frames: ['at f (file.js:1:1)'] });
});
