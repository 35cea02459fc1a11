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

test('against Dovecot: a slow reader pauses the socket, and every answer hands it back flowing for the next command', async (t) => {
  const { startDovecot } = await import('../harness/dovecot.js');
  const { default: Pop3Command } = await import('node-pop3');
  const { collect, multiline } = await import('../../src/connectors/pop3/multiline.js');
  const { setTimeout: sleep } = await import('node:timers/promises');
  const user = 'slow@example.test';
  const dovecot = await startDovecot({ users: { [user]: 'slow-Secret-1' } });
  t.after(() => dovecot.close());
  const line = 'a line of a message that is read slowly\r\n';
  for (let i = 0; i < 4; i++) await dovecot.deliver(user, `Subject: slow ${i}\r\n\r\n${line.repeat(25_000 + i * 977)}`);
  const pop = new Pop3Command({ host: '127.0.0.1', port: dovecot.ports.pop3, user, password: 'slow-Secret-1', timeout: 10_000 });
  pop.on('error', () => {});
  await pop._connect();
  for (let n = 1; n <= 4; n++) {
    const body = await multiline(pop, `RETR ${n}`, 'test');
    let bytes = 0;
    for await (const chunk of body) {
      bytes += (chunk as Buffer).length;
      await sleep(1);
    }
    assert.ok(bytes > 1_000_000);
    assert.equal(pop._socket?.isPaused(), false, `after RETR ${n}`);
  }
  // the next answers arrive (UIDL through this module, QUIT through node-pop3)
  assert.equal((await collect(await multiline(pop, 'UIDL', 'test'), 1 << 20)).bytes.toString().trim().split('\r\n').length, 4);
  assert.match(await pop.QUIT(), /Logging out|Bye/i);
});
