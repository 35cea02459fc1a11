// Scriptable IMAP and POP3 servers for behaviour no real server shows on demand: a server that echoes
// the password in its refusal, advertises LOGINDISABLED, answers RFC 2449/3206 response codes
// ([LOGIN-DELAY], [IN-USE], [SYS/TEMP], [AUTH], [SYS/PERM]) or CAPA LOGIN-DELAY, and, for the fuzz
// suite, replies that are random, truncated, cut off or never come. They speak just enough of the
// protocol for imapflow and node-pop3 (the real client libraries) to reach the step a test is about.
//
// Every reply goes through `script(step, reply)`: the default returns the normal reply; a test (or
// the fuzz suite) returns another text, bytes, or an action ('close', 'reset', 'silence').
import net from 'node:net';
import tls from 'node:tls';

/** What a scripted step answers instead of the normal reply. */
export type Reply = string | Buffer | { close: true; after?: string | Buffer } | { reset: true } | { silence: true };

export type ImapStep = 'greeting' | 'capability' | 'login' | 'authenticate' | 'status' | 'logout' | 'other';
export type Pop3Step = 'greeting' | 'capa' | 'user' | 'pass' | 'auth' | 'stat' | 'quit' | 'other';

interface Common<S extends string> {
  /** Called for every reply; returns what to send instead. */
  script?: (step: S, normal: string, connection: number) => Reply;
  /** Implicit TLS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

export interface FakeImapOptions extends Common<ImapStep> {
  /** Capabilities besides IMAP4rev1 (e.g. ['LOGINDISABLED']). */
  capabilities?: string[];
  /** The tagged reply text to a LOGIN (after the tag); default OK. */
  login?: (user: string, password: string) => string;
  messages?: number;
  unseen?: number;
}

export interface FakePop3Options extends Common<Pop3Step> {
  /** CAPA lines (default: USER, RESP-CODES, and LOGIN-DELAY when loginDelaySeconds is set). */
  capa?: string[];
  loginDelaySeconds?: number;
  /** The reply to PASS (a full line, "+OK ..." or "-ERR ..."); default +OK. `attempt` counts PASS commands from 1. */
  pass?: (user: string, password: string, attempt: number) => string;
  messages?: number;
  size?: number;
}

export interface FakeServer {
  port: number;
  /** Every line received, per connection (numbered from 0 over the server's life, as `script` sees them), in order. */
  received: string[][];
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

interface Session {
  id: number;
  write(reply: Reply): void;
}

function serve(
  options: Common<string>,
  greeting: string,
  onLine: (line: string, session: Session, lines: string[]) => void,
): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const received: string[][] = [];
  let accepted = 0;
  const handler = (socket: net.Socket): void => {
    const id = accepted++;
    const lines: string[] = [];
    received.push(lines);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => { /* the client went away */ });
    let stopped = false;
    const session: Session = {
      id,
      write(reply) {
        if (stopped || socket.destroyed) return;
        if (typeof reply === 'string' || Buffer.isBuffer(reply)) socket.write(reply);
        else if ('close' in reply) {
          stopped = true;
          socket.end(reply.after ?? '');
        } else if ('reset' in reply) {
          stopped = true;
          socket.resetAndDestroy();
        } else stopped = true; // silence: read on, answer nothing more
      },
    };
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let eol: number;
      while ((eol = pending.indexOf('\r\n')) >= 0) {
        const line = pending.slice(0, eol);
        pending = pending.slice(eol + 2);
        lines.push(line);
        if (!stopped) onLine(line, session, lines);
      }
    });
    session.write(options.script ? options.script('greeting', greeting, id) : greeting);
  };
  const server = options.tls ? tls.createServer({ key: options.tls.key, cert: options.tls.cert }, handler) : net.createServer(handler);
  server.on('tlsClientError', () => { /* a client that gave up the handshake */ });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        port,
        received,
        connections: () => accepted,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The IMAP astring arguments of a command line (quoted or atoms; no literals). */
function imapArgs(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

/** An IMAP server: CAPABILITY, LOGIN, AUTHENTICATE (refused), STATUS, NOOP, LOGOUT; anything else OK. */
export function startFakeImap(options: FakeImapOptions = {}): Promise<FakeServer> {
  // read at every reply, so a test may change the options of a running server
  const caps = () => ['IMAP4rev1', ...(options.capabilities ?? [])].join(' ');
  const reply = (step: ImapStep, normal: string, s: Session): void => s.write(options.script ? options.script(step, normal, s.id) : normal);
  return serve(options as Common<string>, `* OK fake IMAP ready\r\n`, (line, s) => {
    const [tag = '*', command = '', ...rest] = line.split(' ');
    const args = imapArgs(rest.join(' '));
    switch (command.toUpperCase()) {
      case 'CAPABILITY':
        return reply('capability', `* CAPABILITY ${caps()}\r\n${tag} OK CAPABILITY completed\r\n`, s);
      case 'LOGIN':
        return reply('login', `${tag} ${options.login ? options.login(args[0] ?? '', args[1] ?? '') : 'OK LOGIN completed'}\r\n`, s);
      case 'AUTHENTICATE':
        return reply('authenticate', `${tag} NO not supported\r\n`, s);
      case 'STATUS':
        return reply('status', `* STATUS INBOX (MESSAGES ${options.messages ?? 3} UNSEEN ${options.unseen ?? 1})\r\n${tag} OK STATUS completed\r\n`, s);
      case 'LOGOUT':
        reply('logout', `* BYE bye\r\n${tag} OK LOGOUT completed\r\n`, s);
        return s.write({ close: true }); // a server ends the connection after LOGOUT
      default:
        return reply('other', `${tag} OK done\r\n`, s);
    }
  });
}

/** A POP3 server: CAPA, USER, PASS, AUTH (refused), STAT, QUIT; anything else +OK. */
export function startFakePop3(options: FakePop3Options = {}): Promise<FakeServer> {
  // read at every reply, so a test may change the options of a running server
  const capa = () => options.capa ?? ['USER', 'RESP-CODES', ...(options.loginDelaySeconds !== undefined ? [`LOGIN-DELAY ${options.loginDelaySeconds}`] : [])];
  let passes = 0;
  const reply = (step: Pop3Step, normal: string, s: Session): void => s.write(options.script ? options.script(step, normal, s.id) : normal);
  return serve(options as Common<string>, '+OK fake POP3 ready\r\n', (line, s, lines) => {
    const [command = '', ...rest] = line.split(' ');
    switch (command.toUpperCase()) {
      case 'CAPA':
        return reply('capa', `+OK capabilities\r\n${capa().map((c) => `${c}\r\n`).join('')}.\r\n`, s);
      case 'USER':
        return reply('user', '+OK send PASS\r\n', s);
      case 'PASS': {
        passes += 1;
        const user = lines.findLast((l) => /^USER /i.test(l))?.slice(5) ?? '';
        return reply('pass', `${options.pass ? options.pass(user, rest.join(' '), passes) : '+OK logged in'}\r\n`, s);
      }
      case 'AUTH':
        return reply('auth', '-ERR not supported\r\n', s);
      case 'STAT':
        return reply('stat', `+OK ${options.messages ?? 2} ${options.size ?? 1024}\r\n`, s);
      case 'QUIT':
        reply('quit', '+OK bye\r\n', s);
        return s.write({ close: true }); // a server ends the connection after QUIT
      default:
        return reply('other', '+OK\r\n', s);
    }
  });
}
