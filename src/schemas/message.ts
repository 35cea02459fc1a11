import { Type, type Static, type TSchema } from 'typebox';
import { StringEnum } from './common.js';
import { ref, shared } from './shared.js';

/** The HTTP shapes of domain/mail.ts: folders, message summaries and details, pages, and the list query. */

/** `T | null` as a type list, as in session.ts: fast-json-stringify picks the branch by typeof. */
const Nullable = <T extends TSchema & { type?: unknown }>(schema: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<Static<T> | null>({ ...schema, ...options, type: [schema.type as string, 'null'] });

export const SpecialUseSchema = Type.Unsafe<string | null>({
  type: ['string', 'null'],
  enum: ['inbox', 'sent', 'drafts', 'trash', 'junk', 'archive', 'all', 'flagged', null],
  description: 'The folder\'s role (IMAP special-use, EWS/Graph well-known folder), or null.',
});

export const FolderSchema = shared('Folder', Type.Object(
  {
    path: Type.String({ description: 'What later calls name the folder by (`folder`, `to`).', examples: ['INBOX', 'Archive/2026'] }),
    name: Type.String({ description: 'The last part of the path.' }),
    delimiter: Nullable(Type.String(), { description: 'The server\'s hierarchy delimiter (Dovecot ".", Cyrus "/"); null without hierarchy.' }),
    specialUse: SpecialUseSchema,
  }
));

export const FolderListSchema = shared('FolderList', Type.Object({ folders: Type.Array(ref(FolderSchema)) }));

export const MailAddressSchema = shared('MailAddress', Type.Object(
  { name: Nullable(Type.String()), address: Nullable(Type.String()) }
));

export const AttachmentInfoSchema = shared('AttachmentInfo', Type.Object(
  {
    id: Type.String({ description: 'Opaque; use it with the message id in /messages/{id}/attachments/{attachmentId}.' }),
    filename: Nullable(Type.String()),
    contentType: Type.String({ examples: ['application/pdf'] }),
    size: Nullable(Type.Integer({ minimum: 0 }), { description: 'Decoded bytes (null when the server does not tell).' }),
    inline: Type.Boolean({ description: 'Shown in the body (an inline image) rather than attached.' }),
    contentId: Nullable(Type.String(), { description: 'The Content-ID an HTML body refers to (cid:...).' }),
  }
));

const summaryFields = {
  id: Type.String({ description: 'Opaque, URL-safe message id: stable while the message stays in its folder.' }),
  folder: Type.String(),
  messageId: Nullable(Type.String(), { description: 'The Message-ID header.' }),
  subject: Nullable(Type.String()),
  from: Type.Union([ref(MailAddressSchema), Type.Null()]),
  to: Type.Array(ref(MailAddressSchema)),
  cc: Type.Array(ref(MailAddressSchema)),
  date: Nullable(Type.String({ format: 'date-time' }), { description: 'The Date header.' }),
  receivedAt: Nullable(Type.String({ format: 'date-time' }), { description: 'When the server received it; null where the protocol does not tell (POP3).' }),
  size: Nullable(Type.Integer({ minimum: 0 }), { description: 'Bytes of the whole message.' }),
  seen: Nullable(Type.Boolean(), { description: 'Read; null where the protocol keeps no flags (POP3).' }),
  flagged: Nullable(Type.Boolean()),
  answered: Nullable(Type.Boolean()),
  hasAttachments: Type.Boolean(),
  attachments: Type.Array(ref(AttachmentInfoSchema)),
};

export const MessageSummarySchema = shared('MessageSummary', Type.Object(
  { ...summaryFields, text: Type.Optional(Nullable(Type.String(), { description: 'With include=text: the plain text.' })) }
));

export const MessagePageSchema = shared('MessagePage', Type.Object(
  {
    messages: Type.Array(ref(MessageSummarySchema)),
    nextCursor: Nullable(Type.String(), { description: 'Pass as `cursor` for the next page; null on the last page.' }),
  }
));

export const MessageDetailSchema = shared('MessageDetail', Type.Object(
  {
    ...summaryFields,
    text: Nullable(Type.String(), { description: 'Plain text; derived from the HTML when the message has none.' }),
    html: Nullable(Type.String()),
    headers: Type.Array(Type.Object({ name: Type.String(), value: Type.String() }), { description: 'Every header, in order, decoded.' }),
    inReplyTo: Nullable(Type.String()),
    references: Type.Array(Type.String()),
    truncated: Type.Boolean({ description: 'true when the message exceeded MSB_PARSE_MAX_BYTES: text, html and attachments cover what was read.' }),
  }
));

/** Control characters never reach a mail server through a query (folder names go onto the wire). */
const NO_CONTROLS = '^[^\\u0000-\\u001f\\u007f]*$';
const DAY_OR_INSTANT = '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2}))?$';

export const FolderQuery = Type.String({ minLength: 1, maxLength: 1000, pattern: NO_CONTROLS, default: 'INBOX', description: 'Folder path (default INBOX).' });

/** The loop's filters, shared by the list query and (as `where`) by the bulk operations. */
export const filterFields = {
  status: Type.Optional(StringEnum(['all', 'read', 'unread'], { default: 'all', description: 'Read status (default all).' })),
  subject: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, pattern: NO_CONTROLS, description: 'Subject contains (case-insensitive); `;` separates alternatives, any of which matches.' })),
  from: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, pattern: NO_CONTROLS, description: 'Sender (name or address) contains (case-insensitive); `;` separates alternatives.' })),
  since: Type.Optional(Type.String({ pattern: DAY_OR_INSTANT, description: 'Received at or after: ISO 8601 date-time, or a date meaning its start in UTC.', examples: ['2026-11-01'] })),
  before: Type.Optional(Type.String({ pattern: DAY_OR_INSTANT, description: 'Received before: ISO 8601 date-time, or a date meaning its start in UTC.' })),
};

