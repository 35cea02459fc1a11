import { once } from 'node:events';
import { Readable } from 'node:stream';
import { MailParser, type AttachmentStream, type HeaderLines, type Headers, type MailParserOptions, type MessageText } from 'mailparser';
import type { MailAddress } from '../domain/mail.js';
import { addressList, firstField, headerFields, isoDate, receivedDate, references, stringHeader, type HeaderField } from './headers.js';
import { HEADER_MAX_BYTES, HTML_TO_TEXT_MAX_CHARS, MAX_LISTED_ATTACHMENTS, MAX_PARTS } from './limits.js';

/** An attachment as parsing finds it; `partId` is the IMAP-style section number ("2", "1.2"), "1" for a single-part message. */
export interface MimeAttachment {
  partId: string;
  filename: string | null;
  contentType: string;
  /** Decoded bytes; null when parsing stopped before the part ended. */
  size: number | null;
  inline: boolean;
  contentId: string | null;
}

/** What a message says about itself, from as much of it as the limits allowed. */
export interface ParsedMessage {
  headers: HeaderField[];
  subject: string | null;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  /** The Date header. */
  date: string | null;
  /** The topmost Received header's date. */
  receivedAt: string | null;
  text: string | null;
  html: string | null;
  attachments: MimeAttachment[];
  /** Set when the message was larger than `maxBytes`, or had more parts or a larger header than the parser takes. */
  truncated: boolean;
}

export interface ParseOptions {
  /** Bytes read at most (MSB_PARSE_MAX_BYTES); a longer input is cut there and the result is truncated. */
  maxBytes: number;
}

/**
 * mailparser, told to keep what it buffers bounded: embedded messages stay one attachment each (no descent into
 * nested message/rfc822, however deep), no HTML made from text, no cid: links inlined, no checksums.
 */
const PARSER_OPTIONS: MailParserOptions = {
  skipTextToHtml: true,
  skipTextLinks: true,
  skipImageLinks: true,
  ignoreEmbedded: true,
  checksumAlgo: false,
  maxHeadSize: HEADER_MAX_BYTES,
  maxChildNodes: MAX_PARTS,
  maxHtmlLengthToParse: HTML_TO_TEXT_MAX_CHARS,
};

interface RawOutcome {
  headers: Headers | undefined;
  lines: HeaderLines | undefined;
  text: MessageText | undefined;
  attachments: MimeAttachment[];
  /** More input than maxBytes, more attachments than listed, or the parser gave up (EMAXLEN: header or parts). */
  truncated: boolean;
  failed: boolean;
  /** The first HEADER_MAX_BYTES of the input, for reading the header alone when the parser refused it. */
  head: Buffer;
}

function toReadable(input: Readable | Buffer | string): Readable {
  return typeof input === 'string' || Buffer.isBuffer(input) ? Readable.from([Buffer.from(input)]) : input;
}

/** Feeds at most maxBytes of `input` to one MailParser and collects what it emits. */
async function runParser(input: Readable | Buffer | string, maxBytes: number): Promise<RawOutcome> {
  const parser = new MailParser(PARSER_OPTIONS);
  const out: RawOutcome = { headers: undefined, lines: undefined, text: undefined, attachments: [], truncated: false, failed: false, head: Buffer.alloc(0) };
  let cut = false;
  const finished = new Promise<void>((resolve) => {
    parser.once('end', resolve);
    parser.once('error', () => {
      out.failed = true;
      resolve();
    });
  });
  parser.on('headers', (headers: Headers) => (out.headers ??= headers));
  parser.on('headerLines', (lines: HeaderLines) => (out.lines ??= lines));
  parser.on('data', (data: AttachmentStream | MessageText) => {
    if (data.type === 'text') {
      out.text = data;
      return;
    }
    const listed = out.attachments.length < MAX_LISTED_ATTACHMENTS;
    if (!listed) out.truncated = true;
    const entry: MimeAttachment = {
      partId: data.partId ?? '1',
      filename: data.filename ?? null,
      contentType: data.contentType,
      size: null,
      // an image shown in the body: Content-Disposition inline, or referenced by Content-ID from multipart/related
      inline: data.contentDisposition === 'inline' || data.related === true,
      contentId: data.contentId ? data.contentId.trim().replace(/^<|>$/g, '') : null,
    };
    if (listed) out.attachments.push(entry);
    let size = 0;
    data.content.on('data', (chunk: Buffer) => (size += chunk.length));
    data.content.once('end', () => {
      // a part still open when the input was cut has no known size
      if (!cut) entry.size = size;
      data.release?.();
    });
    data.content.once('error', () => data.release?.());
  });

  const source = toReadable(input);
  let read = 0;
  const headParts: Buffer[] = [];
  let headLength = 0;
  const write = async (chunk: Buffer) => {
    if (headLength < HEADER_MAX_BYTES) {
      const part = chunk.subarray(0, HEADER_MAX_BYTES - headLength);
      headParts.push(part);
      headLength += part.length;
    }
    // a parser that failed takes no more input and will never drain: `finished` ends the wait
    if (!parser.write(chunk)) await Promise.race([once(parser, 'drain').catch(() => undefined), finished]);
  };
  try {
    for await (const data of source) {
      if (out.failed) break;
      const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data as string);
      const room = maxBytes - read;
      if (chunk.length > room) {
        // at the limit: what was read is parsed as if the message ended there
        out.truncated = true;
        if (room > 0) await write(chunk.subarray(0, room));
        read = maxBytes;
        break;
      }
      read += chunk.length;
      await write(chunk);
    }
  } finally {
    // stops a stream that is still flowing (a POP3 RETR past the limit): its owner closes the connection
    if (!source.readableEnded) source.destroy();
  }
  cut = out.truncated;
  if (!out.failed) parser.end();
  await finished;
  out.head = Buffer.concat(headParts);
  if (out.failed) out.truncated = true;
  return out;
}

