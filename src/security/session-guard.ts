import type { MailCapabilities } from '../domain/mail.js';
import type { Connector, ConnectorContext } from '../domain/connector.js';
import { AppError, isAppError, type ErrorCode } from '../errors.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import type { OutboundPolicy } from './outbound-policy.js';

/** A value that came by reference ({"secret": name}) and must be shown as that reference wherever a caller reads it. */
export interface ReferencedValue {
  name: string;
  value: string;
}

export interface SessionGuardOptions {
  outbound: OutboundPolicy;
  referenced: readonly ReferencedValue[];
  /** The identity provider host the server is configured with (MSB_OAUTH_AUTHORITY_HOST): vouched for by the operator. */
  configuredAuthority: string;
}

/** Errors that tell how a connection failed or carry what the peer said before it proved to be a mail server. */
const CONNECTION_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MAIL_CONNECTION_REFUSED',
  'MAIL_NETWORK_ERROR',
  'MAIL_PROTOCOL_ERROR',
  'MAIL_TLS_FAILED',
  'MAIL_STARTTLS_UNAVAILABLE',
  'EWS_ACCESS_DENIED',
  'GRAPH_ACCESS_DENIED',
  'GRAPH_MAILBOX_NOT_FOUND',
  'GRAPH_UNAVAILABLE',
  'GRAPH_THROTTLED',
]);
const PROVIDER_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['OAUTH_PROVIDER_ERROR', 'OAUTH_PROVIDER_UNAVAILABLE']);
/** The SMTP server's failures that tell how its connection failed or carry what it said (its reply code too). */
const SMTP_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['SMTP_UNAVAILABLE', 'SMTP_REJECTED', 'SMTP_AUTH_FAILED']);

interface Peer {
  label: string;
  host: string;
  port: number;
  protocol: string;
}

/**
 * What a caller may read of a session's failures, applied in one place to every error its connector
 * raises (connect, summary and every operation to come):
 *
 * 1. A value given by reference is shown as `secret:<name>`, also where a server echoed it (an IMAP
 *    server repeating the user name, Exchange naming the X-AnchorMailbox).
 * 2. Until the session has connected once, a failure at a destination the service does not vouch for
 *    (OutboundPolicy.discloses: not the protocol's own port, not listed by the operator) says neither how
 *    the connection failed nor what the peer sent: refused, reset, closed, a banner or a TLS failure all
 *    read "connection closed by server" (MAIL_NETWORK_ERROR), and a rejected login carries no server
 *    text. So a bot cannot use the service to map which internal ports are open or to read their
 *    banners. A timeout stays a timeout: a silent port looks the same either way. Once a session has
 *    connected, the peer has proved to be the mail server the caller named, and its errors are shown.
 *
 * The same holds for an identity provider or token endpoint that the caller named (auth.authorityHost,
 * auth.tokenUrl): its failures then read "no usable answer"; and for the SMTP server of an IMAP/POP3
 * session (smtp.host), verified in the first connect: SMTP_UNAVAILABLE "connection closed by server", or
 * SMTP_AUTH_FAILED without the server's text or reply code.
 */
