import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { extractAttachment } from '../../src/mime/extract.js';
import { HEADER_MAX_BYTES, MAX_LISTED_ATTACHMENTS, MAX_PARTS } from '../../src/mime/limits.js';
import { decodeTextPart, htmlToText, parseMessage } from '../../src/mime/parse.js';

const MB = 1024 * 1024;
const compose = async (options: Mail.Options): Promise<Buffer> => new MailComposer(options).compile().build();
const parse = (input: Buffer | string, maxBytes = 25 * MB) => parseMessage(input, { maxBytes });

/** A stream of `input` in chunks of `size` bytes, as a socket delivers it. */
function chunked(input: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) parts.push(input.subarray(i, i + size));
  return Readable.from(parts);
}

test('a composed message: headers decoded, text and HTML, attachments with IMAP part numbers, inline image', async () => {
  const pdf = Buffer.alloc(3000, 7);
  const raw = await compose({
    from: 'Jürgen Müller <billing@shop.test>',
    to: 'bot@example.test, Ops <ops@example.test>',
    cc: 'audit@example.test',
    subject: 'Rechnung März – Nr. 42',
    messageId: '<inv-42@shop.test>',
    inReplyTo: '<order-7@example.test>',
    references: ['<order-7@example.test>', '<order-8@example.test>'],
    date: new Date('2026-11-03T09:15:00Z'),
    text: 'Bitte zahlen.',
    html: '<p>Bitte <b>zahlen</b>. <img src="cid:logo@shop"></p>',
    attachments: [
      { filename: 'Rechnung März €.pdf', content: pdf },
      { filename: 'logo.png', content: Buffer.alloc(10, 2), cid: 'logo@shop' },
    ],
  });
  const m = await parse(chunked(raw, 7) as unknown as Buffer);
  assert.equal(m.subject, 'Rechnung März – Nr. 42');
  assert.deepEqual(m.from, { name: 'Jürgen Müller', address: 'billing@shop.test' });
  assert.deepEqual(m.to, [{ name: null, address: 'bot@example.test' }, { name: 'Ops', address: 'ops@example.test' }]);
  assert.deepEqual(m.cc, [{ name: null, address: 'audit@example.test' }]);
  assert.equal(m.messageId, '<inv-42@shop.test>');
  assert.equal(m.inReplyTo, '<order-7@example.test>');
  assert.deepEqual(m.references, ['<order-7@example.test>', '<order-8@example.test>']);
  assert.equal(m.date, '2026-11-03T09:15:00.000Z');
  assert.equal(m.text, 'Bitte zahlen.');
  assert.match(m.html ?? '', /<b>zahlen<\/b>/);
  // the HTML keeps its cid: link (no data: URL of the image inlined)
  assert.match(m.html ?? '', /cid:logo@shop/);
  assert.equal(m.truncated, false);
  const subject = m.headers.find((h) => h.name === 'Subject');
  assert.equal(subject?.value, 'Rechnung März – Nr. 42', 'encoded words are decoded in the header list');
  assert.deepEqual(m.headers.slice(0, 3).map((h) => h.name), ['From', 'To', 'Cc']);
  const byName = Object.fromEntries(m.attachments.map((a) => [a.filename, a]));
  assert.deepEqual(byName['Rechnung März €.pdf'], { partId: '2', filename: 'Rechnung März €.pdf', contentType: 'application/pdf', size: 3000, inline: false, contentId: null });
  assert.deepEqual(byName['logo.png'], { partId: '1.2.2', filename: 'logo.png', contentType: 'image/png', size: 10, inline: true, contentId: 'logo@shop' });
});

