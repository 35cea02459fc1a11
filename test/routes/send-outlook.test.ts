import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { encodeId } from '../../src/domain/mail.js';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import type { GraphRequestRecord } from '../harness/fake-graph.js';
import type { FakeMailbox, FakeMessage } from '../harness/fake-graph-mailbox.js';
import { compose } from '../harness/graph-mail-seed.js';
import { USERS, assertNoSecrets, startGraphWorld, type GraphWorld } from '../harness/graph-world.js';

type App = TestApp['app'];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const SUBJECT_MARKER = 'Subject-marker-93ac';
const TEXT_MARKER = 'Text-marker-41be';

/** Sending through outlook sessions: the JSON bodies Graph receives, Sent Items, and the recipients' Inboxes of the fake. */
describe('sending mail through outlook sessions (Microsoft Graph)', () => {
  let world: GraphWorld;
  let app: App;
  let logs: string[];
  let alice: FakeMailbox;
  let bob: FakeMailbox;
  let carol: FakeMailbox;
  let original: FakeMessage;
  const closers: (() => unknown)[] = [];
  const base = `/v1.0/users/${USERS.alice.name}`;

  before(async () => {
    world = await startGraphWorld();
    alice = world.graph.mailbox(USERS.alice.name);
    bob = world.graph.mailbox(USERS.bob.name);
    carol = world.graph.mailbox(USERS.carol.name);
    const attachment = randomBytes(4096);
    original = await alice.addMessage(
      'inbox',
      await compose({
        from: { name: 'Bob', address: USERS.bob.name },
        to: [{ name: 'Alice', address: USERS.alice.name }],
        cc: [{ name: 'Carol', address: USERS.carol.name }],
        subject: 'Order 4711',
        messageId: '<order-4711@contoso.test>',
        text: 'Please confirm the order.',
        attachments: [{ filename: 'order.pdf', content: attachment, contentType: 'application/pdf' }],
      }),
    );
    const built = await build({ after: (fn: () => unknown) => void closers.push(fn) } as never, { ...world.env, MSB_COMMAND_TIMEOUT_MS: '8000' });
    ({ app, logs } = built);
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'mail', type: 'outlook', mailbox: USERS.alice.name } });
    assert.equal(res.statusCode, 201, res.body);
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}, name = 'mail') =>
    app.inject({ method: 'POST', url: `/v1/sessions/${name}${url}`, payload: payload as object, headers });
  const since = (from: number) => world.graph.requests.slice(from);
  const writes = (records: GraphRequestRecord[]) => records.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path.replace(base, '')}`);
  const inFolder = (mb: FakeMailbox, folder: string) => [...mb.messages.values()].filter((m) => m.folderId === mb.folder(folder)!.id);
  const newest = (mb: FakeMailbox, folder: string) => inFolder(mb, folder).sort((a, b) => b.seq - a.seq)[0]!;

  test('send: one POST /sendMail with the parsed recipients and saveToSentItems; the copy in Sent Items, the mail at the recipient', async () => {
    const from = world.graph.requests.length;
    const res = await post('/send', {
      to: ['"Roe, Bob" <bob@contoso.test>', 'jane@elsewhere.test'],
      cc: 'Carol <carol@contoso.test>',
      bcc: ['audit@contoso.test'],
      subject: `Größe ✓ ${SUBJECT_MARKER}`,
      text: `line one\n${TEXT_MARKER}`,
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json(), { messageId: null, accepted: ['bob@contoso.test', 'jane@elsewhere.test', 'carol@contoso.test', 'audit@contoso.test'], rejected: [] });
    const seen = since(from);
    assert.deepEqual(writes(seen), ['POST /sendMail']);
    assert.deepEqual(seen[0]!.body, {
      message: {
        subject: `Größe ✓ ${SUBJECT_MARKER}`,
        body: { contentType: 'Text', content: `line one\n${TEXT_MARKER}` },
        toRecipients: [{ emailAddress: { name: 'Roe, Bob', address: 'bob@contoso.test' } }, { emailAddress: { address: 'jane@elsewhere.test' } }],
        ccRecipients: [{ emailAddress: { name: 'Carol', address: 'carol@contoso.test' } }],
        bccRecipients: [{ emailAddress: { address: 'audit@contoso.test' } }],
      },
      saveToSentItems: true,
    });
    const copy = newest(alice, 'sentitems');
    assert.equal(copy.subject, `Größe ✓ ${SUBJECT_MARKER}`);
    assert.deepEqual(copy.bcc.map((a) => a.address), ['audit@contoso.test']);
    assert.deepEqual(copy.to.map((a) => a.name), ['Roe, Bob', ''], 'a comma in a name stays in the name');
    const delivered = newest(bob, 'inbox');
    assert.equal(delivered.subject, `Größe ✓ ${SUBJECT_MARKER}`);
    assert.match(delivered.body.content, new RegExp(TEXT_MARKER));
    assert.equal(newest(carol, 'inbox').subject, `Größe ✓ ${SUBJECT_MARKER}`);
  });

  test('HTML with attachments of up to 3 MB: inside sendMail as fileAttachment contentBytes, byte-exact in Sent Items', async () => {
    const pdf = randomBytes(1024 * 1024 + 3);
    const from = world.graph.requests.length;
    const res = await post('/send', {
      to: USERS.bob.name,
      subject: 'Invoice',
      text: 'ignored by Graph: it sends one body',
      html: '<p>See <b>attached</b></p>',
      attachments: [{ filename: 'Rechnung März.pdf', contentType: 'application/pdf', content: pdf.toString('base64') }],
    });
    assert.equal(res.statusCode, 201, res.body);
    const [sendMail] = since(from);
    const message = (sendMail!.body as { message: { body: unknown; attachments: Record<string, unknown>[] } }).message;
    assert.deepEqual(message.body, { contentType: 'HTML', content: '<p>See <b>attached</b></p>' });
    assert.deepEqual(message.attachments, [{ '@odata.type': '#microsoft.graph.fileAttachment', name: 'Rechnung März.pdf', contentType: 'application/pdf', contentBytes: pdf.toString('base64') }]);
    const copy = newest(alice, 'sentitems');
    assert.equal(copy.body.contentType, 'html');
    assert.equal(sha(copy.attachments[0]!.bytes), sha(pdf));
    assert.equal(sha(newest(bob, 'inbox').attachments[0]!.bytes), sha(pdf));
  });

  test('an attachment above 3 MB: a draft, an upload session (PUTs without a token), then send; messageId is the draft\'s', async () => {
    const big = randomBytes(5 * 1024 * 1024 + 11);
    const small = randomBytes(2 * 1024 * 1024);
    const from = world.graph.requests.length;
    const res = await post('/send', {
      to: USERS.carol.name,
      subject: 'Scans',
      text: 'two files',
      attachments: [
        { filename: 'small.bin', content: small.toString('base64') },
        { filename: 'scan.tiff', contentType: 'image/tiff', content: big.toString('base64') },
      ],
    });
    assert.equal(res.statusCode, 201, res.body);
    const seen = since(from);
    const puts = seen.filter((r) => r.method === 'PUT');
    const draftPath = writes(seen)[1]!.replace(/^POST /, '').replace(/\/attachments$/, '');
    assert.deepEqual(writes(seen), [
      'POST /messages',
      `POST ${draftPath}/attachments`,
      `POST ${draftPath}/attachments/createUploadSession`,
      ...puts.map((p) => `PUT ${p.path}`),
      `POST ${draftPath}/send`,
    ]);
    assert.equal(puts.length, 2, '5 MB in chunks of under 4 MB');
    for (const p of puts) {
      assert.equal(p.token, undefined, 'the upload URL gets no bearer token');
      assert.equal(p.status === 200 || p.status === 201, true);
    }
    assert.deepEqual((seen[0]!.body as { subject: string; toRecipients: unknown }).toRecipients, [{ emailAddress: { address: USERS.carol.name } }]);
    assert.deepEqual(seen.find((r) => r.path.endsWith('/createUploadSession'))!.body, { AttachmentItem: { attachmentType: 'file', name: 'scan.tiff', size: big.length, contentType: 'image/tiff' } });
    const copy = newest(alice, 'sentitems');
    assert.equal(res.json().messageId, copy.internetMessageId, 'the draft\'s Message-ID is the sent message\'s');
    assert.match(res.json().messageId, /^<[^<>]+>$/);
    assert.deepEqual(copy.attachments.map((a) => [a.name, sha(a.bytes)]), [['small.bin', sha(small)], ['scan.tiff', sha(big)]]);
    assert.equal(inFolder(alice, 'drafts').length, 0, 'the draft became the sent message');
    assert.deepEqual(newest(carol, 'inbox').attachments.map((a) => sha(a.bytes)), [sha(small), sha(big)]);
  });

  test('reply and reply all: createReply / createReplyAll with the comment, then send; accepted as Exchange addressed it', async () => {
    const id = encodeId(original.immutableId);
    let from = world.graph.requests.length;
    const res = await post(`/messages/${id}/reply`, { text: 'Confirmed <today>\nThanks' });
    assert.equal(res.statusCode, 201, res.body);
    const seen = since(from);
    assert.deepEqual(writes(seen).map((w) => w.replace(/messages\/[^/]+\//, 'messages/{id}/')), ['POST /messages/{id}/createReply', 'POST /messages/{id}/send']);
    assert.equal(seen[0]!.path, `${base}/messages/${original.immutableId}/createReply`);
    assert.deepEqual(seen[0]!.body, { comment: 'Confirmed &lt;today&gt;<br>Thanks' });
    assert.deepEqual(res.json().accepted, [USERS.bob.name]);
    const reply = newest(bob, 'inbox');
    assert.equal(reply.subject, 'RE: Order 4711');
    assert.equal(reply.headers.find((h) => h.name.toLowerCase() === 'in-reply-to')?.value, '<order-4711@contoso.test>');
    assert.equal(reply.internetMessageId, res.json().messageId);
    assert.equal(original.lastVerb, 102, 'the original shows as replied');

    from = world.graph.requests.length;
    const all = await post(`/messages/${id}/reply`, { html: '<p>All good</p>', replyAll: true, attachments: [{ filename: 'ok.txt', content: Buffer.from('ok').toString('base64') }] });
    assert.equal(all.statusCode, 201, all.body);
    assert.deepEqual(writes(since(from)).map((w) => w.replace(/messages\/[^/]+\//, 'messages/{id}/')), [
      'POST /messages/{id}/createReplyAll',
      'POST /messages/{id}/attachments',
      'POST /messages/{id}/send',
    ]);
    assert.deepEqual(since(from)[0]!.body, { comment: '<p>All good</p>' });
    assert.deepEqual(all.json().accepted.sort(), [USERS.bob.name, USERS.carol.name], 'reply all without the mailbox itself');
    assert.equal(newest(carol, 'inbox').subject, 'RE: Order 4711');
    assert.deepEqual(newest(carol, 'inbox').attachments.map((a) => a.name), ['ok.txt']);
  });

  test('forward: one POST .../forward with comment, toRecipients and cc; the original\'s attachments go along', async () => {
    const id = encodeId(original.immutableId);
    const from = world.graph.requests.length;
    const res = await post(`/messages/${id}/forward`, { to: 'Carol <carol@contoso.test>', cc: 'bob@contoso.test', text: 'FYI' });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json(), { messageId: null, accepted: [USERS.carol.name, USERS.bob.name], rejected: [] });
    const seen = since(from);
    assert.deepEqual(writes(seen), [`POST /messages/${original.immutableId}/forward`]);
    assert.deepEqual(seen[0]!.body, {
      comment: 'FYI',
      toRecipients: [{ emailAddress: { name: 'Carol', address: USERS.carol.name } }],
      message: { ccRecipients: [{ emailAddress: { address: USERS.bob.name } }], bccRecipients: [] },
    });
    const forwarded = newest(carol, 'inbox');
    assert.equal(forwarded.subject, 'FW: Order 4711');
    assert.deepEqual(forwarded.attachments.map((a) => a.name), ['order.pdf']);

    const withFile = await post(`/messages/${id}/forward`, { to: USERS.bob.name, text: 'and the scan', attachments: [{ filename: 'scan.txt', content: Buffer.from('scan').toString('base64') }] });
    assert.equal(withFile.statusCode, 201, withFile.body);
    assert.match(withFile.json().messageId, /^<.+>$/, 'a draft (createForward) tells its Message-ID');
    assert.deepEqual(newest(bob, 'inbox').attachments.map((a) => a.name), ['order.pdf', 'scan.txt']);
    assertProblem(await post(`/messages/${encodeId('AAkALgAAnotThere=')}/forward`, { to: USERS.bob.name, text: 'x' }), 'MESSAGE_NOT_FOUND');
    assertProblem(await post(`/messages/${encodeId('AAkALgAAnotThere=')}/reply`, { text: 'x' }), 'MESSAGE_NOT_FOUND');
  });

  test('403 on send is GRAPH_ACCESS_DENIED naming Mail.Send; nothing is reported sent; the session stays connected', async () => {
    const sentBefore = world.graph.sent.length;
    world.graph.script.push({ match: /^POST .*\/sendMail$/, status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.' });
    const problem = assertProblem(await post('/send', { to: USERS.bob.name, subject: 'x', text: 'y' }), 'GRAPH_ACCESS_DENIED');
    assert.match(String(problem.detail), /Mail\.Send/);
    assert.equal(world.graph.sent.length, sentBefore);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/mail' })).json().state, 'connected');
  });

  test('an upload URL that is not https is not followed; the unsent draft is deleted again', async () => {
    world.graph.script.push({ match: /createUploadSession$/, rewrite: (body) => ({ ...body, uploadUrl: String(body.uploadUrl).replace('https:', 'http:') }) });
    const sentBefore = world.graph.sent.length;
    const res = await post('/send', { to: USERS.bob.name, subject: 'Never sent', text: 'x', attachments: [{ filename: 'big.bin', content: randomBytes(3 * 1024 * 1024 + 1).toString('base64') }] });
    assert.match(String(assertProblem(res, 'MAIL_PROTOCOL_ERROR').detail), /not https/);
    assert.equal(world.graph.sent.length, sentBefore);
    assert.equal(inFolder(alice, 'drafts').length, 0, 'the draft was removed');
    assert.equal(world.graph.requests.at(-1)!.path.endsWith('/permanentDelete'), true);
  });

  test('the same Idempotency-Key twice sends once', async () => {
    const before = world.graph.sent.length;
    const body = { to: USERS.bob.name, subject: 'Once only', text: 'once' };
    const first = await post('/send', body, { 'idempotency-key': 'send-once-1' });
    const second = await post('/send', body, { 'idempotency-key': 'send-once-1' });
    assert.equal(first.statusCode, 201);
    assert.equal(second.statusCode, 201);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.equal(world.graph.sent.length, before + 1);
  });

  test('a delegated session asks for Mail.Send and sends from /me', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'own', type: 'outlook', username: USERS.bob.name, password: USERS.bob.password } });
    assert.equal(res.statusCode, 201, res.body);
    const from = world.graph.requests.length;
    const sent = await post('/send', { to: USERS.carol.name, subject: 'From Bob', text: 'hi' }, {}, 'own');
    assert.equal(sent.statusCode, 201, sent.body);
    const [request] = since(from);
    assert.equal(request!.path, '/v1.0/me/sendMail');
    assert.match(request!.scope ?? '', /\/Mail\.Send( |$)/);
    assert.match(request!.scope ?? '', /\/Mail\.ReadWrite( |$)/);
    assert.equal(newest(bob, 'sentitems').subject, 'From Bob');
  });

  test('no token, upload URL, subject, body or address in any log line', () => {
    const uploadTokens = world.graph.requests.filter((r) => r.method === 'PUT').map((r) => r.query.authtoken!);
    assert.ok(uploadTokens.length > 0);
    assertNoSecrets(logs, [...world.secrets(), ...uploadTokens, SUBJECT_MARKER, TEXT_MARKER, 'jane@elsewhere.test', 'audit@contoso.test'], 'log');
  });
});
