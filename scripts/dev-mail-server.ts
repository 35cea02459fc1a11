// Starts the test Dovecot (IMAP, IMAPS, POP3, POP3S on loopback) for trying the service by hand, and prints
// how to reach it. Stops on Ctrl-C. Needs Debian's dovecot-imapd and dovecot-pop3d (.ci/install-test-deps).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultUsers, startDovecot } from '../test/harness/dovecot.js';

const dovecot = await startDovecot();
const caFile = path.join(dovecot.dir, 'test-ca.pem');
await writeFile(caFile, dovecot.caPem);
await dovecot.deliver('alice@example.test', 'From: hello@example.test\r\nTo: alice@example.test\r\nSubject: Welcome\r\n\r\nA first message.\r\n');
const [user, password] = Object.entries(defaultUsers)[0]!;
// the CA goes inline (JSON-escaped), so the printed line needs nothing but curl; no single quote in a PEM
const body = JSON.stringify({ name: 'invoices', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: user, password, tls: { ca: dovecot.caPem } });
process.stdout.write(`Dovecot is running on 127.0.0.1:
  IMAP ${dovecot.ports.imap} (STARTTLS), IMAPS ${dovecot.ports.imaps}, POP3 ${dovecot.ports.pop3}, POP3S ${dovecot.ports.pop3s}
  users: ${Object.keys(defaultUsers).join(', ')} (password of ${user}: ${password})
  CA certificate: ${caFile}
Start the service so that it may reach loopback:
  MSB_AUTH=none MSB_OUTBOUND_DENY=none MSB_OUTBOUND_PORTS='*' npm start
Then, for example:
  curl -s -X POST localhost:3000/v1/sessions -H 'content-type: application/json' -d '${body}'
Ctrl-C stops it.
`);
const stop = () => void dovecot.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
