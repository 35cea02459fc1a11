import type { FetchMessageObject, ImapFlow } from 'imapflow';
import type { AttachmentInfo, MessageDetail } from '../../domain/mail.js';
import { AppError } from '../../errors.js';
import { LIST_TEXT_MAX_BYTES } from '../../mime/limits.js';
import { decodeTextPart, parseMessage } from '../../mime/parse.js';
import { attachmentInfo, previewPart, readStructure, type MessageStructure, type TextPart } from './structure.js';

/**
 * What a message says, read from the server as cheaply as it allows: the body text parts by section (BODY.PEEK,
 * never \Seen), decoded through src/mime, never the attachments; include=text previews for a page.
 */

/** One imapflow call under the reader's command deadline (ImapReader's #cmd). */
export type Run = <T>(what: string, fn: (client: ImapFlow) => Promise<T>) => Promise<T>;

/**
 * Bytes per FETCH of a download (imapflow's default is 64 KiB). Each chunk is one round trip, so larger ones stream
 * faster (256 KiB about 1.5-2 times here), but every chunk leaves its literal, its base64 text and its decoded bytes
 * to the garbage collector: streaming 100 MB, the service's RSS peaked about 40 MB above rest with 256 KiB (16 MB
 * with 64 KiB, 50-90 MB with 1 MiB), while what stays live is about 1 MB (bench/mail-read.ts). FETCH BINARY, which
 * spares the base64 decoding, was slower still: Dovecot decodes the part from its start for every partial fetch.
 */
export const DOWNLOAD_CHUNK = 256 * 1024;
/**
 * Text parts up to this size are fetched together in one FETCH; a larger one streams into the parser in chunks of
 * this size (its decoded text is held anyway, so larger chunks cost little memory and save round trips).
 */
const TEXT_CHUNK = 1024 * 1024;

export const notFound = () => new AppError('MESSAGE_NOT_FOUND', 'no message with this id in this session (it was moved or deleted, or its folder was re-created)');

/** The detail's fields beyond the summary, and its attachments. */
export type Content = Pick<MessageDetail, 'text' | 'html' | 'headers' | 'inReplyTo' | 'references' | 'truncated'> & { attachments: AttachmentInfo[] };

/** The detail's content from the header (fetched with the summary, at most `headerMax` bytes) and the body text parts BODYSTRUCTURE names. */
export async function contentByParts(run: Run, client: ImapFlow, row: FetchMessageObject, headerMax: number, parseMax: number): Promise<Content> {
  const structure = readStructure(row.bodyStructure);
  const headerBytes = row.headers ?? Buffer.alloc(0);
  // a header block is complete when it ends with its blank line
  const headerComplete = /\r?\n\r?\n$/.test(headerBytes.subarray(-4).toString('latin1'));
  const header = headerComplete ? headerBytes : Buffer.concat([headerBytes.subarray(0, headerBytes.lastIndexOf('\n') + 1), Buffer.from('\r\n')]);
  const parsed = await parseMessage(header, { maxBytes: headerMax + 2 });
  const body = await bodies(run, client, row.uid, structure, parseMax - headerBytes.length);
  return {
    text: body.text,
    html: body.html,
    headers: parsed.headers,
    inReplyTo: row.envelope?.inReplyTo || null,
    references: parsed.references,
    truncated: !headerComplete || body.truncated || structure.truncated,
    attachments: structure.attachments.map(attachmentInfo),
  };
}

/**
 * The detail's content when the server's BODYSTRUCTURE could not be read (imapflow refuses one nested past its
 * depth limit): the first `parseMax` bytes of the message, parsed as POP3 parses, whose part ids are the same
 * section numbers.
 */
export async function contentOfWhole(run: Run, client: ImapFlow, row: FetchMessageObject, parseMax: number): Promise<Content> {
  const result = await run('FETCH', () => client.download(String(row.uid), undefined, { uid: true, maxBytes: parseMax, chunkSize: DOWNLOAD_CHUNK }));
  if (!('content' in result) || !result.content) throw notFound();
  const parsed = await parseMessage(result.content, { maxBytes: parseMax });
  return {
    text: parsed.text,
    html: parsed.html,
    headers: parsed.headers,
    inReplyTo: row.envelope?.inReplyTo || parsed.inReplyTo,
    references: parsed.references,
    truncated: parsed.truncated || (row.size ?? 0) > parseMax,
    attachments: parsed.attachments.map((a) => ({ id: a.partId, filename: a.filename, contentType: a.contentType, size: a.size, inline: a.inline, contentId: a.contentId })),
  };
}

