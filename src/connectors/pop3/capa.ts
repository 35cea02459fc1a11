import type Pop3Command from 'node-pop3';

/**
 * The server's CAPA list (RFC 2449), or undefined when it has none (an RFC 1939 server answers -ERR).
 * node-pop3 knows CAPA only as a one-line command, so the lines after "+OK" are read off the socket as
 * they arrive, until the list's closing "."; only then may the next command go out, or its reply would
 * be taken for the rest of the list. The caller bounds the wait.
 */
export async function readCapabilities(pop: Pop3Command): Promise<string[] | undefined> {
  const socket = pop._socket;
  if (!socket) return undefined;
  let text = '';
  let done: () => void = () => undefined;
  const complete = new Promise<void>((resolve) => (done = resolve));
  const collect = (chunk: Buffer) => {
    text += chunk.toString('latin1');
    if (/^-ERR/.test(text) || /\r\n\.\r\n$/.test(text)) done();
  };
  socket.on('data', collect);
  // a server that hangs up mid-list ends the wait too (the next command then fails on the closed socket)
  socket.once('close', done);
  try {
    try {
      await pop.command('CAPA');
    } catch {
      return undefined; // -ERR: no CAPA
    }
    await complete;
  } finally {
    socket.off('data', collect);
    socket.off('close', done);
  }
  return text.split('\r\n').slice(1, -2).map((line) => line.trim()).filter(Boolean);
}

/**
 * The minimum seconds between logins the server asks for (`LOGIN-DELAY n`, RFC 2449 6.5), 0 for none.
 * Read after login, where the value is the user's own; before login a server gives its largest one.
 */
export function loginDelaySeconds(capabilities: readonly string[] | undefined): number {
  for (const line of capabilities ?? []) {
    const m = /^LOGIN-DELAY\s+(\d{1,9})\b/i.exec(line);
    // a day at most: a server that asks for more is taken to mean "rarely", not "never again"
    if (m) return Math.min(Number(m[1]), MAX_LOGIN_DELAY_S);
  }
  return 0;
}

const MAX_LOGIN_DELAY_S = 86_400;
