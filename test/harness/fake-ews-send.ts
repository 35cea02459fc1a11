// The fake EWS's sending, in Exchange's SOAP: CreateItem (a Message, or a ReplyToItem / ReplyAllToItem /
// ForwardItem naming the original, with SaveOnly, SendOnly or SendAndSaveCopy; attachments inside the item
// from Exchange 2010 SP2 on), CreateAttachment on a draft and SendItem. What is sent is composed as MIME
// (nodemailer's composer, as Exchange composes what it submits), kept in the mailbox's `sent` list and the
// Sent Items copy, and delivered to the fake's other mailboxes. A reply or forward is composed from the
// original as Exchange does: "RE:"/"FW:", In-Reply-To and References, the original quoted below the new
// body, a forward carries the original's attachments, and the original records the verb (PR_LAST_VERB_EXECUTED).
import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { FakeAddress, FakeAttachment, FakeFolder, FakeMailbox, FakeMessage } from './fake-ews-store.js';
import { ItemError, SoapFault, all, attr, esc, first, folderFrom, itemFrom, responseMessage, stringOf, textOf, wrap, type MailOptions } from './fake-ews-mail.js';
import { versionAtLeast } from './fake-ews-changes.js';

type Node = Record<string, unknown>;

/** What a message to compose holds (a new one, a reply, a forward, or a draft being sent). */
interface Draft {
  from: FakeAddress;
  to: FakeAddress[];
  cc: FakeAddress[];
  bcc: FakeAddress[];
  subject: string;
  text: string | null;
  html: string | null;
  attachments: { name: string; contentType: string; content: Buffer }[];
  messageId: string;
  inReplyTo?: string | null;
  references?: string | null;
}

function recipients(node: Node | undefined, name: string): FakeAddress[] {
  return all(first(node, name), 'Mailbox').map((m) => ({ name: stringOf(first(m, 'Name'), 'Name'), address: stringOf(first(m, 'EmailAddress'), 'EmailAddress') }));
}

function compose(d: Draft): Promise<Buffer> {
  const options: Mail.Options = {
    from: d.from,
    to: d.to,
    cc: d.cc,
    subject: d.subject,
    messageId: d.messageId,
    ...(d.text !== null ? { text: d.text } : {}),
    ...(d.html !== null ? { html: d.html } : {}),
    ...(d.inReplyTo ? { inReplyTo: d.inReplyTo } : {}),
    ...(d.references ? { references: d.references } : {}),
    attachments: d.attachments.map((a) => ({ filename: a.name, contentType: a.contentType, content: a.content })),
  };
  return new MailComposer(options).compile().build();
}

function newMessageId(): string {
  return `<${randomBytes(9).toString('hex')}@fake-ews.test>`;
}

/** The body a request gives: its type and text. */
function bodyOf(node: Node | undefined): { type: 'HTML' | 'Text'; text: string } | undefined {
  if (!node) return undefined;
  return { type: attr(node, 'BodyType') === 'HTML' ? 'HTML' : 'Text', text: stringOf(node, 'Body') };
}

function fileAttachments(node: Node | undefined): Draft['attachments'] {
  return all(first(node, 'Attachments'), 'FileAttachment').map((a) => ({
    name: stringOf(first(a, 'Name'), 'Name'),
    contentType: textOf(first(a, 'ContentType')) || 'application/octet-stream',
    content: Buffer.from(textOf(first(a, 'Content')), 'base64'),
  }));
}

function escHtml(text: string): string {
  return text.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
}

const asDraft = (a: FakeAttachment) => ({ name: a.name, contentType: a.contentType, content: a.content });

