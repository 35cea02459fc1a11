import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHUNK_MAX, chunks } from '../../src/connectors/imap/changes.js';

/** The UID set as imapflow packs it ("1:3,5"). */
function packed(uids: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < uids.length; ) {
    let j = i;
    while (j + 1 < uids.length && uids[j + 1] === uids[j]! + 1) j++;
    parts.push(i === j ? String(uids[i]) : `${uids[i]}:${uids[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

test('bulk chunks: contiguous UIDs go CHUNK_MAX at a time, scattered ones as many as fit a short command; none lost or repeated', () => {
  const contiguous = Array.from({ length: 25_000 }, (_, i) => i + 1);
  assert.deepEqual([...chunks(contiguous)].map((c) => c.length), [CHUNK_MAX, CHUNK_MAX, 5000]);
  const scattered = Array.from({ length: 20_000 }, (_, i) => 1_000_000 + i * 2);
  const parts = [...chunks(scattered)];
  assert.ok(parts.length > 2);
  for (const p of parts) assert.ok(packed(p).length <= 8000, `${packed(p).length} characters`);
  assert.deepEqual(parts.flat(), scattered);
  const mixed = [1, 2, 3, 7, 9, 10, 11, 4_000_000_000];
  assert.deepEqual([...chunks(mixed)].flat(), mixed);
  assert.deepEqual([...chunks([])], []);
});
