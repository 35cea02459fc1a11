/**
 * A process-wide guard that lets no packet leave the machine: every DNS query and every TCP or UDP
 * connection to anything but loopback is refused before it happens, and recorded. The fuzz tests install
 * it in their own process; .ci/schemathesis preloads it into the service (`MSB_NET_GUARD=1 node --import
 * tsx --import ./test/security/net-guard.ts dist/server.js`), where each attempt is also written to stderr
 * as one line starting with "NET-GUARD".
 *
 * Covered: dns.lookup / dns.promises.lookup (getaddrinfo), every dns resolve* / reverse function and
 * Resolver method (c-ares), net.Socket#connect (net, tls, http, https, fetch/undici, http2 all go through
 * it) and dgram sockets. Loopback (127.0.0.0/8, ::1, "localhost") and local sockets (paths) pass.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

export interface NetAttempt {
  kind: 'dns' | 'tcp' | 'udp';
  target: string;
  /** Where it came from: the first frames of the stack outside this file. */
  from: string;
}

/** Every refused attempt since the guard was installed, in order. */
export const netAttempts: NetAttempt[] = [];

let installed = false;

/** Loopback addresses and names: the only destinations that may be reached. */
export function isLoopback(host: string | undefined): boolean {
  if (host === undefined || host === '') return true; // net's default host is localhost
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped ? mapped[1]!.startsWith('127.') : false;
}

function origin(): string {
  const lines = (new Error().stack ?? '').split('\n').slice(1);
  return lines
    .filter((l) => !l.includes('net-guard'))
    .slice(0, 4)
    .map((l) => l.trim())
    .join(' < ');
}

function record(kind: NetAttempt['kind'], target: string): NetAttempt {
  const attempt = { kind, target, from: origin() };
  netAttempts.push(attempt);
  if (process.env.MSB_NET_GUARD === '1') process.stderr.write(`NET-GUARD blocked ${kind} ${target} from ${attempt.from}\n`);
  return attempt;
}

