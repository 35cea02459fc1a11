import type Pop3Command from 'node-pop3';
import { AppError } from '../../errors.js';
import { scrub } from '../../net/errors.js';

/** The SASL XOAUTH2 initial response: base64("user=" u ^A "auth=Bearer " t ^A ^A). */
export function xoauth2Payload(user: string, token: string): string {
  // a control character would end a field early and let the rest pose as another field (auth= included)
  if (/[\x00-\x1f\x7f]/.test(user) || /[\x00-\x1f\x7f]/.test(token)) {
    throw new AppError('MAIL_AUTH_FAILED', 'the username or access token contains control characters and cannot be sent with XOAUTH2');
  }
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`, 'utf8').toString('base64');
}

/** What a SASL failure challenge says: XOAUTH2 servers send base64 JSON such as {"status":"401","schemes":"bearer"}. */
function challengeStatus(line: string): string | undefined {
  try {
    const json = JSON.parse(Buffer.from(line.slice(1).trim(), 'base64').toString('utf8')) as { status?: unknown };
    return typeof json.status === 'string' || typeof json.status === 'number' ? scrub(String(json.status)).slice(0, 32) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Logs in with AUTH XOAUTH2 (RFC 5034 with an initial response) over node-pop3, which has no AUTH
 * support of its own: connect() reads the greeting, then the public command() sends AUTH. Later
 * commands (STAT...) skip USER/PASS because node-pop3 sees the socket already open.
 *
 * node-pop3 takes any reply starting with "+" for success, but a refused token comes back as a SASL
 * continuation ("+ <base64 error>") that the client must answer with an empty line before the server
 * says -ERR: only the raw reply line tells the two apart, so it is read off the socket as it arrives.
 */
export async function loginXoauth2(pop: Pop3Command, user: string, token: string, where: string): Promise<void> {
  const payload = xoauth2Payload(user, token);
  await pop.connect();
  const socket = pop._socket;
  if (!socket) throw new AppError('MAIL_NETWORK_ERROR', `${where}: the connection closed after the greeting`);
  let reply = '';
  const peek = (chunk: Buffer) => {
    if (!reply) reply = chunk.toString('latin1').split('\r\n')[0] ?? '';
  };
  socket.on('data', peek);
  try {
    await pop.command('AUTH', 'XOAUTH2', payload);
  } finally {
    socket.off('data', peek);
  }
  if (reply.startsWith('+OK')) return;
  const status = challengeStatus(reply);
  // the empty answer ends the exchange; the server's -ERR that follows is expected
  await pop.command('').catch(() => undefined);
  throw new AppError('MAIL_AUTH_FAILED', `${where}: the server refused the access token (SASL XOAUTH2${status ? `, status ${status}` : ''})`);
}
