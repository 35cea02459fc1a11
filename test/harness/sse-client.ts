// A Server-Sent Events client on a real socket, parsing frames as they arrive (what a bot's SSE library does).
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';

export interface SseEvent {
  id: string;
  type: string;
  body: Record<string, any>;
}

/** One frame of an event stream: its fields (the last of each name) and its comment lines (": ..."). */
export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  comments: string[];
}

/** Parses `res` as an event stream, calling `onFrame` for each frame as it arrives. */
export function onSseFrames(res: IncomingMessage, onFrame: (frame: SseFrame) => void): void {
  let buffer = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const lines = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(lines.filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      onFrame({ ...fields, comments: lines.filter((l) => l.startsWith(':')) });
    }
  });
}

export function openEventStream(port: number, path: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = [];
  let response: IncomingMessage | undefined;
  let waiters: (() => void)[] = [];
  const ready = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      response = res;
      onSseFrames(res, (frame) => {
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