/** A reply or forward, composed from the original as Exchange does. */
function respond(box: FakeMailbox, kind: string, node: Node, options: MailOptions): { draft: Draft; original: FakeMessage } {
  const original = itemFrom(box, first(node, 'ReferenceItemId'));
  const owner = options.owner.toLowerCase();
  const forward = kind === 'ForwardItem';
  const prefix = forward ? 'FW: ' : 'RE: ';
  const subject = /^(re|fw|fwd):\s/i.test(original.subject) && original.subject.slice(0, 2).toLowerCase() === prefix.slice(0, 2).toLowerCase() ? original.subject : `${prefix}${original.subject}`;
  const first_ = original.replyTo.length > 0 ? original.replyTo : original.from ? [original.from] : [];
  const to = forward ? [] : kind === 'ReplyAllToItem' ? [...first_, ...original.to.filter((a) => a.address.toLowerCase() !== owner)] : [...first_];
  const cc = kind === 'ReplyAllToItem' ? original.cc.filter((a) => a.address.toLowerCase() !== owner) : [];
  const added = bodyOf(first(node, 'NewBodyContent'));
  const header = `From: ${original.from?.address ?? ''}\nSubject: ${original.subject}`;
  const html = added?.type === 'HTML' || original.html !== null;
  const draft: Draft = {
    from: { name: '', address: options.owner },
    to: [...to, ...recipients(node, 'ToRecipients')],
    cc: [...cc, ...recipients(node, 'CcRecipients')],
    bcc: recipients(node, 'BccRecipients'),
    subject,
    text: html ? null : `${added?.text ?? ''}\n\n-----Original Message-----\n${header}\n\n${original.text ?? ''}`,
    html: html
      ? `${added ? (added.type === 'HTML' ? added.text : `<pre>${escHtml(added.text)}</pre>`) : ''}<hr><div id="divRplyFwdMsg">${escHtml(header).replace(/\n/g, '<br>')}</div>${original.html ?? `<pre>${escHtml(original.text ?? '')}</pre>`}`
      : null,
    attachments: forward ? original.attachments.map(asDraft) : [],
    messageId: newMessageId(),
    inReplyTo: original.messageId,
    references: [original.references, original.messageId].filter(Boolean).join(' ') || null,
  };
  return { draft, original };
}

/** The draft a message already saved in the mailbox stands for. */
function draftOf(m: FakeMessage, owner: string): Draft {
  return {
    from: m.from ?? { name: '', address: owner },
    to: m.to,
    cc: m.cc,
    bcc: m.bcc,
    subject: m.subject,
    text: m.text,
    html: m.html,
    attachments: m.attachments.map(asDraft),
    messageId: m.messageId ?? newMessageId(),
    inReplyTo: m.inReplyTo,
    references: m.references,
  };
}

/** Sends: records it, delivers it to the fake's mailboxes, and keeps the copy where asked. */
async function submit(box: FakeMailbox, draft: Draft, saveTo: FakeFolder | null, named: Record<string, string>, options: MailOptions): Promise<void> {
  const mime = await compose(draft);
  const copy = saveTo ? await box.addMessage(saveTo, mime, { isRead: true, bcc: draft.bcc, named }) : null;
  box.sent.push({ mime, to: draft.to, cc: draft.cc, bcc: draft.bcc, copy });
  for (const r of [...draft.to, ...draft.cc, ...draft.bcc]) await options.deliver(r.address, mime);
}

function savedFolder(box: FakeMailbox, op: Node, fallback: string): FakeFolder {
  const saved = first(op, 'SavedItemFolderId');
  const kind = first(saved, 'FolderId') ? 'FolderId' : 'DistinguishedFolderId';
  const node = first(saved, kind);
  return node ? folderFrom(box, node, kind) : box.folder(fallback);
}

