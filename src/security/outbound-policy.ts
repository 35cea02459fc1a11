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
    for (const { address, family } of addresses) {
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (this.#deny.check(address, type)) throw forbidden(`${isIP(name) ? 'address' : `resolves to ${address}, which is`} in MSB_OUTBOUND_DENY`);
      if (this.#hasAllow && !nameAllowed && !this.#allowNets.check(address, type)) throw forbidden('not in MSB_OUTBOUND_ALLOW');
    }
    return addresses[0]!.address;
  }
}
