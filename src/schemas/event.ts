import { Type } from 'typebox';
import { StringEnum } from './common.js';
import { ref, shared } from './shared.js';

const EVENT_TYPES = ['message.new', 'message.deleted', 'session.state', 'mailbox.reset', 'events.lost'] as const;

/** One event, as JSON: the `data:` line of an SSE frame and the body of a webhook delivery. */
export const EventSchema = shared('Event', Type.Object(
  {
    id: Type.String({ description: 'Increasing within one process run; the SSE frame\'s `id:` line, to resume from with Last-Event-ID.' }),
    type: StringEnum([...EVENT_TYPES]),
    at: Type.String({ format: 'date-time' }),
    session: Type.String({ description: 'The session\'s name ("" for an events.lost that covers every session).' }),
    data: Type.Object({}, {
      additionalProperties: true,
      description: 'By type: message.new the MessageSummary; message.deleted { folder, id }; session.state { state, code? }; mailbox.reset { folder }; events.lost { reason, lastEventId }.',
    }),
  },
  { description: 'An event of one of the caller\'s sessions (docs/events-and-claims.md).' },
));

/** One Server-Sent Events frame of GET /v1/events, as an SSE parser hands it over (comment lines are not frames). */
export const EventFrameSchema = Type.Object({
  id: Type.String({ description: 'The event\'s id.' }),
  event: StringEnum([...EVENT_TYPES], { description: 'The event\'s type.' }),
  data: Type.String({ contentMediaType: 'application/json', contentSchema: ref(EventSchema), description: 'The event as JSON.' }),
  retry: Type.Optional(Type.Integer({ minimum: 0, description: 'Reconnection delay in ms (sent once, with the first frame).' })),
});
