// Test mail: generated messages (nodemailer's composer) and a second, independent IMAP client (imapflow) that
// seeds folders with APPEND, reads flags and changes folders behind a session's back.
import { ImapFlow } from 'imapflow';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';

/** An RFC 5322 message with CRLF line ends, as nodemailer composes it. */
export async function compose(options: Mail.Options): Promise<Buffer> {
  return new MailComposer({ date: new Date('2026-11-03T08:00:00Z'), ...options }).compile().build();
}

export interface PeerOptions {
  host: string;
  port: number;
  secure: boolean;
  user: string;
  pass: string;
  /** CA of the server certificate; without it on a TLS port, certificate checks are off (test servers only). */
  ca?: string | undefined;
}

/** A logged-in imapflow client that is not the service's; close it with logout(). */
export async function imapPeer(o: PeerOptions): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: o.host,
    port: o.port,
    secure: o.secure,
    doSTARTTLS: o.secure ? undefined : false,
    tls: o.ca ? { ca: o.ca } : { rejectUnauthorized: false },
    auth: { user: o.user, pass: o.pass },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** The flags of the message with `uid` in `folder`, as an independent client sees them. */
export async function flagsOf(peer: ImapFlow, folder: string, uid: number): Promise<Set<string>> {
  const lock = await peer.getMailboxLock(folder, { readOnly: true });
  try {
    const row = await peer.fetchOne(String(uid), { uid: true, flags: true }, { uid: true });
    if (!row) throw new Error(`no message ${uid} in ${folder}`);
    return row.flags ?? new Set();
  } finally {
    lock.release();
  }
}
