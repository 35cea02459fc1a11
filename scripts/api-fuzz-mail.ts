// The mailboxes of the schemathesis run (.ci/schemathesis): a private Dovecot on loopback with two users whose INBOXes
// hold the same generated messages (text, HTML only, attachments, an inline image, an embedded message, a non-UTF-8
// charset), so that the read routes (first user) and the routes that change mail (second user) are fuzzed against
// real IMAP sessions. Writes `<dir>/mail.json` with the port and credentials once ready; stops on SIGTERM/SIGINT.
//   node --import tsx scripts/api-fuzz-mail.ts <dir>
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startDovecot } from '../test/harness/dovecot.js';
import { compose } from '../test/harness/mail.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: api-fuzz-mail.ts <dir>');
const user = 'fuzz@example.test';
const password = `fuzz-${Math.random().toString(36).slice(2)}-Pw1`;
// a second mailbox with the same messages, for the routes that change mail (moves, deletes, flags, claims)
const writer = { user: 'write@example.test', password: `write-${Math.random().toString(36).slice(2)}-Pw1` };
const dovecot = await startDovecot({ users: { [user]: password, [writer.user]: writer.password } });
const messages = [
  await compose({ from: 'Billing <billing@shop.test>', subject: 'Invoice 4711', text: 'Please pay.', html: '<p>Please <b>pay</b> <img src="cid:logo@shop"></p>', attachments: [{ filename: 'invoice März.pdf', content: Buffer.alloc(4096, 7) }, { filename: 'logo.png', content: Buffer.alloc(64, 1), cid: 'logo@shop' }] }),
  await compose({ from: 'news@example.test', subject: 'HTML only', html: '<h1>Hello</h1><p>world</p>' }),
  await compose({ from: 'a@example.test', subject: 'Forwarded', text: 'see inside', attachments: [{ filename: 'inner.eml', contentType: 'message/rfc822', content: 'Subject: inner\r\n\r\ninner text\r\n' }] }),
  Buffer.from('From: legacy@example.test\r\nSubject: =?iso-8859-1?Q?caf=E9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n'),
];
for (const m of messages) {
  await dovecot.deliver(user, m.toString('latin1'));
  await dovecot.deliver(writer.user, m.toString('latin1'));
}
await writeFile(path.join(dir, 'mail.json'), JSON.stringify({ host: '127.0.0.1', port: dovecot.ports.imap, user, password, writer }));
const stop = () => void dovecot.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