/** include=text: the first LIST_TEXT_MAX_BYTES of each message's text part, one FETCH per distinct part number. */
export async function previews(run: Run, client: ImapFlow, structures: Map<number, MessageStructure>): Promise<Map<number, string | null>> {
  const bySection = new Map<string, { uid: number; part: TextPart }[]>();
  for (const [uid, structure] of structures) {
    const part = previewPart(structure);
    if (part) bySection.set(part.section, [...(bySection.get(part.section) ?? []), { uid, part }]);
  }
  const out = new Map<number, string | null>();
  for (const [section, entries] of bySection) {
    const rows = await run('FETCH', () =>
      client.fetchAll(entries.map((e) => e.uid), { uid: true, bodyParts: [{ key: section, start: 0, maxLength: LIST_TEXT_MAX_BYTES }] }, { uid: true }),
    );
    const parts = new Map(entries.map((e) => [e.uid, e.part]));
    for (const row of rows) {
      const bytes = row.bodyParts?.get(section.toLowerCase()) ?? row.bodyParts?.get(section);
      const part = parts.get(row.uid);
      if (bytes && part) out.set(row.uid, (await decodeTextPart(part, bytes)).text);
    }
  }
  return out;
}

/**
 * The message's text and HTML: its body text parts within `budget` bytes (what MSB_PARSE_MAX_BYTES leaves after
 * the header), given to the parts in order; small parts in one FETCH, a large one streamed in chunks into the
 * parser, so that imapflow never holds it whole.
 */
async function bodies(run: Run, client: ImapFlow, uid: number, structure: MessageStructure, budget: number): Promise<{ text: string | null; html: string | null; truncated: boolean }> {
  const wanted: { part: TextPart; bytes: number }[] = [];
  let left = Math.max(0, budget);
  let truncated = false;
  for (const part of structure.text) {
    const bytes = Math.min(part.size, left);
    left -= bytes;
    if (bytes < part.size) truncated = true;
    if (bytes > 0) wanted.push({ part, bytes });
  }
  if (!wanted.length) return { text: null, html: null, truncated };
  const small = wanted.filter((w) => w.bytes <= TEXT_CHUNK);
  const row = small.length
    ? await run('FETCH', () => client.fetchOne(String(uid), { uid: true, bodyParts: small.map((w) => ({ key: w.part.section, start: 0, maxLength: w.bytes })) }, { uid: true }))
    : undefined;
  if (row === false) throw notFound();
  const plain: string[] = [];
  const html: string[] = [];
  const derived: string[] = [];
  for (const { part, bytes } of wanted) {
    let decoded: { text: string | null; html: string | null };
    if (bytes <= TEXT_CHUNK) {
      const body = row?.bodyParts?.get(part.section.toLowerCase()) ?? row?.bodyParts?.get(part.section);
      if (!body) continue;
      decoded = await decodeTextPart(part, body);
    } else {
      // download() removes the transfer encoding itself (decodeText: false leaves charset and format=flowed to the parser)
      const result = await run('FETCH', () => client.download(String(uid), part.section, { uid: true, decodeText: false, maxBytes: bytes, chunkSize: TEXT_CHUNK }));
      if (!('content' in result) || !result.content) continue;
      decoded = await decodeTextPart({ ...part, encoding: 'binary' }, result.content);
    }
    if (part.type === 'text/html') {
      if (decoded.html !== null) html.push(decoded.html);
      if (decoded.text !== null) derived.push(decoded.text);
    } else if (decoded.text !== null) {
      plain.push(decoded.text);
    }
  }
  // as mailparser joins them (src/mime): plain text parts with "\n", HTML parts with "<br/>"; text from HTML only without plain text
  const text = plain.length ? plain.join('\n') : derived.length ? derived.join('\n') : null;
  return { text, html: html.length ? html.join('<br/>\n') : null, truncated };
}