export function guardSession(prepared: PreparedSession, options: SessionGuardOptions): PreparedSession {
  const peers = peersOf(prepared, options.configuredAuthority);
  const mail = peers.main ? options.outbound.discloses(peers.main.host, peers.main.port, peers.main.protocol) : true;
  const provider = peers.provider ? options.outbound.discloses(peers.provider.host, peers.provider.port, 'https') : true;
  const smtp = peers.smtp ? options.outbound.discloses(peers.smtp.host, peers.smtp.port, 'smtp') : true;
  const referenced = options.referenced.filter((r) => r.value.length >= 3);
  return {
    ...prepared,
    createConnector: (ctx: ConnectorContext) => {
      let proven = false;
      const rewrite = (err: unknown): unknown => {
        if (!isAppError(err)) return err;
        let code = err.code;
        let detail = err.message;
        let extra = err.extra;
        if (!proven && !mail && peers.main && CONNECTION_CODES.has(code)) {
          code = 'MAIL_NETWORK_ERROR';
          detail = `${peers.main.label}: connection closed by server`;
        } else if (!proven && !mail && peers.main && code === 'MAIL_AUTH_FAILED') {
          detail = `${peers.main.label}: the server rejected the credentials`;
        } else if (!proven && !smtp && peers.smtp && SMTP_CODES.has(code)) {
          code = code === 'SMTP_AUTH_FAILED' ? code : 'SMTP_UNAVAILABLE';
          detail = `${peers.smtp.label}: ${code === 'SMTP_AUTH_FAILED' ? 'the server rejected the credentials' : 'connection closed by server'}`;
          extra = {};
        } else if (!provider && peers.provider && PROVIDER_CODES.has(code)) {
          code = 'OAUTH_PROVIDER_UNAVAILABLE';
          detail = `${peers.provider.label}: no usable answer`;
        }
        for (const r of referenced) detail = detail.split(r.value).join(`secret:${r.name}`);
        return code === err.code && detail === err.message ? err : new AppError(code, detail, extra, { cause: err });
      };
      // a Proxy rather than a wrapper class: every method the connector has, now or later, and every method of
      // its capabilities (reader, sender...: found by their presence), is passed through with its errors rewritten
      const guard = <T extends object>(target: T, depth: number): T =>
        new Proxy(target, {
          get(obj, property, receiver) {
            const value: unknown = Reflect.get(obj, property, receiver);
            if (depth === 0 && typeof value === 'object' && value !== null && CAPABILITIES.has(String(property))) return guard(value, 1);
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              let result: unknown;
              try {
                result = (value as (...a: unknown[]) => unknown).apply(obj, args);
              } catch (err) {
                throw rewrite(err);
              }
              if (!(result instanceof Promise)) return result;
              return result.then(
                (ok) => {
                  if (depth === 0 && property === 'connect') proven = true;
                  return ok;
                },
                (err: unknown) => {
                  throw rewrite(err);
                },
              );
            };
          },
        });
      return guard(prepared.createConnector(ctx), 0) as Connector;
    },
  };
}

/** The members of a connector that are capabilities (objects whose methods are mail operations). */
const CAPABILITIES: ReadonlySet<string> = new Set<keyof MailCapabilities>(['reader', 'flagger', 'mover', 'deleter', 'sender', 'tagger', 'watcher']);

/** The destinations a session talks to, from its public view: the mail or HTTPS host, and a caller-named identity provider. */
function peersOf(prepared: PreparedSession, configuredAuthority: string): { main?: Peer; provider?: Peer; smtp?: Peer } {
  const view = prepared.view as { host?: unknown; port?: unknown; auth?: { authorityHost?: unknown; tokenUrl?: unknown }; smtp?: { host?: unknown; port?: unknown } };
  const protocol = prepared.type === 'imap' || prepared.type === 'pop3' ? prepared.type : 'https';
  const out: { main?: Peer; provider?: Peer; smtp?: Peer } = {};
  if (typeof view.smtp?.host === 'string' && typeof view.smtp.port === 'number') {
    out.smtp = { label: `SMTP ${view.smtp.host}:${view.smtp.port}`, host: view.smtp.host, port: view.smtp.port, protocol: 'smtp' };
  }
  if (typeof view.host === 'string' && typeof view.port === 'number') {
    out.main = { label: `${prepared.type.toUpperCase()} ${view.host}:${view.port}`, host: view.host, port: view.port, protocol };
  }
  const authority = typeof view.auth?.authorityHost === 'string' ? view.auth.authorityHost : undefined;
  const tokenUrl = typeof view.auth?.tokenUrl === 'string' ? view.auth.tokenUrl : undefined;
  const named = tokenUrl ? safeUrl(tokenUrl) : authority && authority !== configuredAuthority.toLowerCase() ? safeUrl(`https://${authority}`) : undefined;
  if (named) {
    out.provider = { label: `identity provider ${named.host}`, host: named.hostname, port: named.port ? Number(named.port) : 443, protocol: 'https' };
  }
  return out;
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
