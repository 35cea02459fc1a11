import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerResponse } from 'node:http';
import { Type } from 'typebox';
import type { EventHub, MailEvent } from '../domain/events.js';
import { AppError } from '../errors.js';
import { principalOf } from '../plugins/auth.js';
import { SessionName, WireString } from '../schemas/common.js';
import { EventFrameSchema } from '../schemas/event.js';
import { problemResponses } from '../schemas/problem.js';

export interface EventRoutesOptions {
  events: EventHub;
  heartbeatMs: number;
  streamsPerPrincipal: number;
}

/** A client that reads this much slower than events arrive is cut off; it resumes with Last-Event-ID. */
const MAX_BUFFERED = 1_048_576;

/** One SSE frame: `id:` and `event:` carry the event's id and type, `data:` the event as JSON. */
export function sseFrame(event: MailEvent): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * GET /v1/events: the caller's sessions' events as Server-Sent Events, resumable with Last-Event-ID
 * from a bounded per-principal buffer, with heartbeat comments so that proxies keep the stream open.
 */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, { events, heartbeatMs, streamsPerPrincipal }) => {
  const open = new Map<string, Set<ServerResponse>>();
  // a graceful shutdown ends the streams, else it would wait for them until its deadline
  app.addHook('preClose', async () => {
    for (const streams of open.values()) for (const raw of streams) raw.end();
  });

  app.get(
    '/v1/events',
    {
      schema: {
        operationId: 'streamEvents',
        tags: ['events'],
        summary: 'Events of the caller\'s sessions as they happen (Server-Sent Events)',
        description:
          'text/event-stream of message.new, message.deleted, session.state, mailbox.reset and events.lost events; each `data:` line is the event as JSON { id, type, at, session, data }. Reconnect with the Last-Event-ID header to get what was missed from a bounded buffer (an events.lost event says when that is not possible). A comment line is sent every MSB_EVENTS_HEARTBEAT_MS.',
        querystring: Type.Object({ session: Type.Optional(SessionName) }, { additionalProperties: false }),
        // any value: a browser's EventSource sends back whatever id it saw last, and a 400 would end its
        // reconnecting for good; an id this process did not make is answered with events.lost
        headers: Type.Object({
          'last-event-id': Type.Optional(WireString({ maxLength: 256, description: 'The id of the last event received; the stream starts after it.' })),
        }),
        produces: ['text/event-stream'],
        response: {
          200: { description: 'The event stream: one frame per event (and comment lines, which are not frames).', content: { 'text/event-stream': { schema: EventFrameSchema } } },
          ...problemResponses({ 429: 'RATE_LIMITED: too many event streams open for this principal (MSB_EVENT_STREAMS_PER_PRINCIPAL).' }),
        },
      },
    },
    async (request, reply) => {
      const owner = principalOf(request).name;
      const mine = open.get(owner) ?? new Set<ServerResponse>();
      if (mine.size >= streamsPerPrincipal) {
        throw new AppError('RATE_LIMITED', `this principal has ${mine.size} event streams open; close one first`, { retryAfterSeconds: 5 });
      }
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        'x-content-type-options': 'nosniff',
        'x-request-id': String(request.id),
      });
      mine.add(raw);
      open.set(owner, mine);
      const write = (text: string) => {
        if (raw.writableLength > MAX_BUFFERED) raw.destroy();
        else raw.write(text);
      };
      raw.write(`: connected\nretry: 2000\n\n`);
      const unsubscribe = events.subscribe(
        owner,
        { ...(request.query.session ? { session: request.query.session } : {}), ...(request.headers['last-event-id'] ? { lastEventId: request.headers['last-event-id'] } : {}) },
        (event) => write(sseFrame(event)),
      );
      const heartbeat = setInterval(() => write(': heartbeat\n\n'), heartbeatMs);
      raw.once('close', () => {
        clearInterval(heartbeat);
        unsubscribe();
        mine.delete(raw);
        if (mine.size === 0) open.delete(owner);
      });
    },
  );
};
