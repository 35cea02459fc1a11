import { startCyrus } from '../harness/cyrus.js';
import { startGreenMail } from '../harness/greenmail.js';
import { SUITE_USERS, imapChangeSuite } from './changes-imap-suite.js';

/**
 * The IMAP change suite against GreenMail (no special-use folders: the Trash is found by its name, "Trash",
 * created by the other client) and Cyrus IMAP 3.6 (hierarchy "/", folders below INBOX, Trash with special use).
 */

const usersFor = (prefix: string) => Object.fromEntries(SUITE_USERS.map((u) => [`${prefix}-${u}@example.test`, `${prefix}-${u}-Secret-1`]));

imapChangeSuite('GreenMail', async () => {
  const users = usersFor('gm');
  const greenmail = await startGreenMail({ users });
  return {
    port: greenmail.ports.imaps,
    caPem: greenmail.caPem,
    user: (name) => ({ user: `gm-${name}@example.test`, pass: users[`gm-${name}@example.test`]! }),
    trash: 'Trash',
    createTrash: true,
    folder: (name) => name,
    bulkCount: 500,
    close: () => greenmail.close(),
  };
});

imapChangeSuite('Cyrus IMAP 3.6', async () => {
  const users = usersFor('cy');
  const cyrus = await startCyrus({ users, popMinPollMinutes: 0, unixHierarchySep: true, specialUse: { Trash: 'trash' } });
  return {
    port: cyrus.ports.imaps,
    caPem: cyrus.caPem,
    user: (name) => ({ user: `cy-${name}@example.test`, pass: users[`cy-${name}@example.test`]! }),
    trash: 'INBOX/Trash',
    createTrash: false,
    folder: (name) => `INBOX/${name}`,
    bulkCount: 500,
    close: () => cyrus.close(),
  };
});
