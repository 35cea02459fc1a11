import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readIfExists, seal, unseal, writeAtomically } from '../../src/security/sealed-file.js';

const key = randomBytes(32);
const SESSIONS = Buffer.from('MSB-SESSIONS-1\n');

test('unseal refuses a short file, another format, another key and any altered byte', () => {
  const sealed = seal(key, Buffer.from('tokens'));
  assert.equal(unseal(key, sealed).toString(), 'tokens');
  assert.throws(() => unseal(key, sealed.subarray(0, 20)), /not a sealed MSB-TOKENS-1 file/);
  // the magic is checked and authenticated: a session store never opens as a token cache
  assert.throws(() => unseal(key, seal(key, Buffer.from('x'), SESSIONS)), /not a sealed/);
  assert.throws(() => unseal(randomBytes(32), sealed));
  for (const at of [sealed.length - 1, 13 + 12, 13]) {
    const altered = Buffer.from(sealed);
    altered[at] = altered[at]! ^ 1;
    assert.throws(() => unseal(key, altered), Error, `byte ${at}`);
  }
});

test('readIfExists: undefined for a missing file, other errors pass through; writeAtomically leaves no temp file behind', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'msb-sealed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(await readIfExists(path.join(dir, 'none')), undefined);
  await assert.rejects(readIfExists(dir), /EISDIR/);

  const file = path.join(dir, 'sub', 'cache.bin');
  await writeAtomically(file, Buffer.from('one'));
  assert.equal((await readIfExists(file))!.toString(), 'one');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  // a target that cannot be replaced (a non-empty directory): the error comes out, the temp file is removed
  const blocked = path.join(dir, 'blocked');
  mkdirSync(blocked);
  writeFileSync(path.join(blocked, 'x'), 'x');
  await assert.rejects(writeAtomically(blocked, Buffer.from('two')));
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});
