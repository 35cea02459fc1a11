// A Server-Sent Events client on a real socket, parsing frames as they arrive (what a bot's SSE library does).
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';

export interface SseEvent {
  id: string;
  type: string;
  body: Record<string, any>;
}

export function openEventStream(port: number, path: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = [];
  let response: IncomingMessage | undefined;
  let waiters: (() => void)[] = [];
  const ready = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      response = res;
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(frame.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
          if (fields.data) events.push({ id: fields.id!, type: fields.event!, body: JSON.parse(fields.data) });
          for (const w of waiters) w();
          waiters = [];
        }
      });
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
  return {
    ready,
    events,
    close: () => response?.destroy(),
    /** Waits until `predicate` holds for the events so far; fails naming what did arrive. */
    async waitFor(what: string, predicate: (events: SseEvent[]) => boolean, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (Date.now() > deadline) assert.fail(`${what}: did not arrive; got ${JSON.stringify(events.map((e) => [e.type, e.body.data?.subject ?? e.body.data?.state ?? e.body.data?.folder]))}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}