function refused(code: string, syscall: string, target: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} ${code} ${target} (blocked by the test network guard)`), { code, syscall, hostname: target });
}

type AnyFn = (...args: unknown[]) => unknown;

/** Installs the guard once per process; later calls do nothing. */
export function installNetGuard(): void {
  if (installed) return;
  installed = true;

  // getaddrinfo: callback and promise forms (net.connect calls dns.lookup at call time)
  const lookup = dns.lookup as unknown as AnyFn;
  (dns as unknown as Record<string, unknown>).lookup = function guardedLookup(this: unknown, hostname: string, ...rest: unknown[]) {
    if (isLoopback(hostname)) return lookup.call(this, hostname, ...rest);
    record('dns', `lookup ${hostname}`);
    const callback = rest[rest.length - 1];
    if (typeof callback === 'function') process.nextTick(() => (callback as AnyFn)(refused('ENOTFOUND', 'getaddrinfo', hostname)));
    return {};
  };
  const lookupP = dnsPromises.lookup as unknown as AnyFn;
  const guardedLookupP = function guardedLookupP(this: unknown, hostname: string, ...rest: unknown[]) {
    if (isLoopback(hostname)) return lookupP.call(this, hostname, ...rest);
    record('dns', `lookup ${hostname}`);
    return Promise.reject(refused('ENOTFOUND', 'getaddrinfo', hostname));
  };
  (dnsPromises as unknown as Record<string, unknown>).lookup = guardedLookupP;
  (dns.promises as unknown as Record<string, unknown>).lookup = guardedLookupP;

  // c-ares queries: never needed by the service, always refused
  const resolvers = Object.keys(dns).filter((k) => /^(resolve|reverse|lookupService)/.test(k));
  for (const name of resolvers) {
    (dns as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      record('dns', `${name} ${String(args[0])}`);
      const callback = args[args.length - 1];
      if (typeof callback === 'function') process.nextTick(() => (callback as AnyFn)(refused('ECONNREFUSED', name, String(args[0]))));
    };
  }
  for (const name of Object.keys(dnsPromises).filter((k) => /^(resolve|reverse|lookupService)/.test(k))) {
    const blocked = async (...args: unknown[]) => {
      record('dns', `${name} ${String(args[0])}`);
      throw refused('ECONNREFUSED', name, String(args[0]));
    };
    (dnsPromises as unknown as Record<string, unknown>)[name] = blocked;
    (dns.promises as unknown as Record<string, unknown>)[name] = blocked;
  }
  for (const proto of [dns.Resolver.prototype, dnsPromises.Resolver.prototype] as unknown as Record<string, unknown>[]) {
    for (const name of Object.getOwnPropertyNames(proto).filter((k) => /^(resolve|reverse)/.test(k))) {
      proto[name] = function blockedResolver(...args: unknown[]) {
        record('dns', `Resolver.${name} ${String(args[0])}`);
        const callback = args[args.length - 1];
        const err = refused('ECONNREFUSED', name, String(args[0]));
        if (typeof callback === 'function') {
          process.nextTick(() => (callback as AnyFn)(err));
          return undefined;
        }
        return Promise.reject(err);
      };
    }
  }

  // TCP (and TLS, HTTP(S), fetch, which all end here)
  const connect = net.Socket.prototype.connect as unknown as AnyFn;
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    let host: string | undefined;
    let pipe = false;
    if (first && typeof first === 'object') {
      const options = first as { host?: string | null; path?: unknown };
      host = options.host ?? undefined;
      // exactly net's own test: a truthy path is a local (IPC) socket, anything else goes to host:port
      pipe = Boolean(options.path);
    } else if (typeof first === 'string' && !/^\d+$/.test(first)) {
      pipe = true;
    } else if (typeof args[1] === 'string') {
      host = args[1];
    }
    if (pipe || isLoopback(host)) return connect.apply(this, args);
    const port = first && typeof first === 'object' ? (first as { port?: unknown }).port : first;
    record('tcp', `${host}:${String(port)}`);
    process.nextTick(() => this.destroy(refused('ECONNREFUSED', 'connect', `${host}:${String(port)}`)));
    return this;
  } as typeof net.Socket.prototype.connect;

  // UDP
  const send = dgram.Socket.prototype.send as unknown as AnyFn;
  dgram.Socket.prototype.send = function guardedSend(this: dgram.Socket, ...args: unknown[]) {
    let host: string | undefined;
    try {
      host = this.remoteAddress().address;
    } catch {
      host = args.find((a, i) => i > 0 && typeof a === 'string') as string | undefined;
      if (host === undefined) host = 'localhost';
    }
    if (isLoopback(host)) return send.apply(this, args);
    record('udp', String(host));
    const callback = args[args.length - 1];
    if (typeof callback === 'function') process.nextTick(() => (callback as AnyFn)(refused('ECONNREFUSED', 'send', String(host))));
    return undefined;
  } as typeof dgram.Socket.prototype.send;
  const udpConnect = dgram.Socket.prototype.connect as unknown as AnyFn;
  dgram.Socket.prototype.connect = function guardedUdpConnect(this: dgram.Socket, port: number, ...rest: unknown[]) {
    const host = typeof rest[0] === 'string' ? rest[0] : undefined;
    if (isLoopback(host)) return udpConnect.call(this, port, ...rest);
    record('udp', `${host}:${port}`);
    throw refused('ECONNREFUSED', 'connect', `${host}:${port}`);
  } as typeof dgram.Socket.prototype.connect;

  // ES module named imports (import { lookup } from 'node:dns/promises') see the patched functions too
  syncBuiltinESMExports();
}

if (process.env.MSB_NET_GUARD === '1') {
  installNetGuard();
  process.stderr.write('NET-GUARD installed: only loopback may be reached\n');
}
