import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { outboundSecureContext } from '../net/trust.js';

export type StartTlsMode = 'required' | 'opportunistic' | 'off';

export interface TlsSettings {
  verifyCertificate: boolean;
  /** Extra trusted CA (PEM) for this session only, added to the default trust. */
  ca?: string;
  /** Name to verify the certificate against, when it differs from host (e.g. host is an IP). */
  servername?: string;
  starttls: StartTlsMode;
  /** MSB_EXTRA_CA_FILE: CAs trusted in addition to Node's default trust, for every outbound TLS. */
  extraCaFile: string;
}

/** Node TLS options for a mail connection: verification on unless opted out, TLS 1.2 at least. */
export function tlsOptions(host: string, tls: TlsSettings): ConnectionOptions {
  const servername = tls.servername ?? (isIP(host) ? undefined : host);
  return {
    rejectUnauthorized: tls.verifyCertificate,
    minVersion: 'TLSv1.2',
    ...(servername ? { servername } : {}),
    // the same trust as EWS and the identity provider: Node's roots, NODE_EXTRA_CA_CERTS, MSB_EXTRA_CA_FILE, tls.ca
    secureContext: outboundSecureContext(tls.extraCaFile, tls.ca),
  };
}
