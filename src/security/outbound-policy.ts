import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { ConfigError } from '../config.js';
import { AppError } from '../errors.js';

export interface OutboundPolicyOptions {
  /** Comma-separated CIDRs, IPs, host names or `*.domain` patterns; empty = everything not denied. */
  allow: string;
  /** Comma-separated CIDRs or IPs never to connect to. */
  deny: string;
  /** Comma-separated ports, or `*`. */
  ports: string;
}

type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

function addCidr(list: BlockList, cidr: string, variable: string): void {
  const [ip, bits] = cidr.split('/');
  const family = isIP(ip ?? '');
  if (!family) throw new ConfigError(`invalid configuration: ${variable} entry "${cidr}" is not an IP or CIDR`);
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) list.addAddress(ip!, type);
  else list.addSubnet(ip!, Number(bits), type);
}

function isCidrOrIp(entry: string): boolean {
  return isIP(entry.split('/')[0] ?? '') !== 0;
}

/**
 * Denied whatever MSB_OUTBOUND_DENY says: a connection to an unspecified address goes to this machine
 * (Linux connects `::` and `0.0.0.0` to loopback), which no mail server is.
 */
const ALWAYS_DENIED = new BlockList();
ALWAYS_DENIED.addSubnet('0.0.0.0', 8, 'ipv4');
ALWAYS_DENIED.addAddress('::', 'ipv6');

/** The eight 16-bit groups of an IPv6 address (any textual form, `::` and a dotted-quad tail included). */
function ipv6Groups(address: string): number[] {
  // the WHATWG parser writes every IPv6 address in one canonical, hexadecimal form
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const part = (text: string) => (text ? text.split(':').map((g) => parseInt(g, 16)) : []);
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  return tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * The IPv4 address an IPv6 address stands for: IPv4-mapped `::ffff:a.b.c.d` (a dual-stack socket connects
 * to a.b.c.d) and the NAT64 well-known prefix `64:ff9b::a.b.c.d` (RFC 6052: a NAT64 gateway connects to
 * a.b.c.d). Such addresses are judged as that IPv4 address by the deny and allow lists.
 */
export function embeddedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const g = ipv6Groups(address);
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (!mapped && !nat64) return undefined;
  return [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join('.');
}

/** A protocol's own ports: a caller asking for those has business knowing what answers there. */
const PROTOCOL_PORTS: Readonly<Record<string, readonly number[]>> = { imap: [143, 993], pop3: [110, 995], smtp: [25, 465, 587], https: [443] };

/**
 * Where the service may connect. Clients name the hosts, which would make the service an SSRF tool:
 * names are resolved once, every address is checked against the deny and allow lists, and the
 * connection then goes to the checked address (so a second DNS answer cannot swap it).
 */
export class OutboundPolicy {
  readonly #deny = new BlockList();
  readonly #allowNets = new BlockList();
  readonly #allowNames: RegExp[] = [];
  readonly #hasAllow: boolean;
  readonly #ports: Set<number> | 'any';
  readonly #resolve: Resolver;

  constructor(options: OutboundPolicyOptions, resolve: Resolver = (host) => lookup(host, { all: true, verbatim: true })) {
    this.#resolve = resolve;
    // "none" is how an empty list is written (an empty variable means "use the default")
    const entries = (s: string) => s.split(',').map((e) => e.trim()).filter((e) => e && e !== 'none');
    for (const cidr of entries(options.deny)) addCidr(this.#deny, cidr, 'MSB_OUTBOUND_DENY');
    const allow = entries(options.allow);
    this.#hasAllow = allow.length > 0;
    for (const entry of allow) {
      if (isCidrOrIp(entry)) addCidr(this.#allowNets, entry, 'MSB_OUTBOUND_ALLOW');
      else this.#allowNames.push(new RegExp(`^${entry.toLowerCase().replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[a-z0-9-]+(?:\\.[a-z0-9-]+)*')}$`));
    }
    const ports = entries(options.ports);
    if (ports.includes('*')) this.#ports = 'any';
    else {
      this.#ports = new Set(ports.map(Number));
      if ([...this.#ports].some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new ConfigError('invalid configuration: MSB_OUTBOUND_PORTS must list ports or be *');
    }
  }

  /**
   * Checks host and port and returns the address to connect to. Throws DESTINATION_FORBIDDEN before any
   * connection is made, or MAIL_HOST_NOT_FOUND for a name that does not resolve.
   */
  async check(host: string, port: number): Promise<string> {
    const forbidden = (why: string) => new AppError('DESTINATION_FORBIDDEN', `${host}:${port} is not allowed by this server's outbound policy (${why})`);
    if (this.#ports !== 'any' && !this.#ports.has(port)) throw forbidden('port not allowed: MSB_OUTBOUND_PORTS');
    const name = host.toLowerCase();
    const nameAllowed = this.#allowNames.some((re) => re.test(name));
    // with an allow list of names only, an unlisted name is refused without even asking DNS
    if (this.#hasAllow && !nameAllowed && !isIP(name) && this.#allowNets.rules.length === 0) throw forbidden('host not in MSB_OUTBOUND_ALLOW');
    let addresses: { address: string; family: number }[];
    try {
      addresses = isIP(name) ? [{ address: name, family: isIP(name) }] : await this.#resolve(name);
    } catch (err) {
      throw new AppError('MAIL_HOST_NOT_FOUND', `${host} does not resolve (${(err as { code?: string }).code ?? 'DNS error'})`);
    }
    if (addresses.length === 0) throw new AppError('MAIL_HOST_NOT_FOUND', `${host} does not resolve`);
    for (const { address: given, family } of addresses) {
      const v4 = embeddedIpv4(given);
      const address = v4 ?? given;
      const type = v4 || family === 4 ? 'ipv4' : 'ipv6';
      const what = isIP(name) ? 'address' : `resolves to ${given}, which is`;
      if (ALWAYS_DENIED.check(address, type)) throw forbidden(`${what} unspecified (0.0.0.0/8, ::): always refused`);
      if (this.#deny.check(address, type)) throw forbidden(`${what} in MSB_OUTBOUND_DENY`);
      if (this.#hasAllow && !nameAllowed && !this.#allowNets.check(address, type)) throw forbidden('not in MSB_OUTBOUND_ALLOW');
    }
    return addresses[0]!.address;
  }

  /**
   * Whether the answers of host:port may be shown to the caller as they are: how a connection failed
   * (refused, reset, closed) and what the peer said. Yes for the protocol's own ports, for ports listed
   * explicitly in MSB_OUTBOUND_PORTS, and for hosts listed in MSB_OUTBOUND_ALLOW: destinations the
   * operator or the protocol vouch for. Elsewhere (MSB_OUTBOUND_PORTS=*, a port like 22 or 6379 of an
   * internal host) the service must not become a port scanner or a banner reader: see session-guard.ts.
   */
  discloses(host: string, port: number, protocol: string): boolean {
    if (PROTOCOL_PORTS[protocol]?.includes(port)) return true;
    if (this.#ports !== 'any' && this.#ports.has(port)) return true;
    const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    if (this.#allowNames.some((re) => re.test(name))) return true;
    const family = isIP(name);
    return family !== 0 && this.#allowNets.check(embeddedIpv4(name) ?? name, embeddedIpv4(name) || family === 4 ? 'ipv4' : 'ipv6');
  }
}
