import addressparser from 'nodemailer/lib/addressparser';
import type { MailAddress, MessageDetail, Recipient } from '../../domain/mail.js';
import { firstField } from '../../mime/headers.js';

/**
 * How a reply and a forward are made from the original, in plain functions: the subject without stacked
 * prefixes, whom a reply goes to, the threading headers and the quoted original. The message itself is
 * composed by nodemailer (sender.ts), which encodes every header: nothing here is put into a header as text.
 */

const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+$/;
/** Prefixes that already say "reply" / "forward" (English, German, Nordic, Dutch), so none is stacked on them. */
const REPLY_PREFIX = /^\s*(re|aw|sv|antw)\s*(\[\d+\])?\s*:/i;
const FORWARD_PREFIX = /^\s*(fw|fwd|wg|vs|doorst)\s*:/i;
/** References kept at most: the first (thread root) and the latest ones (RFC 5322 3.6.4 lets a client shorten it). */
const MAX_REFERENCES = 20;

export function replySubject(subject: string | null): string {
  const s = subject ?? '';
  return REPLY_PREFIX.test(s) ? s : `Re: ${s}`;
}

export function forwardSubject(subject: string | null): string {
  const s = subject ?? '';
  return FORWARD_PREFIX.test(s) ? s : `Fw: ${s}`;
}

function recipientOf(a: MailAddress | null | undefined): Recipient | undefined {
  return a?.address && ADDRESS.test(a.address) ? { name: a.name ?? '', address: a.address } : undefined;
}

/** The Reply-To header's addresses (decoded header text, parsed again). */
function replyTo(original: MessageDetail): Recipient[] {
  const value = firstField(original.headers, 'reply-to');
  if (!value) return [];
  const parsed = addressparser(value, { flatten: true }) as { name?: string; address?: string }[];
  return parsed.map((p) => recipientOf({ name: p.name || null, address: p.address ?? null })).filter((r): r is Recipient => r !== undefined);
}

/**
 * Whom a reply goes to: Reply-To, else From; with replyAll also the original's To and Cc (in Cc), never
 * this mailbox's own addresses and never one address twice.
 */
export function replyRecipients(original: MessageDetail, replyAll: boolean, own: readonly string[]): { to: Recipient[]; cc: Recipient[] } {
  const mine = new Set(own.map((a) => a.toLowerCase()));
  const taken = new Set<string>();
  const take = (list: (Recipient | undefined)[]) =>
    list.filter((r): r is Recipient => {
      const key = r?.address.toLowerCase();
      if (key === undefined || mine.has(key) || taken.has(key)) return false;
      taken.add(key);
      return true;
    });
  const first = replyTo(original);
  const to = take(first.length > 0 ? first : [recipientOf(original.from)]);
  const others = replyAll || to.length === 0 ? take([...original.to, ...(replyAll ? original.cc : [])].map(recipientOf)) : [];
  // a reply to one's own message goes to whom it was sent to
  return to.length > 0 ? { to, cc: others } : { to: others, cc: [] };
}

/** In-Reply-To and References of a reply (RFC 5322 3.6.4): the original's references and its own Message-ID. */
export function threading(original: MessageDetail): { inReplyTo?: string; references?: string[] } {
  const id = original.messageId;
  const refs = [...original.references, ...(id ? [id] : [])].filter((r, i, all) => all.indexOf(r) === i);
  const kept = refs.length > MAX_REFERENCES ? [refs[0]!, ...refs.slice(-(MAX_REFERENCES - 1))] : refs;
  return { ...(id ? { inReplyTo: id } : {}), ...(kept.length > 0 ? { references: kept } : {}) };
}

export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

function shown(a: MailAddress | null): string {
  if (!a) return '';
  return a.name && a.address ? `${a.name} <${a.address}>` : (a.address ?? a.name ?? '');
}

function shownList(list: readonly MailAddress[]): string {
  return list.map(shown).filter(Boolean).join(', ');
}

/** The original's body for quoting: what is inside <body> of its HTML, else its text escaped with the line breaks kept. */
function originalHtml(original: MessageDetail): string {
  if (original.html !== null) return /<body[^>]*>([\s\S]*)<\/body>/i.exec(original.html)?.[1] ?? original.html;
  return escapeHtml(original.text ?? '').replace(/\r?\n/g, '<br>\n');
}

function attribution(original: MessageDetail): string {
  const who = shown(original.from) || 'the sender';
  return original.date ? `On ${original.date}, ${who} wrote:` : `${who} wrote:`;
}

/** The new text above the original, each line of which is quoted with "> ". */
export function quotedText(text: string | null, original: MessageDetail): string {
  const quoted = (original.text ?? '').replace(/\r?\n$/, '').split(/\r?\n/).map((line) => (line ? `> ${line}` : '>')).join('\n');
  return `${text ?? ''}\n\n${attribution(original)}\n${quoted}\n`;
}

export function quotedHtml(html: string, original: MessageDetail): string {
  return `${html}\n<br>\n<div>${escapeHtml(attribution(original))}</div>\n<blockquote type="cite" style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">\n${originalHtml(original)}\n</blockquote>\n`;
}

function forwardFields(original: MessageDetail): [string, string][] {
  const fields: [string, string][] = [
    ['From', shown(original.from)],
    ['Date', original.date ?? ''],
    ['Subject', original.subject ?? ''],
    ['To', shownList(original.to)],
    ['Cc', shownList(original.cc)],
  ];
  return fields.filter(([, value]) => value !== '');
}

const FORWARDED = '---------- Forwarded message ---------';

/** The new text, then the original's header fields and its text, as mail clients forward inline. */
export function forwardedText(text: string | null, original: MessageDetail): string {
  const fields = forwardFields(original).map(([name, value]) => `${name}: ${value}`).join('\n');
  return `${text ?? ''}\n\n${FORWARDED}\n${fields}\n\n${original.text ?? ''}`;
}

export function forwardedHtml(html: string, original: MessageDetail): string {
  const fields = forwardFields(original).map(([name, value]) => `${name}: ${escapeHtml(value)}<br>`).join('\n');
  return `${html}\n<br>\n<div>${FORWARDED}<br>\n${fields}</div>\n<br>\n${originalHtml(original)}\n`;
}
