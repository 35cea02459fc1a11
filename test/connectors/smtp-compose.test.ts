import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forwardSubject, replyRecipients, replySubject, threading } from '../../src/connectors/smtp/compose.js';
import type { MessageDetail } from '../../src/domain/mail.js';

const original = (over: Partial<MessageDetail>): MessageDetail => ({
  id: 'x', folder: 'INBOX', messageId: '<m@example.test>', subject: 'Order', from: { name: 'Sam', address: 'sam@example.test' }, to: [], cc: [], date: null,
  receivedAt: null, size: null, seen: null, flagged: null, answered: null, hasAttachments: false, attachments: [], text: '', html: null, headers: [],
  inReplyTo: null, references: [], truncated: false, ...over,
});

test('subjects: "Re:" and "Fw:" once, whatever the case or the language of the prefix already there', () => {
  assert.equal(replySubject('Order 1'), 'Re: Order 1');
  for (const s of ['Re: Order 1', 'RE: Order 1', 'AW: Bestellung', 'Re[2]: x', 'SV: x']) assert.equal(replySubject(s), s);
  assert.equal(replySubject(null), 'Re: ');
  assert.equal(forwardSubject('Invoice'), 'Fw: Invoice');
  for (const s of ['Fw: x', 'FWD: x', 'WG: x']) assert.equal(forwardSubject(s), s);
});

test('reply recipients: Reply-To before From; reply all adds To and Cc without this mailbox and without repeats', () => {
  const m = original({
    headers: [{ name: 'Reply-To', value: 'Billing <billing@example.test>' }],
    to: [{ name: null, address: 'me@example.test' }, { name: 'Ann', address: 'ann@example.test' }],
    cc: [{ name: null, address: 'BILLING@example.test' }, { name: null, address: 'bo@example.test' }, { name: null, address: 'not an address' }],
  });
  assert.deepEqual(replyRecipients(m, false, ['me@example.test']), { to: [{ name: 'Billing', address: 'billing@example.test' }], cc: [] });
  assert.deepEqual(replyRecipients(m, true, ['ME@example.test']), {
    to: [{ name: 'Billing', address: 'billing@example.test' }],
    cc: [{ name: 'Ann', address: 'ann@example.test' }, { name: '', address: 'bo@example.test' }],
  });
  // one's own message: the reply goes to whom it was sent to
  const own = original({ from: { name: null, address: 'me@example.test' }, to: [{ name: null, address: 'ann@example.test' }] });
  assert.deepEqual(replyRecipients(own, false, ['me@example.test']).to, [{ name: '', address: 'ann@example.test' }]);
  assert.deepEqual(replyRecipients(original({ from: null }), false, []).to, []);
});

test('threading: In-Reply-To is the Message-ID, References grow by it without repeats, and stay bounded with the thread root first', () => {
  assert.deepEqual(threading(original({ references: ['<a@x>', '<m@example.test>'] })), { inReplyTo: '<m@example.test>', references: ['<a@x>', '<m@example.test>'] });
  const long = threading(original({ references: Array.from({ length: 40 }, (_, i) => `<r${i}@x>`) }));
  assert.equal(long.references?.length, 20);
  assert.equal(long.references?.[0], '<r0@x>');
  assert.equal(long.references?.at(-1), '<m@example.test>');
  assert.deepEqual(threading(original({ messageId: null })), {});
});
