import type * as EwsApi from 'ews-javascript-api';
import { encodeId, type AttachmentInfo, type MailAddress, type MessageSummary } from '../../domain/mail.js';

/**
 * From ews-javascript-api's objects to the service's summaries. The library throws when a property that
 * was not loaded is read, and a server may leave out any property it has no value for: every read here
 * goes through TryGetProperty.
 */

/** MAPI properties that EWS has no first-class field for (on every Exchange version). */
export const MAPI = {
  /** PidTagFlagStatus: 2 = flagged, 1 = completed. */
  flagStatus: 0x1090,
  /** PidTagLastVerbExecuted: 102 = replied, 103 = replied to all, 104 = forwarded. */
  lastVerb: 0x1081,
  /** PidTagSentRepresentingName / EmailAddress / SmtpAddress: the From header, what the "from" filter searches. */
  fromName: 0x0042,
  fromEmail: 0x0065,
  fromSmtp: 0x5d02,
} as const;

export function prop<T>(obj: EwsApi.ServiceObject, def: EwsApi.PropertyDefinitionBase): T | null {
  const out: EwsApi.IOutParam<T> = { outValue: null } as EwsApi.IOutParam<T>;
  try {
    return obj.TryGetProperty<T>(def, out) ? (out.outValue ?? null) : null;
  } catch {
    return null;
  }
}

export function extended(item: EwsApi.Item, tag: number): unknown {
  let props: EwsApi.ExtendedPropertyCollection | undefined;
  try {
    props = item.ExtendedProperties;
  } catch {
    return undefined;
  }
  for (const p of props?.GetEnumerator() ?? []) if (p.PropertyDefinition?.Tag === tag) return p.Value;
  return undefined;
}

export function iso(value: EwsApi.DateTime | null): string | null {
  if (!value) return null;
  const ms = value.TotalMilliSeconds;
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

function address(a: EwsApi.EmailAddress | null | undefined): MailAddress | null {
  if (!a) return null;
  const name = a.Name || null;
  const addr = a.Address || null;
  return name || addr ? { name, address: addr } : null;
}

function addresses(list: EwsApi.EmailAddressCollection | null): MailAddress[] {
  return (list?.GetEnumerator() ?? []).map(address).filter((a): a is MailAddress => a !== null);
}

export function attachmentInfos(item: EwsApi.Item, ews: typeof EwsApi): AttachmentInfo[] {
  const list = prop<EwsApi.AttachmentCollection>(item, ews.ItemSchema.Attachments);
  return (list?.GetEnumerator() ?? []).map((a) => {
    const isItem = a instanceof ews.ItemAttachment;
    return {
      id: encodeId(a.Id),
      filename: a.Name || null,
      // an attached Outlook item is downloaded as its MIME content
      contentType: isItem ? 'message/rfc822' : a.ContentType || 'application/octet-stream',
      // Exchange's attachment size (PR_ATTACH_SIZE), which counts a few bytes of properties besides the content
      size: Number.isInteger(a.Size) && a.Size >= 0 ? a.Size : null,
      inline: a.IsInline === true,
      contentId: a.ContentId || null,
    };
  });
}

/** A message as a summary; `folder` is the path the caller knows it by. */
export function toSummary(item: EwsApi.Item, folder: string, ews: typeof EwsApi): MessageSummary {
  const flag = extended(item, MAPI.flagStatus);
  const verb = extended(item, MAPI.lastVerb);
  const isRead = prop<boolean>(item, ews.EmailMessageSchema.IsRead);
  const attachments = attachmentInfos(item, ews);
  const size = prop<number>(item, ews.ItemSchema.Size);
  return {
    id: encodeId(item.Id.UniqueId),
    folder,
    messageId: prop<string>(item, ews.EmailMessageSchema.InternetMessageId),
    subject: prop<string>(item, ews.ItemSchema.Subject),
    from: address(prop<EwsApi.EmailAddress>(item, ews.EmailMessageSchema.From)),
    to: addresses(prop<EwsApi.EmailAddressCollection>(item, ews.EmailMessageSchema.ToRecipients)),
    cc: addresses(prop<EwsApi.EmailAddressCollection>(item, ews.EmailMessageSchema.CcRecipients)),
    date: iso(prop<EwsApi.DateTime>(item, ews.ItemSchema.DateTimeSent)),
    receivedAt: iso(prop<EwsApi.DateTime>(item, ews.ItemSchema.DateTimeReceived)),
    size: typeof size === 'number' && size >= 0 ? size : null,
    seen: typeof isRead === 'boolean' ? isRead : null,
    flagged: Number(flag) === 2,
    answered: Number(verb) === 102 || Number(verb) === 103,
    hasAttachments: prop<boolean>(item, ews.ItemSchema.HasAttachments) === true || attachments.some((a) => !a.inline),
    attachments,
  };
}

/** What a summary is made of: asked for by GetItem (a page, a message, the watcher's new mail). */
export function summaryProperties(ews: typeof EwsApi): EwsApi.PropertyDefinitionBase[] {
  return [
    ews.ItemSchema.Subject,
    ews.ItemSchema.DateTimeReceived,
    ews.ItemSchema.DateTimeSent,
    ews.ItemSchema.Size,
    ews.ItemSchema.HasAttachments,
    ews.ItemSchema.Attachments,
    ews.EmailMessageSchema.IsRead,
    ews.EmailMessageSchema.From,
    ews.EmailMessageSchema.ToRecipients,
    ews.EmailMessageSchema.CcRecipients,
    ews.EmailMessageSchema.InternetMessageId,
    new ews.ExtendedPropertyDefinition(MAPI.flagStatus, ews.MapiPropertyType.Integer),
    new ews.ExtendedPropertyDefinition(MAPI.lastVerb, ews.MapiPropertyType.Integer),
  ];
}
