import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as EwsApi from 'ews-javascript-api';
import { AppError, isAppError } from '../../errors.js';
import type { ForwardRequest, MessageSender, OutgoingAttachment, OutgoingMessage, Recipient, ReplyRequest, SendResult } from '../../domain/mail.js';
import { atLeast, itemIdOf, type EwsContext } from './context.js';
import { prop } from './item-mapping.js';
import { xmlText } from './xml-text.js';

/**
 * Sending through EWS. Exchange sends and keeps the copy in Sent Items (MessageDisposition
 * SendAndSaveCopy, SavedItemFolderId sentitems):
 * - a new message is one CreateItem with its recipients (parsed Recipients, each its own Mailbox element),
 *   its body and, from Exchange 2010 SP2 on, its attachments as FileAttachment inside the item. Older
 *   versions take no attachments in CreateItem: the library saves a draft, adds them (CreateAttachment)
 *   and sends it (SendItem);
 * - a reply, reply-all or forward is CreateItem with a ReplyToItem / ReplyAllToItem / ForwardItem that
 *   names the original (ReferenceItemId) and carries the new text (NewBodyContent): Exchange addresses
 *   it, sets "RE:"/"FW:", the threading headers, quotes the original below and, forwarding, attaches the
 *   original's attachments. A response object carries no attachments of its own, so one with attachments
 *   goes the save-then-send way: saved to Drafts (CreateItem SaveOnly), given them (CreateAttachment),
 *   sent (SendItem); a draft left by a failure on the way is deleted.
 *
 * Every string goes into the request escaped (xml-text.ts). EWS takes one body: the HTML when there is some, else the text. Given both, the HTML is sent and the
 * text is not (Exchange makes the plain-text alternative of an HTML message itself).
 *
 * Exchange does not tell per recipient what it accepted: `accepted` lists every recipient once the send
 * was taken (for a reply, those Exchange addresses it to: Reply-To or From, and with replyAll To and Cc
 * without this mailbox), `rejected` is empty; a refused send is an error and nothing is reported sent.
 * Undeliverable recipients come back later as non-delivery reports in the Inbox.
 */
export class EwsSender implements MessageSender {
  readonly #ctx: EwsContext;
  /** This mailbox's address, left out of reply-all's `accepted` as Exchange leaves it out of the reply. */
  readonly #mailbox: string;

  constructor(ctx: EwsContext, options: { mailbox: string }) {
    this.#ctx = ctx;
    this.#mailbox = options.mailbox.toLowerCase();
  }

