// Mail for the fake Graph's mailboxes, composed as real MIME with nodemailer's composer: a dozen plain
// messages in the Inbox whose subjects, senders, dates and read status the filter tests can predict,
// a few folders (nested, and one whose name has a "/"), and one rich message (HTML and text, an inline
// image, a PDF of a few MB, an attached message, a reply's headers, an encoded subject).
import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import type Mail from 'nodemailer/lib/mailer';
import type { FakeMailbox, FakeMessage } from './fake-graph-mailbox.js';

/** Words that are in message bodies only: a log line that contains one leaked mail content. */
export const BODY_MARKERS = ['Confidential-body-7f3a91', 'Rich-html-body-c0ffee', 'Plain-text-part-5e1f'];

export interface PlainSeed {
  subject: string;
  from: { name: string; address: string };
  receivedDateTime: string;
  isRead: boolean;
  message: FakeMessage;
}

export function compose(options: Mail.Options): Promise<Buffer> {
  return new MailComposer(options).compile().build();
}

/** 12 Inbox messages, 6 hours apart from 2026-11-01T08:00:00Z: Invoice / Facture / Meeting notes, two senders, every 4th read. */
export async function seedInbox(mb: FakeMailbox): Promise<PlainSeed[]> {
  const out: PlainSeed[] = [];
  for (let i = 0; i < 12; i++) {
    const subject = [`Invoice ${1000 + i}`, `Facture ${2000 + i}`, `Meeting notes ${i}`][i % 3]!;
    const from = i % 2 === 0 ? { name: 'Acme Billing', address: 'billing@acme.test' } : { name: 'Jane Roe', address: 'jane@roe.test' };
    const receivedDateTime = new Date(Date.UTC(2026, 10, 1, 8) + i * 6 * 3600_000).toISOString().replace('.000Z', 'Z');
    const isRead = i % 4 === 0;
    const mime = await compose({
      from,
      to: 'Alice <alice@contoso.test>',
      subject,
      text: `${BODY_MARKERS[0]} message ${i}`,
      date: new Date(Date.parse(receivedDateTime) - 60_000),
    });
    out.push({ subject, from, receivedDateTime, isRead, message: await mb.addMessage('inbox', mime, { receivedDateTime, isRead }) });
  }
  return out;
}

export interface RichSeed {
  message: FakeMessage;
  pdf: Buffer;
  image: Buffer;
  mime: Buffer;
}

/** Folders under the Inbox and at the top, and the rich message in Inbox/Invoices. */
export async function seedFolders(mb: FakeMailbox): Promise<RichSeed> {
  const invoices = mb.addFolder('inbox', 'Invoices');
  mb.addFolder(invoices.id, '2026');
  const clients = mb.addFolder(mb.rootId, 'Clients');
  mb.addFolder(clients.id, 'Acme');
  mb.addFolder(mb.rootId, 'Q1/Q2 reports');
  const pdf = randomBytes(3 * 1024 * 1024 + 17);
  const image = randomBytes(2048);
  const attached = await compose({ from: 'old@acme.test', to: 'alice@contoso.test', subject: 'The original order', text: 'original' });
  const mime = await compose({
    from: { name: 'Acme Billing', address: 'billing@acme.test' },
    to: [{ name: 'Alice', address: 'alice@contoso.test' }],
    cc: [{ name: 'Bob', address: 'bob@contoso.test' }],
    subject: 'Rechnung März – O\'Brien',
    text: `${BODY_MARKERS[2]}: see the invoice`,
    html: `<p>${BODY_MARKERS[1]}</p><img src="cid:logo@acme.test">`,
    inReplyTo: '<order-1@acme.test>',
    references: ['<thread-0@acme.test>', '<order-1@acme.test>'],
    attachments: [
      { filename: 'Rechnung 2026-11.pdf', content: pdf, contentType: 'application/pdf' },
      { filename: 'logo.png', content: image, contentType: 'image/png', cid: 'logo@acme.test', contentDisposition: 'inline' },
      { filename: 'order.eml', content: attached, contentType: 'message/rfc822', contentDisposition: 'attachment' },
    ],
  });
  const message = await mb.addMessage(invoices.id, mime, { receivedDateTime: '2026-11-20T09:30:00Z', flagged: true, lastVerb: 102 });
  return { message, pdf, image, mime };
}