export const ListMessagesQuery = Type.Object(
  {
    folder: Type.Optional(FolderQuery),
    ...filterFields,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'Page size (default 50, at most 1000).' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, pattern: '^[A-Za-z0-9_.~-]+$', description: 'nextCursor of the previous page.' })),
    order: Type.Optional(StringEnum(['newest', 'oldest'], { default: 'newest', description: 'By date received (default newest first).' })),
    include: Type.Optional(Type.Literal('text', { description: '"text" adds each message\'s plain text.' })),
    wait: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 60,
        default: 0,
        description: 'Long-poll: when nothing matches yet, wait up to this many seconds for new mail in the session\'s watched folders, then answer (an empty page when none came).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const MessageId = Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z0-9_-]+$', description: 'A message id from a list or a move.' });
export const AttachmentId = Type.String({ minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_.-]+$', description: 'An attachment id from the message\'s `attachments`.' });

/** The loop's filters as a body member (`where`) of the bulk operations. */
export const WhereSchema = shared('MessageFilter', Type.Object(filterFields, {
  additionalProperties: false,
  description: 'The list\'s filters; every condition given must hold. `{}` selects every message of the folder.',
}));

const FolderPath = Type.String({ minLength: 1, maxLength: 1000, pattern: NO_CONTROLS, description: 'Folder path, as GET /folders shows it.' });

export const FlagChangeBody = shared('FlagChange', Type.Object(
  {
    seen: Type.Optional(Type.Boolean({ description: 'Read (true) or unread (false).' })),
    flagged: Type.Optional(Type.Boolean({ description: 'Flagged for follow-up.' })),
  },
  { additionalProperties: false, minProperties: 1 },
));

export const MoveBody = shared('MoveRequest', Type.Object({ to: FolderPath }, { additionalProperties: false }));

export const MoveResultSchema = shared('MoveResult', Type.Object(
  { id: Type.String({ description: 'The message\'s id in its new folder (the old id is MESSAGE_NOT_FOUND from now on).' }), folder: Type.String() }
));

const bulkTarget = {
  folder: Type.Optional({ ...FolderPath, default: 'INBOX', description: 'The folder to act in (default INBOX).' }),
  where: ref(WhereSchema),
};

