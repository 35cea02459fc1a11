import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { onSseFrames } from '../harness/sse-client.js';
import { build } from '../helper.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';

interface Received {
  id: string;
  type: string;
  body: Record<string, any>;
}

/** An SSE client on a real socket: parses frames as they arrive. */
function openStream(port: number, path: string, headers: Record<string, string> = {}) {
  const events: Received[] = [];
  const comments: string[] = [];
  let response: IncomingMessage | undefined;
  let waiters: (() => void)[] = [];
  const ready = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      response = res;
      onSseFrames(res, (frame) => {
        comments.push(...frame.comments);
        if (frame.data) events.push({ id: frame.id!, type: frame.event!, body: JSON.parse(frame.data) });
        for (const w of waiters) w();
        waiters = [];
      });
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
  return {
    ready,
    events,
    comments,
    close: () => response?.destroy(),
    async waitFor(predicate: (events: Received[]) => boolean, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (Date.now() > deadline) assert.fail(`expected events did not arrive; got ${JSON.stringify(events.map((e) => [e.type, e.body.data]))}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

describe('events as Server-Sent Events (Dovecot)', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });

  test('session.state events arrive as SSE frames with id and event lines, and resume with Last-Event-ID', async (t) => {
    const { app } = await build(t, {
      MSB_EVENTS_HEARTBEAT_MS: '1000',
      MSB_KEEPALIVE_INTERVAL_MS: '300',
      MSB_COMMAND_TIMEOUT_MS: '1000',
      MSB_RECONNECT_BASE_MS: '100',
      MSB_RECONNECT_MAX_MS: '300',
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const stream = openStream(port, '/v1/events?session=watched');
    const res = await stream.ready;
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);

    const body = { name: 'watched', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: 'alice@example.test', password: 'alice-Secret-1', tls: { ca: dovecot.caPem } };
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body })).statusCode, 201);
    await stream.waitFor((e) => e.some((x) => x.type === 'session.state' && x.body.data.state === 'connected'));
    const connected = stream.events.find((x) => x.body.data.state === 'connected')!;
    assert.equal(connected.id, connected.body.id, 'the id line carries the event id');
    assert.equal(connected.body.session, 'watched');

    await dovecot.stop();
    await stream.waitFor((e) => e.some((x) => x.body.data.state === 'reconnecting'));
    const reconnecting = stream.events.find((x) => x.body.data.state === 'reconnecting')!;
    assert.equal(typeof reconnecting.body.data.code, 'string');
    await dovecot.start();
    await stream.waitFor((e) => e.filter((x) => x.body.data.state === 'connected').length >= 2, 15_000);
    await stream.waitFor(() => stream.comments.some((c) => c.startsWith(': heartbeat')), 5000);
    stream.close();

    // a client that saw only the first event gets the rest again
    const resumed = openStream(port, '/v1/events?session=watched', { 'last-event-id': connected.id });
    await resumed.ready;
    await resumed.waitFor((e) => e.some((x) => x.body.data.state === 'reconnecting'));
    assert.ok(!resumed.events.some((x) => x.id === connected.id), 'what the client had is not sent again');
    resumed.close();
    await app.inject({ method: 'DELETE', url: '/v1/sessions/watched' });
  });

  test('event streams are limited per principal; a Last-Event-ID of another origin starts with events.lost', async (t) => {
    const { app } = await build(t, { MSB_EVENT_STREAMS_PER_PRINCIPAL: '1' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const first = openStream(port, '/v1/events');
    assert.equal((await first.ready).statusCode, 200);
    const second = openStream(port, '/v1/events');
    assert.equal((await second.ready).statusCode, 429);
    first.close();
    // the server sees the first stream close a moment later: until then a new one is still the second
    let foreign = openStream(port, '/v1/events', { 'last-event-id': 'x\u00ff' });
    for (let tries = 0; (await foreign.ready).statusCode === 429 && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      foreign = openStream(port, '/v1/events', { 'last-event-id': 'x\u00ff' });
    }
    assert.equal((await foreign.ready).statusCode, 200);
    await foreign.waitFor((events) => events.some((e) => e.type === 'events.lost' && /not an event id/.test(String(e.body.data.reason))));
    foreign.close();
  });
});
