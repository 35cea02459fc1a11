import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DotDecoder } from '../../src/connectors/pop3/multiline.js';

/** What a POP3 server sends for `message` (RFC 1939 3): dot-stuffed lines, then "." CRLF. */
function onTheWire(message: string): Buffer {
  return Buffer.from(`${message.split('\r\n').map((line) => (line.startsWith('.') ? `.${line}` : line)).join('\r\n')}.\r\n`, 'latin1');
}

function decode(wire: Buffer, cuts: number[]): { body: string; done: boolean } {
  const decoder = new DotDecoder();
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < wire.length).sort((a, b) => a - b), wire.length]) {
    out.push(...decoder.push(wire.subarray(from, cut)));
    from = cut;
  }
  return { body: Buffer.concat(out).toString('latin1'), done: decoder.done };
}

test('dot-stuffing is undone and the terminator found, however the answer is split into chunks', () => {
  const message = 'Subject: dots\r\n\r\n.\r\n..two\r\n.leading\r\nend .\r\n';
  const wire = onTheWire(message);
  assert.deepEqual(decode(wire, []), { body: message, done: true });
  // every split point, including inside ".\r\n" and "\r\n.\r\n"
  for (let i = 1; i < wire.length; i++) assert.deepEqual(decode(wire, [i]), { body: message, done: true }, `split at ${i}`);
  // one byte at a time
  assert.deepEqual(decode(wire, Array.from({ length: wire.length }, (_, i) => i)), { body: message, done: true });
});

test('property: any message of CRLF lines survives stuffing and any chunking byte-exact', () => {
  const line = fc.stringMatching(/^[.a-z \x80-\xff]{0,12}$/);
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), fc.array(fc.nat(400), { maxLength: 8 }), (lines, cuts) => {
      const message = lines.map((l) => `${l}\r\n`).join('');
      assert.deepEqual(decode(onTheWire(message), cuts), { body: message, done: true });
    }),
    { numRuns: 2000, seed: 12 },
  );
});

test('a line that only starts like the terminator is data', () => {
  assert.deepEqual(decode(Buffer.from('..\r\n.x\r\n.\r\n'), [1, 2, 5]), { body: '.\r\nx\r\n', done: true });
  assert.deepEqual(decode(Buffer.from('a\r\n.'), []), { body: 'a\r\n', done: false }, 'no terminator yet');
});