export const BulkMoveBody = shared('BulkMoveRequest', Type.Object({ ...bulkTarget, to: FolderPath }, { additionalProperties: false }));
export const BulkDeleteBody = shared('BulkDeleteRequest', Type.Object(
  { ...bulkTarget, permanent: Type.Optional(Type.Boolean({ default: false, description: 'Remove for good instead of moving to the trash folder.' })) },
  { additionalProperties: false },
));
export const BulkUpdateBody = shared('BulkUpdateRequest', Type.Object(
  { ...bulkTarget, seen: Type.Optional(Type.Boolean()), flagged: Type.Optional(Type.Boolean()) },
  // at least one of seen and flagged, said in the schema so that generated requests and clients know it
  { additionalProperties: false, anyOf: [{ required: ['seen'] }, { required: ['flagged'] }], description: 'At least one of seen and flagged.' },
));

export const BulkMoveResultSchema = shared('BulkMoveResult', Type.Object(
  {
    moved: Type.Integer({ minimum: 0 }),
    messages: Type.Array(Type.Object({ id: Type.String(), newId: Nullable(Type.String()) }), { description: 'Each message moved: its old id and its new one.' }),
  }
));
export const BulkDeleteResultSchema = shared('BulkDeleteResult', Type.Object({ deleted: Type.Integer({ minimum: 0 }) }));
export const BulkUpdateResultSchema = shared('BulkUpdateResult', Type.Object({ updated: Type.Integer({ minimum: 0 }) }));

export const ClaimId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'The claim id from POST /claims.' });
const LeaseSeconds = Type.Integer({ minimum: 5, maximum: 3600, description: 'How long the messages stay leased to this claim (5 s to 1 h).' });

export const ClaimBody = shared('ClaimRequest', Type.Object(
  {
    folder: Type.Optional({ ...FolderPath, default: 'INBOX', description: 'The folder to claim from (default INBOX).' }),
    where: Type.Optional(ref(WhereSchema)),
    max: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'Most messages to lease.' })),
    leaseSeconds: Type.Optional({ ...LeaseSeconds, default: 300 }),
  },
  { additionalProperties: false },
));

export const ClaimSchema = shared('Claim', Type.Object(
  {
    claim: Type.String({ description: 'The claim id: acknowledge, extend or release with it.' }),
    expiresAt: Type.String({ format: 'date-time', description: 'When the lease ends; unacknowledged messages go back to the pool then.' }),
    messages: Type.Array(ref(MessageSummarySchema), { description: 'The messages leased to this claim, oldest first (may be fewer than max, or none).' }),
  }
));

export const AckBody = shared('AckRequest', Type.Object(
  {
    ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z0-9_-]+$' }), { maxItems: 1000, description: 'The messages done (default: all of the claim\'s).' })),
    then: Type.Optional(
      Type.Object(
        {
          markRead: Type.Optional(Type.Boolean({ description: 'Mark them read.' })),
          flag: Type.Optional(Type.Boolean({ description: 'Flag them.' })),
          moveTo: Type.Optional({ ...FolderPath, description: 'Move them to this folder.' }),
          delete: Type.Optional(Type.Boolean({ description: 'Delete them (to the trash folder where there is one).' })),
        },
        { additionalProperties: false, description: 'What to do once they are marked done.' },
      ),
    ),
  },
  { additionalProperties: false },
));

export const AckResultSchema = shared('AckResult', Type.Object(
  {
    acknowledged: Type.Array(Type.String(), { description: 'Marked done: no claim gets them again.' }),
    failed: Type.Array(Type.Object({ id: Type.String(), code: Type.String(), detail: Type.String() }), {
      description: 'What could not be done, per message (marking done, or a follow-up); a message not marked done stays leased.',
    }),
  }
));

export const ExtendBody = shared('ExtendRequest', Type.Object({ leaseSeconds: LeaseSeconds }, { additionalProperties: false }));
export const ExtendResultSchema = shared('ClaimLease', Type.Object(
  { claim: Type.String(), expiresAt: Type.String({ format: 'date-time' }), ids: Type.Array(Type.String(), { description: 'The ids the claim still holds.' }) }
));
