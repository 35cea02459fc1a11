import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventHub, type MailEvent } from '../../src/domain/events.js';

test('subscribers get the events of their principal, filtered by session when asked', () => {
  const hub = new EventHub({ bufferSize: 10 });
  const all: MailEvent[] = [];
  const one: MailEvent[] = [];
  const other: MailEvent[] = [];
  hub.subscribe('bot-a', {}, (e) => all.push(e));
  hub.subscribe('bot-a', { session: 'invoices' }, (e) => one.push(e));
  hub.subscribe('bot-b', {}, (e) => other.push(e));
  hub.publish('bot-a', 'invoices', 'message.new', { id: 'm1' });
  hub.publish('bot-a', 'orders', 'session.state', { state: 'connected' });
  assert.deepEqual(all.map((e) => [e.session, e.type]), [['invoices', 'message.new'], ['orders', 'session.state']]);
  assert.deepEqual(one.map((e) => e.data), [{ id: 'm1' }]);
  assert.equal(other.length, 0, 'another principal sees nothing');
  assert.ok(Number(all[1]!.id.split('.')[1]) > Number(all[0]!.id.split('.')[1]), 'ids increase');
});

test('Last-Event-ID replays what was missed; an overflowed buffer or another epoch says events.lost', () => {
  const hub = new EventHub({ bufferSize: 3 });
  const ids = [1, 2, 3].map((n) => hub.publish('bot', 's', 'message.new', { n }).id);
  const replayed: MailEvent[] = [];
  hub.subscribe('bot', { lastEventId: ids[0]! }, (e) => replayed.push(e));
  assert.deepEqual(replayed.map((e) => e.data.n), [2, 3]);

  hub.publish('bot', 's', 'message.new', { n: 4 });
  hub.publish('bot', 's', 'message.new', { n: 5 }); // 1 and 2 have left the buffer
  const late: MailEvent[] = [];
  hub.subscribe('bot', { lastEventId: ids[0]! }, (e) => late.push(e));
  assert.equal(late[0]!.type, 'events.lost');
  assert.deepEqual(late.slice(1).map((e) => e.data.n), [3, 4, 5]);

  const current: MailEvent[] = [];
  hub.subscribe('bot', { lastEventId: ids[2]! }, (e) => current.push(e));
  assert.deepEqual(current.map((e) => e.data.n), [4, 5], 'no loss when the client saw the last dropped one');

  const restarted: MailEvent[] = [];
  hub.subscribe('bot', { lastEventId: 'deadbeef.2' }, (e) => restarted.push(e));
  assert.equal(restarted[0]!.type, 'events.lost');
  assert.match(String(restarted[0]!.data.reason), /restarted/);

  // any other value (a browser sends back whatever id it saw): everything buffered, after events.lost
  const foreign: MailEvent[] = [];
  hub.subscribe('bot', { lastEventId: 'x\u00ff' }, (e) => foreign.push(e));
  assert.equal(foreign[0]!.type, 'events.lost');
  assert.match(String(foreign[0]!.data.reason), /not an event id/);
  assert.deepEqual(foreign.slice(1).map((e) => e.data.n), [3, 4, 5]);
});
