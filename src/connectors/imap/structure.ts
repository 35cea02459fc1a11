import type { MessageStructureObject } from 'imapflow';
import type { AttachmentInfo } from '../../domain/mail.js';
import { MAX_LISTED_ATTACHMENTS, MAX_PARTS } from '../../mime/limits.js';

/**
 * What BODYSTRUCTURE tells without fetching a byte of content: which parts are the body text and which are
 * attachments. The rules are mailparser's (src/mime), so IMAP and POP3 call the same parts attachments:
 * a leaf is body text when it is text/plain, text/html or message/delivery-status with no disposition or
 * "inline"; every other leaf is an attachment. Embedded messages (message/rfc822) are one attachment each;
 * nothing inside them is walked, however deep they nest.
 */

/** A body text part and what decoding it needs. */
export interface TextPart {
  /** The section to fetch: "1", "1.2"; "TEXT" for the body of a single-part message. */
  section: string;
  type: 'text/plain' | 'text/html';
  charset: string | undefined;
  encoding: string | undefined;
  format: string | undefined;
  delsp: string | undefined;
  /** Octets as the server holds them (transfer-encoded). */
  size: number;
}

/** An attachment with what a download needs besides its info. */
export interface AttachmentPart extends AttachmentInfo {
  /** Content-Type with the charset of a text part, for the download's header. */
  downloadType: string;
}

export interface MessageStructure {
  text: TextPart[];
  attachments: AttachmentPart[];
  /** More parts or attachments than are listed. */
  truncated: boolean;
}

const TEXT_TYPES = new Set(['text/plain', 'text/html', 'message/delivery-status']);
/** Transfer encodings under which BODYSTRUCTURE's size is the decoded size. */
const IDENTITY = new Set(['', '7bit', '8bit', 'binary']);

/** A MIME type as a Content-Type header can carry it; anything odd becomes application/octet-stream. */
function mimeType(type: string | undefined): string {
  return type && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : 'application/octet-stream';
}

function dispositionOf(node: MessageStructureObject): 'inline' | 'attachment' {
  const given = node.disposition?.toLowerCase();
  if (!given) return TEXT_TYPES.has(node.type) ? 'inline' : 'attachment';
  return given === 'inline' ? 'inline' : 'attachment';
}

export function readStructure(root: MessageStructureObject | undefined): MessageStructure {
  const out: MessageStructure = { text: [], attachments: [], truncated: false };
  if (!root) return out;
  // iterative, depth-first in section order; each entry knows whether a multipart/related holds it
  const stack: { node: MessageStructureObject; related: boolean }[] = [{ node: root, related: false }];
  let seen = 0;
  while (stack.length) {
    const { node, related } = stack.pop()!;
    if (++seen > MAX_PARTS) {
      out.truncated = true;
      break;
    }
    if (node.type.startsWith('multipart/')) {
      const inRelated = related || node.type === 'multipart/related';
      const children = node.childNodes ?? [];
      for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i]!, related: inRelated });
      continue;
    }
    const section = node.part ?? (node === root ? '1' : undefined);
    if (!section) continue;
    const disposition = dispositionOf(node);
    if (TEXT_TYPES.has(node.type) && disposition === 'inline') {
      const params = node.parameters ?? {};
      out.text.push({
        // the body of a single-part message is BODY[TEXT]: not every server answers BODY[1] for it
        section: node === root ? 'TEXT' : section,
        type: node.type === 'text/html' ? 'text/html' : 'text/plain',
        charset: params.charset,
        encoding: node.encoding,
        format: params.format,
        delsp: params.delsp,
        size: node.size ?? 0,
      });
      continue;
    }
    if (out.attachments.length >= MAX_LISTED_ATTACHMENTS) {
      out.truncated = true;
      continue;
    }
    const contentType = mimeType(node.type);
    const charset = node.parameters?.charset;
    const contentId = node.id ? node.id.trim().replace(/^<|>$/g, '') || null : null;
    out.attachments.push({
      id: section,
      filename: node.dispositionParameters?.filename ?? node.parameters?.name ?? null,
      contentType,
      // BODYSTRUCTURE gives the transfer-encoded size: the decoded size of a base64 or quoted-printable part
      // is not known without downloading it
      size: IDENTITY.has(node.encoding ?? '') && node.size !== undefined ? node.size : null,
      inline: node.disposition?.toLowerCase() === 'inline' || (related && contentId !== null),
      contentId,
      downloadType: contentType.startsWith('text/') && charset && /^[A-Za-z0-9._:+-]{1,64}$/.test(charset) ? `${contentType}; charset=${charset}` : contentType,
    });
  }
  return out;
}

/** The text part a list with include=text shows: the first plain text, else the first HTML. */
export function previewPart(structure: MessageStructure): TextPart | undefined {
  return structure.text.find((t) => t.type === 'text/plain') ?? structure.text[0];
}

/** The summary's view of an attachment (without what only a download needs). */
export function attachmentInfo({ downloadType: _, ...info }: AttachmentPart): AttachmentInfo {
  return info;
}