test('RFC 2231 and encoded-word file names, a broken charset and a Received date', async () => {
  const raw = [
    'Received: from mx.example.test by mail.example.test; Tue, 03 Nov 2026 10:00:01 +0100',
    'Received: from sender.test by mx.example.test; Tue, 03 Nov 2026 08:59:59 +0000',
    'Subject: =?x-no-such-charset?Q?caf=E9?= and =?utf-8?B?w6k=?=',
    'Date: not a date',
    'Content-Type: multipart/mixed; boundary=b',
    '',
    '--b',
    'Content-Type: text/plain; charset=x-broken-charset',
    '',
    'caf\xe9',
    '--b',
    'Content-Type: application/octet-stream',
    "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20report.csv",
    '',
    'a,b',
    '--b',
    'Content-Type: application/pdf; name="=?utf-8?Q?Pr=C3=BCfung.pdf?="',
    '',
    'x',
    '--b--',
    '',
  ].join('\r\n');
  const m = await parse(Buffer.from(raw, 'latin1'));
  assert.equal(m.receivedAt, '2026-11-03T09:00:01.000Z', 'the topmost Received header');
  assert.equal(m.date, null, 'an unreadable Date header is null, not "now"');
  assert.match(m.subject ?? '', /and é$/);
  assert.match(m.text ?? '', /^caf\uFFFD/, 'an unknown charset decodes as UTF-8 with replacement characters');
  assert.deepEqual(m.attachments.map((a) => [a.partId, a.filename]), [['2', '€ report.csv'], ['3', 'Prüfung.pdf']]);
  assert.equal(m.attachments[0]?.contentType, 'text/csv', 'application/octet-stream takes the type of its file name');
});

test('HTML-only mail gets text derived from the HTML, also beside attachments', async () => {
  for (const attachments of [[], [{ filename: 'a.pdf', content: 'x' }]]) {
    const m = await parse(await compose({ subject: 's', html: '<h1>Invoice</h1><p>Total: <b>42 EUR</b></p>', attachments }));
    assert.match(m.text ?? '', /INVOICE/);
    assert.match(m.text ?? '', /Total: 42 EUR/);
    assert.match(m.html ?? '', /<h1>Invoice<\/h1>/);
  }
  assert.match((await htmlToText('<p>a<br>b</p>')) ?? '', /a\nb/);
  assert.equal(await htmlToText(`<p>${'x'.repeat(3 * MB)}</p>`), null, 'HTML beyond the conversion bound gets no text');
});

test('a message beyond maxBytes is cut there: truncated, with what was read', async () => {
  const raw = await compose({ subject: 'long', text: 'line of text\n'.repeat(20_000), attachments: [{ filename: 'big.bin', content: Buffer.alloc(500_000, 1) }] });
  const m = await parse(raw, 100_000);
  assert.equal(m.truncated, true);
  assert.equal(m.subject, 'long');
  assert.ok((m.text ?? '').length > 50_000 && (m.text ?? '').length < 100_000, `text cut near the limit: ${m.text?.length}`);
  const whole = await parse(raw);
  assert.equal(whole.truncated, false);
  assert.equal(whole.attachments[0]?.size, 500_000);
});

test('a stream past maxBytes is destroyed, not read to its end', async () => {
  let pulled = 0;
  const endless = new Readable({
    read() {
      pulled += 1;
      this.push(pulled === 1 ? Buffer.from('Subject: endless\r\n\r\n') : Buffer.alloc(64 * 1024, 0x61));
    },
  });
  const m = await parseMessage(endless, { maxBytes: MB });
  assert.equal(m.truncated, true);
  assert.equal(m.subject, 'endless');
  assert.ok(endless.destroyed);
  assert.ok(pulled < 40, `read about maxBytes, not more (${pulled} chunks)`);
});

test('hostile: a 50 MB header answers a truncated result with the header lines that fit', async () => {
  const raw = Buffer.concat([
    Buffer.from('Subject: big header\r\nFrom: a@b.test\r\n'),
    Buffer.from(`X-Filler: ${'a'.repeat(50 * MB)}\r\n`),
    Buffer.from('\r\nbody\r\n'),
  ]);
  const m = await parse(chunked(raw, 1 << 20) as unknown as Buffer);
  assert.equal(m.truncated, true);
  assert.equal(m.subject, 'big header');
  assert.deepEqual(m.from, { name: null, address: 'a@b.test' });
  assert.equal(m.headers.some((h) => h.name === 'X-Filler'), false, 'the line that does not fit is left out');
  assert.equal(m.text, null);
  assert.ok(HEADER_MAX_BYTES < 50 * MB);
});

