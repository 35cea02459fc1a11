import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { build, type TestApp } from '../helper.js';
import { compose } from '../harness/compose.js';
import { USERS, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { all, attr, first, parseSoap, textOf } from '../harness/fake-ews-mail.js';
import type { FakeFolder, FakeMailbox, FakeMessage } from '../harness/fake-ews-store.js';
import { encodeId } from '../../src/domain/mail.js';

/** Work claims on EWS sessions: "done" is an Outlook category on the message, so it outlives the process. */
describe('EWS sessions: work claims mark messages done with a category', () => {
  let world: EwsWorld;
  let box: FakeMailbox;
  let app: TestApp['app'];
  const closers: (() => Promise<void>)[] = [];
  const invoices: FakeMessage[] = [];
  let other: FakeMessage;
  let done: FakeFolder;

  const session = { name: 'ews-claims', type: 'ews', username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' }, watch: [] };
  const post = (target: TestApp['app'], url: string, payload: unknown) => target.inject({ method: 'POST', url: `/v1/sessions/ews-claims${url}`, payload: payload as object });
  const sent = (from: number, operation: string) =>
    world.ews.requests.slice(from).map((r) => ({ xml: r.body, soap: parseSoap(r.body) })).filter((r) => r.soap?.operation === operation).map((r) => ({ xml: r.xml, node: r.soap!.node }));
  const ids = (res: { json(): { messages: { id: string }[] } }) => res.json().messages.map((m) => m.id);

  before(async () => {
    world = await startEwsWorld();
    box = world.ews.store(USERS.alice.name);
    done = box.addFolder('inbox', 'Done');
    const t0 = Date.UTC(2026, 6, 1);
    for (let i = 0; i < 5; i += 1) {
      const mime = await compose({ from: 'billing@vendor.test', to: USERS.alice.name, subject: `Invoice ${i}`, text: 'x' });
      invoices.push(await box.addMessage('inbox', mime, { received: t0 + i * 60_000, categories: i === 4 ? ['R&D', 'Red category'] : [] }));
    }
    other = await box.addMessage('inbox', await compose({ from: 'news@example.test', to: USERS.alice.name, subject: 'Newsletter', text: 'x' }), { received: t0 });
    ({ app } = await build({ after: (fn) => void closers.push(fn as () => Promise<void>) }, world.env));
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...session, url: world.ews.url } });
    assert.equal(res.statusCode, 201, res.body);
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  test('a claim leases matching messages not done yet: the restriction leaves out the category (Not Contains on Categories)', async () => {
    const from = world.ews.requests.length;
    const one = await post(app, '/claims', { where: { subject: 'invoice' }, max: 2, leaseSeconds: 60 });
    assert.equal(one.statusCode, 201, one.body);
    assert.deepEqual(ids(one), invoices.slice(0, 2).map((m) => encodeId(m.id)), 'the oldest first');
    const xml = sent(from, 'FindItem')[0]!.xml;
    assert.match(xml, /<t:Not><t:Contains ContainmentMode="FullString" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Categories"><\/t:FieldURI><t:Constant Value="\$Processed"><\/t:Constant><\/t:Contains><\/t:Not>/);
    const two = await post(app, '/claims', { where: { subject: 'invoice' }, max: 10, leaseSeconds: 60 });
    assert.deepEqual(ids(two), invoices.slice(2).map((m) => encodeId(m.id)), 'a second claim does not get what the first holds');

    // acknowledged with a move: the category is on the message, which is in Done now
    const update = world.ews.requests.length;
    const ack = await post(app, `/claims/${one.json().claim}/ack`, { then: { moveTo: 'Inbox/Done', markRead: true } });
    assert.equal(ack.statusCode, 200, ack.body);
    assert.deepEqual(ack.json(), { acknowledged: ids(one), failed: [] });
    for (const m of invoices.slice(0, 2)) {
      assert.deepEqual([m.categories, m.folderId, m.isRead], [['$Processed'], done.id, true]);
    }
    const tagging = sent(update, 'UpdateItem').filter((u) => /item:Categories/.test(u.xml));
    assert.equal(tagging.length, 2);
    assert.equal(attr(tagging[0]!.node, 'ConflictResolution'), 'NeverOverwrite', 'written with the ChangeKey it was read with');
    const set = first(first(first(first(tagging[0]!.node, 'ItemChanges'), 'ItemChange'), 'Updates'), 'SetItemField');
    assert.deepEqual(all(first(first(set, 'Message'), 'Categories'), 'String').map((s) => textOf(s)), ['$Processed']);

    // acknowledged in place: it keeps its categories, escaped as they travel back (the library writes them as they are)
    const kept = invoices[4]!;
    const ack2 = await post(app, `/claims/${two.json().claim}/ack`, { ids: [encodeId(kept.id)] });
    assert.deepEqual(ack2.json().acknowledged, [encodeId(kept.id)]);
    assert.deepEqual(kept.categories, ['R&D', 'Red category', '$Processed']);
    assert.equal(kept.folderId, box.folder('inbox').id);
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/ews-claims/claims/${two.json().claim}` })).statusCode, 204);
  });

  test('done outlives the process: a fresh service (no leases, nothing remembered) does not hand out a message with the category', async (t) => {
    const fresh = await build(t, world.env);
    const res = await fresh.app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...session, url: world.ews.url } });
    assert.equal(res.statusCode, 201, res.body);
    const claim = await post(fresh.app, '/claims', { where: {}, max: 50, leaseSeconds: 30 });
    assert.equal(claim.statusCode, 201, claim.body);
    assert.deepEqual(new Set(ids(claim)), new Set([other, invoices[2]!, invoices[3]!].map((m) => encodeId(m.id))), 'the released ones and the never-claimed one; not the tagged one');
  });

  test('a category another client adds between the read and the write is kept: the write conflicts (ChangeKey) and is done again', async () => {
    const target = invoices[2]!;
    let conflicted = false;
    world.ews.beforeAnswer = (operation, mailbox) => {
      if (operation !== 'UpdateItem' || conflicted) return;
      conflicted = true;
      // Outlook on another machine files the message in a category meanwhile
      target.categories = [...target.categories, 'Blue category'];
      mailbox.changed(target);
    };
    const from = world.ews.requests.length;
    try {
      const claim = await post(app, '/claims', { where: { subject: 'Invoice 2' }, max: 1, leaseSeconds: 30 });
      assert.deepEqual(ids(claim), [encodeId(target.id)]);
      const ack = await post(app, `/claims/${claim.json().claim}/ack`, {});
      assert.deepEqual(ack.json().failed, []);
    } finally {
      world.ews.beforeAnswer = undefined;
    }
    assert.equal(conflicted, true);
    assert.deepEqual(target.categories, ['Blue category', '$Processed'], 'nothing lost');
    assert.equal(sent(from, 'UpdateItem').length, 2, 'the first write conflicted, the second went through');
    assert.equal(sent(from, 'GetItem').filter((g) => /item:Categories/.test(g.xml)).length, 2, 'read again before writing again');
  });
});
