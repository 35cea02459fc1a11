import { Type } from 'typebox';
import { ref, shared } from './shared.js';

/** The bodies of the send routes (contract: "Send"). Nothing here can carry a line break into a header. */

const NO_CONTROLS = '^[^\\u0000-\\u001f\\u007f]*$';

const AddressString = Type.String({
  minLength: 3,
  maxLength: 998,
  pattern: NO_CONTROLS,
  description: '"Name <a@example.com>" or "a@example.com"; a comma separates several in one string.',
  examples: ['Accounts <accounts@supplier.example>'],
});

export const Addresses = Type.Union([AddressString, Type.Array(AddressString, { minItems: 1, maxItems: 1000 })], {
  description: 'One address string, or a list of them.',
});

export const AttachmentBody = shared('OutgoingAttachment', Type.Object(
  {
    filename: Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f/\\\\]+$', examples: ['invoice-4711.pdf'] }),
    contentType: Type.Optional(Type.String({ maxLength: 255, pattern: '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$', examples: ['application/pdf'] })),
    content: Type.String({ pattern: '^[A-Za-z0-9+/\\r\\n]*={0,2}[\\r\\n]*$', description: 'The bytes, base64.' }),
  },
  { additionalProperties: false },
));

const Attachments = Type.Array(ref(AttachmentBody), { maxItems: 100 });
const Text = Type.String({ maxLength: 157_286_400, description: 'Plain-text body.' });
const Html = Type.String({ maxLength: 157_286_400, description: 'HTML body.' });

export const SendBody = shared('SendRequest', Type.Object(
  {
    to: Addresses,
    cc: Type.Optional(Addresses),
    bcc: Type.Optional(Addresses),
    subject: Type.String({ maxLength: 998, pattern: NO_CONTROLS }),
    text: Type.Optional(Text),
    html: Type.Optional(Html),
    attachments: Type.Optional(Attachments),
  },
  { additionalProperties: false },
));

export const ReplyBody = shared('ReplyRequest', Type.Object(
  {
    text: Type.Optional(Text),
    html: Type.Optional(Html),
    replyAll: Type.Optional(Type.Boolean({ default: false, description: 'Reply to the sender and every recipient (but this mailbox).' })),
    attachments: Type.Optional(Attachments),
  },
  { additionalProperties: false },
));

export const ForwardBody = shared('ForwardRequest', Type.Object(
  {
    to: Addresses,
    cc: Type.Optional(Addresses),
    bcc: Type.Optional(Addresses),
    text: Type.Optional(Text),
    html: Type.Optional(Html),
    attachments: Type.Optional(Attachments),
  },
  { additionalProperties: false },
));

export const SendResultSchema = shared('SendResult', Type.Object(
  {
    messageId: Type.Union([Type.String(), Type.Null()], { description: 'The Message-ID of what was sent.' }),
    accepted: Type.Array(Type.String(), { description: 'Recipients the server accepted.' }),
    rejected: Type.Array(Type.String(), { description: 'Recipients the server refused (the message went to the others).' }),
    warnings: Type.Optional(
      Type.Array(Type.String(), { description: 'IMAP/POP3 over SMTP: what failed after the server took the message (the copy in Sent, marking the original answered). The message was sent.' }),
    ),
  }
));

export const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'Makes a retry answer the first result instead of sending again (kept MSB_IDEMPOTENCY_TTL_MS).' }),
  ),
});