test('hostile: 10,000 parts answer a truncated result, the list bounded', async () => {
  let raw = 'Subject: many parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n';
  for (let i = 0; i < 10_000; i++) raw += `--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f${i}.bin\r\n\r\nx\r\n`;
  raw += '--b--\r\n';
  const m = await parse(Buffer.from(raw));
  assert.equal(m.truncated, true);
  assert.equal(m.subject, 'many parts');
  assert.ok(m.attachments.length <= MAX_LISTED_ATTACHMENTS);
  assert.ok(MAX_PARTS < 10_000, 'the message has more parts than the parser takes');
  // a message with as many parts as listed attachments allows is complete
  let fewer = 'Subject: fewer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n';
  for (let i = 0; i < MAX_LISTED_ATTACHMENTS; i++) fewer += `--b\r\nContent-Type: application/pdf\r\n\r\nx\r\n`;
  const ok = await parse(`${fewer}--b--\r\n`);
  assert.equal(ok.truncated, false);
  assert.equal(ok.attachments.length, MAX_LISTED_ATTACHMENTS);
  assert.equal(ok.text, 'the text');
});

test('hostile: deep message/rfc822 nesting is one attachment; deep multipart nesting is truncated, not a crash', async () => {
  let nested = 'Subject: leaf\r\n\r\nleaf\r\n';
  for (let i = 0; i < 2000; i++) nested = `Subject: level ${i}\r\nContent-Type: message/rfc822\r\n\r\n${nested}`;
  const m = await parse(`From: a@b.test\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nhi\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n${nested}\r\n--o--\r\n`);
  assert.equal(m.subject, 'outer');
  assert.equal(m.text, 'hi');
  assert.deepEqual(m.attachments.map((a) => [a.partId, a.contentType]), [['2', 'message/rfc822']]);
  assert.equal(m.truncated, false);

  let deep = 'leaf\r\n';
  for (let i = 0; i < MAX_PARTS + 100; i++) deep = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${deep}\r\n--b${i}--\r\n`;
  const d = await parse(`Subject: deep\r\n${deep}`);
  assert.equal(d.truncated, true);
  assert.equal(d.subject, 'deep');
});

test('decodeTextPart: transfer encodings, charsets, format=flowed, HTML with derived text, hostile parameters', async () => {
  assert.deepEqual(await decodeTextPart({ type: 'text/plain', charset: 'iso-8859-1', encoding: 'quoted-printable' }, Buffer.from('H=E9llo=\r\n world')), { text: 'Héllo world', html: null });
  assert.equal((await decodeTextPart({ type: 'text/plain', charset: 'utf-8', encoding: 'base64' }, Buffer.from(Buffer.from('Grüße').toString('base64')))).text, 'Grüße');
  // a base64 body cut at a byte limit in the middle of a quantum decodes what is whole
  assert.match((await decodeTextPart({ type: 'text/plain', encoding: 'base64' }, Buffer.from(Buffer.from('abcdefghij').toString('base64').slice(0, 7)))).text ?? '', /^abcd/);
  assert.equal((await decodeTextPart({ type: 'text/plain', format: 'flowed' }, Buffer.from('one \r\ntwo\r\n'))).text, 'one two');
  const html = await decodeTextPart({ type: 'text/html', charset: 'windows-1252', encoding: '7bit' }, Buffer.from('<p>Total <b>42</b></p>'));
  assert.equal(html.html, '<p>Total <b>42</b></p>');
  assert.match(html.text ?? '', /Total 42/);
  // parameters that are not tokens never reach the header line the parser is handed
  const hostile = await decodeTextPart({ type: 'text/plain', charset: 'utf-8"\r\nContent-Type: text/html', encoding: 'base64\r\nX: y' }, Buffer.from('plain <b>'));
  assert.equal(hostile.text, 'plain <b>');
  assert.equal(hostile.html, null);
});

test('extractAttachment streams one attachment byte-exact, skips the others, and says when there is none', async () => {
  const big = Buffer.alloc(3 * MB);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const raw = await compose({
    subject: 'two files',
    text: 'see attached',
    attachments: [{ filename: 'first.bin', content: Buffer.alloc(100_000, 3) }, { filename: 'second.bin', content: big }],
  });
  const found = await extractAttachment(chunked(raw, 16 * 1024), '3', 25 * MB);
  assert.ok(found);
  assert.equal(found.filename, 'second.bin');
  const parts: Buffer[] = [];
  for await (const chunk of found.stream) parts.push(chunk as Buffer);
  assert.ok(Buffer.concat(parts).equals(big));
  assert.equal(await extractAttachment(chunked(raw, 16 * 1024), '9', 25 * MB), undefined);
  // an attachment that starts beyond maxBytesBefore is not found, as a parse cut there would not list it
  assert.equal(await extractAttachment(chunked(raw, 16 * 1024), '3', 50_000), undefined);
});
