// The TypeScript client (openapi-typescript types + openapi-fetch), used as a bot would (run by
// openapi/clients/run.ts, type-checked first by .ci/openapi-clients against the generated types).
// Creates an IMAP session, reads its state and mailbox counts through the typed answer, gets a typed problem
// for a wrong password, and deletes the session. Exits 1 with a reason at the first thing not as documented.
import createClient from 'openapi-fetch';
import type { components, paths } from '../../.generated/typescript/schema.js';

type Session = components['schemas']['Session'];
type Problem = components['schemas']['Problem'];
type CreateImapSession = components['schemas']['CreateImapSession'];

const env = process.env as Record<string, string>;

function check(condition: unknown, what: string): asserts condition {
  if (!condition) {
    process.stderr.write(`typescript client: FAILED: ${what}\n`);
    process.exit(1);
  }
}

const imap = (name: string, password: string): CreateImapSession => ({
  name,
  type: 'imap',
  host: env.IMAP_HOST!,
  port: Number(env.IMAP_PORT),
  secure: true,
  username: env.IMAP_USER!,
  password,
  tls: { ca: env.IMAP_CA! },
});

const client = createClient<paths>({ baseUrl: env.MSB_URL, headers: { authorization: `Bearer ${env.MSB_API_KEY}` } });

const created = await client.POST('/v1/sessions', { body: imap('ts-invoices', env.IMAP_PASSWORD!) });
check(created.response.status === 201 && created.data, `create: ${created.response.status} ${JSON.stringify(created.error)}`);
const session: Session = created.data;
check(session.state === 'connected', `state ${session.state}`);
check(session.mailbox, 'no mailbox summary');
check(session.mailbox.messages === Number(env.EXPECTED_MESSAGES), `messages ${session.mailbox.messages}`);
check(typeof session.mailbox.unseen === 'number', `unseen ${session.mailbox.unseen}`);

const inspected = await client.GET('/v1/sessions/{name}', { params: { path: { name: 'ts-invoices' }, query: { refresh: true } } });
check(inspected.data?.state === 'connected', `inspect: ${JSON.stringify(inspected.error)}`);

const listed = await client.GET('/v1/sessions');
check(listed.data?.sessions.map((s) => s.name).join() === 'ts-invoices', `list: ${JSON.stringify(listed.data ?? listed.error)}`);

const wrong = await client.POST('/v1/sessions', { body: imap('ts-wrong', 'not-the-password') });
check(wrong.response.status === 422 && wrong.error, `wrong password: ${wrong.response.status}`);
const problem: Problem = wrong.error;
check(problem.code === 'MAIL_AUTH_FAILED', `wrong password: ${problem.code}`);

const anonymous = await createClient<paths>({ baseUrl: env.MSB_URL }).GET('/v1/sessions/{name}', { params: { path: { name: 'ts-invoices' } } });
check(anonymous.response.status === 401 && anonymous.error?.code === 'UNAUTHENTICATED', `without a key: ${anonymous.response.status}`);

const closed = await client.DELETE('/v1/sessions/{name}', { params: { path: { name: 'ts-invoices' } } });
check(closed.response.status === 204, `delete: ${closed.response.status}`);
const gone = await client.GET('/v1/sessions/{name}', { params: { path: { name: 'ts-invoices' } } });
check(gone.error?.code === 'SESSION_NOT_FOUND', `after delete: ${JSON.stringify(gone.data ?? gone.error)}`);

process.stdout.write(`typescript client: created, ${session.state} with ${session.mailbox.messages} messages, MAIL_AUTH_FAILED as a Problem, deleted\n`);
