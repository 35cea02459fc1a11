import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { compose } from '../harness/compose.js';
import { USERS, assertNoSecrets, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { all, attr, first, parseSoap, textOf } from '../harness/fake-ews-mail.js';
import type { FakeMailbox, FakeMessage } from '../harness/fake-ews-store.js';
import { encodeId } from '../../src/domain/mail.js';

const addressList = (a: AddressObject | AddressObject[] | undefined) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => [v.name, v.address]));

/** An EWS answer of one item refused inside an HTTP 200, as Exchange gives it. */
function refusal(operation: string, code: string): string {
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:${operation}Response xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:${operation}ResponseMessage ResponseClass="Error"><m:MessageText>refused by the test</m:MessageText><m:ResponseCode>${code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:${operation}ResponseMessage></m:ResponseMessages></m:${operation}Response></s:Body></s:Envelope>`;
}

/** Sending mail through EWS sessions, over HTTP, against the fake's SOAP: the requests on the wire and what Exchange "sent". */
describe('EWS sessions: sending mail', () => {
  let world: EwsWorld;
  let box: FakeMailbox;
  let app: TestApp['app'];
  let logs: string[];
  const BODY_MARKER = `body-marker-${randomBytes(6).toString('hex')}`;
  const pdf = randomBytes(200_000);
  const png = randomBytes(3_000);
  let original: FakeMessage;
  const closers: (() => Promise<void>)[] = [];

  const post = (url: string, payload: unknown, session = 'ews-send', headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/v1/sessions/${session}${url}`, payload: payload as object, headers });
  const sent = (from: number, operation: string) =>
    world.ews.requests.slice(from).map((r) => ({ xml: r.body, soap: parseSoap(r.body) })).filter((r) => r.soap?.operation === operation).map((r) => ({ xml: r.xml, node: r.soap!.node }));
  const operations = (from: number) => world.ews.requests.slice(from).map((r) => parseSoap(r.body)?.operation);
  const inFolder = (key: string) => box.messages.filter((m) => m.folderId === box.folder(key).id);
  /** The message Exchange sent last, as MIME parsed by an independent parser. */
  const lastSent = async (): Promise<{ mail: ParsedMail; record: FakeMailbox['sent'][number] }> => {
    const record = box.sent.at(-1)!;
    return { mail: await simpleParser(record.mime), record };
  };
  const createSession = async (name: string, exchangeVersion?: string) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name, type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' }, ...(exchangeVersion ? { exchangeVersion } : {}) },
    });
    assert.equal(res.statusCode, 201, res.body);
  };

  before(async () => {
    world = await startEwsWorld();
    box = world.ews.store(USERS.alice.name);
    original = await box.addMessage(
      'inbox',
      await compose({
        from: 'Bob Billing <billing@vendor.test>',
        to: [USERS.alice.name, 'Team <team@contoso.test>'],
        cc: 'Carol <carol@contoso.test>',
        subject: 'Invoice 4711',
        messageId: '<invoice-4711@vendor.test>',
        text: `Please find the invoice attached. ${BODY_MARKER}`,
        attachments: [{ filename: 'invoice-4711.pdf', content: pdf, contentType: 'application/pdf' }],
      }),
    );
    ({ app, logs } = await build({ after: (fn) => void closers.push(fn as () => Promise<void>) }, { ...world.env, MSB_WATCH_INTERVAL_MS: '0' }));
    await createSession('ews-send');
    await createSession('e2010', 'Exchange2010');
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  test('send: one CreateItem with SendAndSaveCopy to Sent Items, parsed recipients, the HTML body, attachments as FileAttachment', async () => {
    const from = world.ews.requests.length;
    const res = await post('/send', {
      to: ['"Doe, Jane" <jane@example.test>', USERS.bob.name],
      cc: 'Ops <ops@example.test>',
      bcc: ['audit@example.test'],
      subject: 'Zahlungsbestätigung März & "Q1" <final>',
      text: `plain ${BODY_MARKER}`,
      html: `<p>HTML&nbsp;${BODY_MARKER} &amp; R&D</p>`,
      attachments: [
        { filename: 'Rechnung März.pdf', contentType: 'application/pdf', content: pdf.toString('base64') },
        { filename: 'logo.png', content: png.toString('base64') },
      ],
    });
    assert.equal(res.statusCode, 201, res.body);
    const { mail, record } = await lastSent();
    assert.deepEqual(res.json(), {
      messageId: mail.messageId,
      accepted: ['jane@example.test', USERS.bob.name, 'ops@example.test', 'audit@example.test'],
      rejected: [],
    });
    assert.match(res.json().messageId, /^<.+@.+>$/, 'the Message-ID of the copy in Sent Items');

    // the wire: one CreateItem, nothing saved as a draft first
    assert.deepEqual(operations(from).filter((o) => o !== 'FindItem'), ['CreateItem']);
    const create = sent(from, 'CreateItem')[0]!.node;
    assert.equal(attr(create, 'MessageDisposition'), 'SendAndSaveCopy');
    assert.equal(attr(first(first(create, 'SavedItemFolderId'), 'DistinguishedFolderId'), 'Id'), 'sentitems');
    const message = first(first(create, 'Items'), 'Message')!;
    assert.equal(textOf(first(message, 'Subject')), 'Zahlungsbestätigung März & "Q1" <final>', 'escaped on the wire (the library writes strings as they are)');
    const mailboxes = (list: string) => all(first(message, list), 'Mailbox').map((m) => [textOf(first(m, 'Name')), textOf(first(m, 'EmailAddress'))]);
    assert.deepEqual(mailboxes('ToRecipients'), [['Doe, Jane', 'jane@example.test'], ['', USERS.bob.name]], 'each recipient its own Mailbox, the name apart from the address');
    assert.deepEqual(mailboxes('CcRecipients'), [['Ops', 'ops@example.test']]);
    assert.deepEqual(mailboxes('BccRecipients'), [['', 'audit@example.test']]);
    const body = first(message, 'Body');
    assert.equal(attr(body, 'BodyType'), 'HTML', 'given text and HTML, EWS takes the HTML');
    assert.equal(textOf(body), `<p>HTML&nbsp;${BODY_MARKER} &amp; R&D</p>`);
    const files = all(first(message, 'Attachments'), 'FileAttachment');
    assert.deepEqual(files.map((f) => [textOf(first(f, 'Name')), textOf(first(f, 'ContentType'))]), [['Rechnung März.pdf', 'application/pdf'], ['logo.png', '']].map(([n, t]) => [n, t || textOf(first(files[1], 'ContentType'))]));
    assert.ok(Buffer.from(textOf(first(files[0], 'Content')), 'base64').equals(pdf), 'the attachment bytes on the wire');

    // what Exchange sent and kept
    assert.deepEqual(addressList(mail.to), [['Doe, Jane', 'jane@example.test'], ['', USERS.bob.name]]);
    assert.deepEqual(addressList(mail.cc), [['Ops', 'ops@example.test']]);
    assert.equal(mail.subject, 'Zahlungsbestätigung März & "Q1" <final>');
    assert.ok(String(mail.html).includes(`<p>HTML&nbsp;${BODY_MARKER} &amp; R&D</p>`));
    assert.ok(mail.attachments.find((a) => a.filename === 'Rechnung März.pdf')!.content.equals(pdf));
    assert.ok(mail.attachments.find((a) => a.filename === 'logo.png')!.content.equals(png));
    assert.deepEqual(record.bcc.map((b) => b.address), ['audit@example.test']);
    assert.equal(record.copy?.folderId, box.folder('sentitems').id, 'the copy is in Sent Items');
    assert.equal(record.copy?.messageId, res.json().messageId);
    const bobs = world.ews.store(USERS.bob.name).messages.filter((m) => m.subject === 'Zahlungsbestätigung März & "Q1" <final>');
    assert.equal(bobs.length, 1, 'delivered to the recipient mailbox');
  });

  test('send text only: a Text body; the same Idempotency-Key twice sends once', async () => {
    const before = box.sent.length;
    const from = world.ews.requests.length;
    const payload = { to: 'someone@example.test', subject: 'plain', text: `only text ${BODY_MARKER}` };
    const first_ = await post('/send', payload, 'ews-send', { 'idempotency-key': 'send-once-1' });
    const again = await post('/send', payload, 'ews-send', { 'idempotency-key': 'send-once-1' });
    assert.equal(first_.statusCode, 201, first_.body);
    assert.deepEqual(again.json(), first_.json());
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(box.sent.length, before + 1, 'sent once');
    const body = first(first(first(sent(from, 'CreateItem')[0]!.node, 'Items'), 'Message'), 'Body');
    assert.equal(attr(body, 'BodyType'), 'Text');
    assert.equal(textOf(body), `only text ${BODY_MARKER}`);
  });

  test('send with attachments before Exchange 2010 SP2: saved as a draft, attachments added, then sent; no draft stays', async () => {
    const from = world.ews.requests.length;
    const res = await post('/send', { to: 'old@example.test', subject: 'from 2010', text: 'x', attachments: [{ filename: 'a.pdf', content: pdf.toString('base64') }] }, 'e2010');
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(operations(from).filter((o) => o !== 'FindItem'), ['CreateItem', 'CreateAttachment', 'SendItem']);
    assert.equal(attr(sent(from, 'CreateItem')[0]!.node, 'MessageDisposition'), 'SaveOnly');
    assert.equal(first(first(first(sent(from, 'CreateItem')[0]!.node, 'Items'), 'Message'), 'Attachments'), undefined, 'no attachments inside CreateItem before 2010 SP2');
    const send = sent(from, 'SendItem')[0]!.node;
    assert.equal(attr(first(first(send, 'SavedItemFolderId'), 'DistinguishedFolderId'), 'Id'), 'sentitems');
    const { mail } = await lastSent();
    assert.ok(mail.attachments[0]!.content.equals(pdf));
    assert.equal(res.json().messageId, mail.messageId);
    assert.equal(inFolder('drafts').length, 0, 'the draft left Drafts when it was sent');
  });

  test('reply: CreateItem with ReplyToItem naming the original and NewBodyContent; Exchange threads, quotes and marks the original answered', async () => {
    const from = world.ews.requests.length;
    const res = await post(`/messages/${encodeId(original.id)}/reply`, { text: `Thanks, paid. ${BODY_MARKER}` });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json(), { messageId: null, accepted: ['billing@vendor.test'], rejected: [] });
    const create = sent(from, 'CreateItem')[0]!.node;
    assert.equal(attr(create, 'MessageDisposition'), 'SendAndSaveCopy');
    assert.equal(attr(first(first(create, 'SavedItemFolderId'), 'DistinguishedFolderId'), 'Id'), 'sentitems');
    const reply = first(first(create, 'Items'), 'ReplyToItem')!;
    assert.equal(attr(first(reply, 'ReferenceItemId'), 'Id'), original.id);
    assert.equal(attr(first(reply, 'NewBodyContent'), 'BodyType'), 'Text');
    assert.equal(textOf(first(reply, 'NewBodyContent')), `Thanks, paid. ${BODY_MARKER}`);

    const { mail } = await lastSent();
    assert.equal(mail.subject, 'RE: Invoice 4711');
    assert.equal(mail.inReplyTo, '<invoice-4711@vendor.test>');
    assert.deepEqual(addressList(mail.to), [['Bob Billing', 'billing@vendor.test']]);
    assert.match(String(mail.text), /Thanks, paid\.[\s\S]*Please find the invoice attached/);
    const got = await app.inject({ method: 'GET', url: `/v1/sessions/ews-send/messages/${encodeId(original.id)}` });
    assert.equal(got.json().answered, true, 'Exchange marked the original replied');
  });

  test('reply all (HTML): ReplyAllToItem; accepted is every recipient Exchange addresses, without this mailbox', async () => {
    const from = world.ews.requests.length;
    const res = await post(`/messages/${encodeId(original.id)}/reply`, { html: '<p>All paid.</p>', replyAll: true });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().accepted, ['billing@vendor.test', 'team@contoso.test', 'carol@contoso.test']);
    const reply = first(first(sent(from, 'CreateItem')[0]!.node, 'Items'), 'ReplyAllToItem')!;
    assert.equal(attr(first(reply, 'NewBodyContent'), 'BodyType'), 'HTML');
    const { mail } = await lastSent();
    assert.deepEqual([...addressList(mail.to), ...addressList(mail.cc)].map(([, a]) => a).sort(), ['billing@vendor.test', 'carol@contoso.test', 'team@contoso.test']);
  });

  test('reply with attachments: saved as a draft reply, attachments added, sent (SendItem) to Sent Items; no draft stays', async () => {
    const from = world.ews.requests.length;
    const res = await post(`/messages/${encodeId(original.id)}/reply`, { text: 'receipt attached', attachments: [{ filename: 'receipt.png', contentType: 'image/png', content: png.toString('base64') }] });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(operations(from), ['GetItem', 'CreateItem', 'CreateAttachment', 'SendItem']);
    const create = sent(from, 'CreateItem')[0]!.node;
    assert.equal(attr(create, 'MessageDisposition'), 'SaveOnly');
    assert.equal(attr(first(first(create, 'SavedItemFolderId'), 'DistinguishedFolderId'), 'Id'), 'drafts');
    assert.ok(first(first(create, 'Items'), 'ReplyToItem'));
    const attach = sent(from, 'CreateAttachment')[0]!.node;
    assert.ok(Buffer.from(textOf(first(first(first(attach, 'Attachments'), 'FileAttachment'), 'Content')), 'base64').equals(png));
    const { mail, record } = await lastSent();
    assert.equal(mail.subject, 'RE: Invoice 4711');
    assert.equal(mail.inReplyTo, '<invoice-4711@vendor.test>');
    assert.ok(mail.attachments.find((a) => a.filename === 'receipt.png')!.content.equals(png));
    assert.equal(record.copy?.folderId, box.folder('sentitems').id);
    assert.equal(inFolder('drafts').length, 0);
  });

  test('forward: ForwardItem with its recipients; the original\'s attachments travel with it', async () => {
    const from = world.ews.requests.length;
    const res = await post(`/messages/${encodeId(original.id)}/forward`, { to: ['Accounting <ap@example.test>'], cc: 'boss@example.test', text: 'FYI' });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json(), { messageId: null, accepted: ['ap@example.test', 'boss@example.test'], rejected: [] });
    const fwd = first(first(sent(from, 'CreateItem')[0]!.node, 'Items'), 'ForwardItem')!;
    assert.deepEqual(all(first(fwd, 'ToRecipients'), 'Mailbox').map((m) => [textOf(first(m, 'Name')), textOf(first(m, 'EmailAddress'))]), [['Accounting', 'ap@example.test']]);
    assert.equal(attr(first(fwd, 'ReferenceItemId'), 'Id'), original.id);
    const { mail } = await lastSent();
    assert.equal(mail.subject, 'FW: Invoice 4711');
    assert.ok(mail.attachments.find((a) => a.filename === 'invoice-4711.pdf')!.content.equals(pdf), 'the original PDF, byte for byte');
  });

  test('refusals: a gone original is MESSAGE_NOT_FOUND, ErrorSendAsDenied EWS_ACCESS_DENIED, ErrorMessageSizeExceeded MESSAGE_TOO_LARGE, others MAIL_PROTOCOL_ERROR with the name; nothing is reported sent', async () => {
    const gone = await box.addMessage('inbox', await compose({ from: 'x@example.test', to: USERS.alice.name, subject: 'gone', text: 'x' }));
    box.remove(gone);
    assertProblem(await post(`/messages/${encodeId(gone.id)}/reply`, { text: 'x' }), 'MESSAGE_NOT_FOUND');
    assertProblem(await post(`/messages/${encodeId(gone.id)}/forward`, { to: 'a@example.test' }), 'MESSAGE_NOT_FOUND');
    const before = box.sent.length;
    for (const [code, expected] of [['ErrorSendAsDenied', 'EWS_ACCESS_DENIED'], ['ErrorMessageSizeExceeded', 'MESSAGE_TOO_LARGE'], ['ErrorQuotaExceeded', 'MAIL_PROTOCOL_ERROR']] as const) {
      world.ews.mailHostility = { operation: 'CreateItem', status: 200, body: refusal('CreateItem', code) };
      try {
        const problem = assertProblem(await post('/send', { to: 'a@example.test', subject: 'no', text: 'no' }), expected);
        assert.match(String(problem.detail), new RegExp(code));
      } finally {
        world.ews.mailHostility = undefined;
      }
    }
    assert.equal(box.sent.length, before, 'nothing sent');
    // a reply with attachments whose SendItem fails: the error is the answer, and the draft is removed
    world.ews.mailHostility = { operation: 'SendItem', status: 200, body: refusal('SendItem', 'ErrorQuotaExceeded') };
    try {
      assertProblem(await post(`/messages/${encodeId(original.id)}/reply`, { text: 'x', attachments: [{ filename: 'a.txt', content: 'eA==' }] }), 'MAIL_PROTOCOL_ERROR');
    } finally {
      world.ews.mailHostility = undefined;
    }
    assert.equal(inFolder('drafts').length, 0, 'no draft left behind');
    assert.equal(box.sent.length, before);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/ews-send' })).json().state, 'connected', 'refusals do not make the session reconnect');
  });

  test('no password or message content in any log line', () => {
    assertNoSecrets(logs, [...world.secrets(), BODY_MARKER, 'Zahlungsbest', 'jane@example.test', 'Invoice 4711'], 'logs');
    const sends = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'mail changed' && l.operation === 'send');
    assert.ok(sends.some((l) => l.accepted === 4), 'the send is logged with its counts');
  });
});