/**
 * Reads the header block alone from the first HEADER_MAX_BYTES of a message whose header the parser refused
 * (a 50 MB header): the complete lines that fit, as a header-only message.
 */
async function headerOnly(head: Buffer): Promise<RawOutcome | undefined> {
  const end = head.lastIndexOf('\n');
  if (end < 0) return undefined;
  const outcome = await runParser(Buffer.concat([head.subarray(0, end + 1), Buffer.from('\r\n')]), HEADER_MAX_BYTES + 2);
  return outcome.lines ? outcome : undefined;
}

/**
 * Plain text from HTML (for a message with only HTML), through mailparser's own conversion, which bounds the
 * HTML's length (HTML_TO_TEXT_MAX_CHARS) and nesting depth. null when the HTML is beyond those bounds.
 */
export async function htmlToText(html: string): Promise<string | null> {
  if (html.length > HTML_TO_TEXT_MAX_CHARS) return null;
  const entity = Buffer.concat([Buffer.from('Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'), Buffer.from(html, 'utf8')]);
  const outcome = await runParser(entity, entity.length + 1);
  return outcome.text?.textConversionError ? null : (outcome.text?.text ?? null);
}

/** `text` and `html` of a parse: plain text derived from the HTML where the message has none. */
async function bodies(text: MessageText | undefined): Promise<{ text: string | null; html: string | null }> {
  const html = text?.html || null;
  // mailparser converted the HTML itself where it could; an HTML it refused (too long, too deep) stays without text
  if (text?.textConversionError) return { text: null, html };
  let plain = text?.text || null;
  if (plain === null && html !== null) plain = await htmlToText(html);
  return { text: plain, html };
}

/**
 * Parses a message (a stream, e.g. a POP3 RETR, or bytes) with mailparser, reading at most `maxBytes` of it.
 * Hostile mail gets a truncated result, never an exception or an unbounded buffer: a header over
 * HEADER_MAX_BYTES keeps the lines that fit, more than MAX_PARTS parts keep the attachments seen so far,
 * nested messages are single attachments, broken charsets decode as UTF-8 with replacement characters.
 * Rejects only when `input` itself fails (a dropped connection).
 */
export async function parseMessage(input: Readable | Buffer | string, options: ParseOptions): Promise<ParsedMessage> {
  let outcome = await runParser(input, options.maxBytes);
  const { truncated } = outcome;
  if (!outcome.lines) outcome = (await headerOnly(outcome.head)) ?? outcome;
  const fields = headerFields(outcome.lines ?? []);
  const headers: Headers = outcome.headers ?? new Map();
  const from = addressList(headers.get('from'));
  const { text, html } = await bodies(outcome.text);
  return {
    headers: fields,
    subject: stringHeader(headers, 'subject'),
    messageId: stringHeader(headers, 'message-id'),
    inReplyTo: stringHeader(headers, 'in-reply-to'),
    references: references(headers),
    from: from[0] ?? null,
    to: addressList(headers.get('to')),
    cc: addressList(headers.get('cc')),
    // mailparser puts "now" in place of a Date header it cannot read: the raw field tells the truth
    date: isoDate(firstField(fields, 'date')),
    receivedAt: receivedDate(fields),
    text,
    html,
    attachments: outcome.attachments,
    truncated: truncated || outcome.truncated,
  };
}

/** How a text part of a message is encoded, as IMAP's BODYSTRUCTURE tells it. */
export interface TextPartMeta {
  /** text/plain, text/html (anything else is read as text/plain). */
  type: string;
  charset?: string | undefined;
  /** Content-Transfer-Encoding. */
  encoding?: string | undefined;
  format?: string | undefined;
  delsp?: string | undefined;
}

async function* prepend(head: Buffer, body: Readable): AsyncGenerator<Buffer> {
  yield head;
  for await (const chunk of body) yield chunk as Buffer;
}

/** A header parameter value that may go into a header line as a token; anything else is left out. */
const token = (value: string | undefined): string | undefined => (value && /^[A-Za-z0-9._:+-]{1,64}$/.test(value) ? value : undefined);

/**
 * Decodes one text part fetched on its own (IMAP BODY[n], maybe cut at a byte limit): transfer encoding,
 * charset and format=flowed, by handing mailparser the part as a message of its own with the MIME headers
 * rebuilt from `meta`, so IMAP and POP3 decode alike. An HTML part also gets `text` derived from it.
 */
export async function decodeTextPart(meta: TextPartMeta, body: Buffer | Readable): Promise<{ text: string | null; html: string | null }> {
  const type = meta.type === 'text/html' ? 'text/html' : 'text/plain';
  const params = [
    type,
    token(meta.charset) ? `charset="${token(meta.charset)}"` : undefined,
    token(meta.format) ? `format=${token(meta.format)}` : undefined,
    token(meta.delsp) ? `delsp=${token(meta.delsp)}` : undefined,
  ].filter((p): p is string => p !== undefined);
  const encoding = token(meta.encoding) ?? '8bit';
  const head = Buffer.from(`Content-Type: ${params.join('; ')}\r\nContent-Transfer-Encoding: ${encoding}\r\n\r\n`);
  // a stream of the two, so that a text part of megabytes is not copied once more; the caller bounded `body`
  const input = Buffer.isBuffer(body) ? Readable.from([head, body]) : Readable.from(prepend(head, body));
  const outcome = await runParser(input, Number.MAX_SAFE_INTEGER);
  return bodies(outcome.text);
}