/** Answers a sending operation, or undefined when `operation` is not one. */
export async function answerSend(box: FakeMailbox, operation: string, op: Node, options: MailOptions): Promise<string | undefined> {
  switch (operation) {
    case 'CreateItem': {
      const disposition = attr(op, 'MessageDisposition');
      if (disposition !== 'SaveOnly' && disposition !== 'SendOnly' && disposition !== 'SendAndSaveCopy') throw new SoapFault('ErrorSchemaValidation', 'MessageDisposition is required for messages.');
      const items = first(op, 'Items');
      const answers: string[] = [];
      for (const [kind, nodes] of Object.entries(items ?? {})) {
        if (kind.startsWith('@') || kind === '#text') continue;
        for (const node of nodes as Node[]) {
          answers.push(await itemAnswer(box, kind, node, disposition, op, options));
        }
      }
      return wrap('CreateItem', answers);
    }
    case 'CreateAttachment': {
      const parent = first(op, 'ParentItemId');
      const files = fileAttachments(op);
      const answers: string[] = [];
      for (const file of files) {
        answers.push(await answerAsync('CreateAttachment', async () => {
          const m = itemFrom(box, parent);
          const draft = draftOf(m, options.owner);
          draft.attachments.push(file);
          await box.replaceMime(m, await compose(draft));
          const added = m.attachments.at(-1)!;
          return `<m:Attachments><t:FileAttachment><t:AttachmentId Id="${esc(added.id)}" RootItemId="${esc(m.id)}" RootItemChangeKey="${esc(m.changeKey)}"/></t:FileAttachment></m:Attachments>`;
        }));
      }
      return wrap('CreateAttachment', answers);
    }
    case 'SendItem': {
      const save = attr(op, 'SaveItemToFolder') !== 'false';
      const answers: string[] = [];
      for (const node of all(first(op, 'ItemIds'), 'ItemId')) {
        answers.push(await answerAsync('SendItem', async () => {
          const m = itemFrom(box, node);
          // Exchange sends what it has: a ChangeKey from before the last change is stale
          const key = attr(node, 'ChangeKey');
          if (key !== undefined && key !== m.changeKey) throw new ItemError('ErrorStaleObject', 'The change key passed in the request does not match the current change key for the item.');
          await submit(box, draftOf(m, options.owner), save ? savedFolder(box, op, 'sentitems') : null, m.named, options);
          box.remove(m);
          return '';
        }));
      }
      return wrap('SendItem', answers);
    }
    default:
      return undefined;
  }
}

/** responseMessage for an answer made asynchronously. */
async function answerAsync(op: string, inner: () => Promise<string>): Promise<string> {
  let text: string;
  try {
    text = await inner();
  } catch (err) {
    return responseMessage(op, () => {
      throw err;
    });
  }
  return responseMessage(op, () => text);
}

async function itemAnswer(box: FakeMailbox, kind: string, node: Node, disposition: string, op: Node, options: MailOptions): Promise<string> {
  return answerAsync('CreateItem', async () => {
    let draft: Draft;
    const named: Record<string, string> = {};
    let original: FakeMessage | undefined;
    if (kind === 'Message') {
      const body = bodyOf(first(node, 'Body'));
      const attachments = fileAttachments(node);
      if (attachments.length > 0 && !versionAtLeast(options.version, 'Exchange2010_SP2')) throw new SoapFault('ErrorSchemaValidation', 'Attachments in CreateItem need Exchange2010_SP2.');
      for (const p of all(node, 'ExtendedProperty')) {
        const name = attr(first(p, 'ExtendedFieldURI'), 'PropertyName');
        if (name !== undefined) named[name] = textOf(first(p, 'Value'));
      }
      draft = {
        from: { name: '', address: options.owner },
        to: recipients(node, 'ToRecipients'),
        cc: recipients(node, 'CcRecipients'),
        bcc: recipients(node, 'BccRecipients'),
        subject: stringOf(first(node, 'Subject'), 'Subject'),
        text: body?.type === 'Text' ? body.text : null,
        html: body?.type === 'HTML' ? body.text : null,
        attachments,
        messageId: newMessageId(),
      };
    } else if (kind === 'ReplyToItem' || kind === 'ReplyAllToItem' || kind === 'ForwardItem') {
      ({ draft, original } = respond(box, kind, node, options));
    } else {
      throw new SoapFault('ErrorInvalidOperation', `The fake does not create ${kind}.`);
    }
    if (disposition !== 'SaveOnly' && draft.to.length + draft.cc.length + draft.bcc.length === 0) throw new ItemError('ErrorInvalidRecipients', 'At least one recipient is required.');
    if (disposition === 'SaveOnly') {
      const saved = await box.addMessage(savedFolder(box, op, 'drafts'), await compose(draft), { isRead: true, bcc: draft.bcc, named });
      return `<m:Items><t:Message><t:ItemId Id="${esc(saved.id)}" ChangeKey="${esc(saved.changeKey)}"/></t:Message></m:Items>`;
    }
    await submit(box, draft, disposition === 'SendAndSaveCopy' ? savedFolder(box, op, 'sentitems') : null, named, options);
    if (original) original.lastVerb = kind === 'ForwardItem' ? 104 : kind === 'ReplyAllToItem' ? 103 : 102;
    return '<m:Items/>';
  });
}