  async send(message: OutgoingMessage): Promise<SendResult> {
    const marker = randomUUID();
    await this.#ctx.request('CreateItem', async (service, ews) => {
      const m = new ews.EmailMessage(service);
      m.Subject = xmlText(message.subject);
      m.Body = bodyOf(ews, message);
      addRecipients(ews, m.ToRecipients, message.to);
      addRecipients(ews, m.CcRecipients, message.cc);
      addRecipients(ews, m.BccRecipients, message.bcc);
      m.SetExtendedProperty(markerProperty(ews), marker);
      addAttachments(m, message.attachments);
      const sentItems = new ews.FolderId(ews.WellKnownFolderName.SentItems);
      if (message.attachments.length === 0 || atLeast(service, ews, 'Exchange2010_SP2')) {
        // EmailMessage.SendAndSaveCopy would save a draft first whenever there are attachments
        await (service as unknown as InternalService).CreateItem(m, sentItems, ews.MessageDisposition.SendAndSaveCopy, null);
        return;
      }
      try {
        await m.SendAndSaveCopy(sentItems);
      } catch (err) {
        await discardDraft(ews, m);
        throw err;
      }
    });
    return { messageId: await this.#sentMessageId(marker), accepted: addressesOf([...message.to, ...message.cc, ...message.bcc]), rejected: [] };
  }

  async reply(id: string, request: ReplyRequest): Promise<SendResult> {
    const itemId = itemIdOf(id);
    const accepted = await this.#ctx.request(request.replyAll ? 'ReplyAllToItem' : 'ReplyToItem', async (service, ews) => {
      const original = await this.#original(service, ews, itemId, [ews.EmailMessageSchema.From, ews.EmailMessageSchema.ReplyTo, ews.EmailMessageSchema.ToRecipients, ews.EmailMessageSchema.CcRecipients]);
      const response = original.CreateReply(request.replyAll);
      if (request.text !== null || request.html !== null) response.BodyPrefix = bodyOf(ews, request);
      await sendResponse(ews, response, request.attachments);
      return this.#replyRecipients(ews, original, request.replyAll);
    }, 'message');
    // the copy in Sent Items is not named in the answer, and a response object cannot carry a marker to find it by
    return { messageId: null, accepted, rejected: [] };
  }

  async forward(id: string, request: ForwardRequest): Promise<SendResult> {
    const itemId = itemIdOf(id);
    await this.#ctx.request('ForwardItem', async (service, ews) => {
      const original = await this.#original(service, ews, itemId, []);
      const response = original.CreateForward();
      addRecipients(ews, response.ToRecipients, request.to);
      addRecipients(ews, response.CcRecipients, request.cc);
      addRecipients(ews, response.BccRecipients, request.bcc);
      if (request.text !== null || request.html !== null) response.BodyPrefix = bodyOf(ews, request);
      await sendResponse(ews, response, request.attachments);
    }, 'message');
    return { messageId: null, accepted: addressesOf([...request.to, ...request.cc, ...request.bcc]), rejected: [] };
  }

  /** The message to answer (GetItem: MESSAGE_NOT_FOUND when it is gone), with the properties asked for. */
  async #original(service: EwsApi.ExchangeService, ews: typeof EwsApi, itemId: string, props: EwsApi.PropertyDefinitionBase[]): Promise<EwsApi.EmailMessage> {
    const item = await ews.Item.Bind(service, new ews.ItemId(itemId), new ews.PropertySet(ews.BasePropertySet.IdOnly, props));
    if (!item) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no item');
    if (!(item instanceof ews.EmailMessage)) throw new AppError('OPERATION_NOT_SUPPORTED', 'only messages can be answered or forwarded, not this kind of Exchange item');
    return item;
  }

  #replyRecipients(ews: typeof EwsApi, original: EwsApi.EmailMessage, replyAll: boolean): string[] {
    const list = (def: EwsApi.PropertyDefinitionBase) => (prop<EwsApi.EmailAddressCollection>(original, def)?.GetEnumerator() ?? []).map((a) => a.Address ?? '');
    const from = prop<EwsApi.EmailAddress>(original, ews.EmailMessageSchema.From)?.Address;
    const replyTo = list(ews.EmailMessageSchema.ReplyTo);
    const first = replyTo.length > 0 ? replyTo : from ? [from] : [];
    const others = replyAll ? [...list(ews.EmailMessageSchema.ToRecipients), ...list(ews.EmailMessageSchema.CcRecipients)].filter((a) => a.toLowerCase() !== this.#mailbox) : [];
    const seen = new Set<string>();
    return [...first, ...others].filter((a) => a !== '' && !seen.has(a.toLowerCase()) && seen.add(a.toLowerCase()));
  }

  /**
   * The Internet Message-ID of a message just sent, read from its copy in Sent Items, which carries the
   * marker it was created with. Exchange files the copy as it submits the message, so it is looked for
   * twice; not found (or the lookup failed), the answer says null: the message was sent either way.
   */
  async #sentMessageId(marker: string): Promise<string | null> {
    for (let attempt = 0; attempt < SENT_COPY_LOOKUPS; attempt += 1) {
      if (attempt > 0) await sleep(SENT_COPY_WAIT_MS);
      try {
        const found = await this.#ctx.request('FindItem', async (service, ews) => {
          const view = new ews.ItemView(1);
          view.PropertySet = new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.EmailMessageSchema.InternetMessageId]);
          const results = await service.FindItems(new ews.FolderId(ews.WellKnownFolderName.SentItems), new ews.SearchFilter.IsEqualTo(markerProperty(ews), marker), view);
          const item = results?.Items[0];
          return item ? prop<string>(item, ews.EmailMessageSchema.InternetMessageId) : null;
        });
        if (found) return found;
      } catch (err) {
        this.#ctx.logger.debug({ code: isAppError(err) ? err.code : 'INTERNAL_ERROR' }, 'EWS: the sent copy could not be looked up for its Message-ID');
        return null;
      }
    }
    return null;
  }
}

