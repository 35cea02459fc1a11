// The mail targets and clients every measurement shares: the users, the bare library clients (the baselines),
// the create bodies and the service's environment.
import { createHash, randomBytes } from 'node:crypto';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import Pop3Command from 'node-pop3';
import { defaultUsers } from '../../test/harness/dovecot.js';
import type { Service } from './children.js';
import type { Options } from './options.js';
import { within } from './util.js';
import { readCapabilities } from '../../src/connectors/pop3/capa.js';

export const HOST = '127.0.0.1';
export const SEQ_USER = 'alice@example.test';
export const SEQ_PASS = defaultUsers[SEQ_USER]!;
/** Pool sessions are spread over these users (Dovecot limits connections per user and IP). */
export const POOL_USERS: [string, string][] = Array.from({ length: 20 }, (_, i) => [`bench${String(i).padStart(2, '0')}@example.test`, `bench-Secret-${i}`]);

export interface Target {
  port: number;
  secure: boolean;
  ca?: string | string[] | undefined;
  secureContext?: import('node:tls').SecureContext;
}

/** The imapflow options of the service's ImapConnector (src/connectors/imap.ts), with logger: false. */
export function imapOptions(t: Target, user: string, pass: string): ImapFlowOptions {
  return {
    host: HOST,
    port: t.port,
    secure: t.secure,
    doSTARTTLS: t.secure ? undefined : false,
    tls: { minVersion: 'TLSv1.2', ...(t.ca ? { ca: t.ca } : {}), ...(t.secureContext ? { secureContext: t.secureContext } : {}) },
    auth: { user, pass },
    logger: false,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    disableAutoIdle: true,
    clientInfo: { name: 'mail-session-broker' },
  } as ImapFlowOptions;
}

export async function bareImap(t: Target, status: boolean): Promise<void> {
  const client = new ImapFlow(imapOptions(t, SEQ_USER, SEQ_PASS));
  client.on('error', () => {});
  try {
    await within(client.connect(), 30_000, 'bare imapflow connect');
    if (status) await within(client.status('INBOX', { messages: true, unseen: true }), 30_000, 'bare imapflow STATUS');
    await within(client.logout(), 30_000, 'bare imapflow LOGOUT');
  } finally {
    client.close();
  }
}

/**
 * capa: also reads the CAPA list after STAT, as the service's first login of a session does (for the server's
 * LOGIN-DELAY); read the way the service must, since node-pop3 knows CAPA only as a one-line command.
 */
export async function barePop3(port: number, capa = false): Promise<void> {
  const pop = new Pop3Command({ host: HOST, port, tls: false, user: SEQ_USER, password: SEQ_PASS, timeout: 30_000 });
  (pop as unknown as { on(e: string, f: () => void): void }).on('error', () => {});
  try {
    // login is lazy: STAT connects, sends USER and PASS, then STAT; the same wire work as the service
    await within(pop.STAT(), 30_000, 'bare node-pop3 STAT');
    if (capa) await within(readCapabilities(pop), 30_000, 'bare node-pop3 CAPA');
    await within(pop.QUIT(), 30_000, 'bare node-pop3 QUIT');
  } catch (err) {
    (pop as unknown as { _socket?: { destroy(): void } | null })._socket?.destroy();
    throw err;
  }
}

export type CreateBody = Record<string, unknown> & { name: string };

/**
 * A held IMAP session doing the bare client's wire work: `watch: []`, since a watched folder is a second
 * connection (its IDLE), which the bare client does not hold; create-cost measures watching on its own.
 */
export function imapBody(name: string, port: number, user: string, pass: string): CreateBody {
  return { name, type: 'imap', host: HOST, port, secure: false, username: user, password: pass, tls: { starttls: 'off' }, watch: [] };
}
export interface Lifecycle {
  keepalive: boolean;
  reconnectRate: boolean;
  idleTimeout: boolean;
}

// API authentication as in production (a bot key); variables an older build does not know are ignored.
export const API_KEY = `msb_bench_${randomBytes(24).toString('base64url')}`;
export const AUTH = { authorization: `Bearer ${API_KEY}` };

export function serviceEnv(n: number, opts: Options, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MSB_AUTH: 'keys',
    MSB_API_KEYS: `bench:bot:${createHash('sha256').update(API_KEY, 'utf8').digest('hex')}`,
    // off: one principal sends thousands of requests a second here
    MSB_RATE_LIMIT_PER_MINUTE: '0',
    // Dovecot listens on 127.0.0.1 on free ports: the default deny list without loopback, any port
    MSB_OUTBOUND_DENY: '0.0.0.0/8,169.254.0.0/16,fe80::/10,224.0.0.0/4,ff00::/8,255.255.255.255/32',
    MSB_OUTBOUND_PORTS: '*',
    MSB_MAX_SESSIONS: String(n + 100),
    // one principal holds every session and creates them 50 at a time here
    MSB_MAX_SESSIONS_PER_PRINCIPAL: String(n + 100),
    MSB_MAX_CONNECTING_PER_PRINCIPAL: '1000',
    MSB_MAX_CONNECTIONS: '10000',
    MSB_SUMMARY_MAX_AGE_MS: '3600000',
    MSB_KEEPALIVE_INTERVAL_MS: String(opts.keepaliveMs),
    MSB_RECONNECT_RATE_PER_SEC: String(opts.ratePerSec),
    MSB_IDLE_TIMEOUT_MS: '0',
    MSB_SHUTDOWN_TIMEOUT_MS: '60000',
    ...extra,
  };
}

/** Creates sessions p<from>..p<to-1> at `concurrency`; any failure aborts (and fails the run). */
export async function createMany(
  svc: Service, from: number, to: number, concurrency: number, port: number,
  body: (name: string, port: number, user: string, pass: string) => CreateBody = imapBody,
): Promise<{ ms: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = from;
  let failure: Error | undefined;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < to && !failure) {
      const i = next++;
      const [user, pass] = POOL_USERS[i % POOL_USERS.length]!;
      try {
        const res = await svc.http.expect('POST', '/v1/sessions', [201], body(`p${i}`, port, user, pass));
        latencies.push(res.ms);
      } catch (err) {
        failure ??= new Error(`creating session p${i} failed: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, to - from) }, worker));
  if (failure) throw failure;
  return { ms: performance.now() - started, latencies };
}