const SENT_COPY_LOOKUPS = 2;
const SENT_COPY_WAIT_MS = 500;

/** CreateItem as the library's own items use it (not in its typings): SendAndSaveCopy without a draft. */
interface InternalService {
  CreateItem(item: EwsApi.Item, parentFolderId: EwsApi.FolderId, disposition: EwsApi.MessageDisposition, invitations: null): Promise<unknown>;
}

/**
 * A named property (PublicStrings) set on each new message: its copy in Sent Items is found by it, for
 * the Message-ID. It stays in the mailbox; Exchange does not write it into the MIME sent out.
 */
function markerProperty(ews: typeof EwsApi): EwsApi.ExtendedPropertyDefinition {
  return new ews.ExtendedPropertyDefinition(ews.DefaultExtendedPropertySet.PublicStrings, 'msb-send-id', ews.MapiPropertyType.String);
}

function bodyOf(ews: typeof EwsApi, content: { text: string | null; html: string | null }): EwsApi.MessageBody {
  return content.html !== null ? new ews.MessageBody(ews.BodyType.HTML, xmlText(content.html)) : new ews.MessageBody(ews.BodyType.Text, xmlText(content.text ?? ''));
}

/** Each recipient as its own Mailbox (name and address apart): nothing is ever joined into a header. */
function addRecipients(ews: typeof EwsApi, list: EwsApi.EmailAddressCollection, recipients: readonly Recipient[]): void {
  for (const r of recipients) list.Add(r.name ? new ews.EmailAddress(xmlText(r.name), xmlText(r.address), 'SMTP') : new ews.EmailAddress(xmlText(r.address)));
}

function addAttachments(item: EwsApi.Item, attachments: readonly OutgoingAttachment[]): void {
  for (const a of attachments) {
    const file = item.Attachments.AddFileAttachment(xmlText(a.filename), a.content.toString('base64'));
    if (a.contentType) file.ContentType = xmlText(a.contentType);
  }
}

function addressesOf(recipients: readonly Recipient[]): string[] {
  return recipients.map((r) => r.address);
}

/** Sends a reply or forward to Sent Items; with attachments of its own, by way of a draft (see EwsSender). */
async function sendResponse(ews: typeof EwsApi, response: EwsApi.ResponseMessage, attachments: readonly OutgoingAttachment[]): Promise<void> {
  const sentItems = new ews.FolderId(ews.WellKnownFolderName.SentItems);
  if (attachments.length === 0) {
    await response.SendAndSaveCopy(sentItems);
    return;
  }
  const draft = await response.Save(new ews.FolderId(ews.WellKnownFolderName.Drafts));
  if (!draft) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS CreateItem did not answer the saved draft');
  try {
    addAttachments(draft, attachments);
    await draft.SendAndSaveCopy(sentItems);
  } catch (err) {
    await discardDraft(ews, draft);
    throw err;
  }
}

/** Deletes a draft a failed send left behind; best effort (the failure itself is the answer). */
async function discardDraft(ews: typeof EwsApi, draft: EwsApi.EmailMessage): Promise<void> {
  if (draft.IsNew) return;
  await draft.Delete(ews.DeleteMode.HardDelete).catch(() => undefined);
}
