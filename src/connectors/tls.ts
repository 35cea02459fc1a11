import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates, type ConnectionOptions } from 'node:tls';

export type StartTlsMode = 'required' | 'opportunistic' | 'off';

export interface TlsSettings {
  verifyCertificate: boolean;
  /** Extra trusted CA (PEM) for this session only, added to the default trust. */
  ca?: string;
  /** Name to verify the certificate against, when it differs from host (e.g. host is an IP). */
  servername?: string;
  starttls: StartTlsMode;
}

let defaultCas: string[] | undefined;

/**
 * Node's default trust: its bundled roots plus NODE_EXTRA_CA_CERTS. Passing `ca` to Node replaces the
 * default trust, so a per-session CA must be added to this list rather than given alone.
 */
function defaultTrust(): string[] {
  if (defaultCas) return defaultCas;
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  let extraPem: string[] = [];
  if (extra) {
    try {
      extraPem = [readFileSync(extra, 'utf8')];
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS; do the same by ignoring it
    }
  }
  defaultCas = [...rootCertificates, ...extraPem];
  return defaultCas;
}

/** Node TLS options for a mail connection: verification on unless opted out, TLS 1.2 at least. */
export function tlsOptions(host: string, tls: TlsSettings): ConnectionOptions {
  const servername = tls.servername ?? (isIP(host) ? undefined : host);
  return {
    rejectUnauthorized: tls.verifyCertificate,
    minVersion: 'TLSv1.2',
    ...(servername ? { servername } : {}),
    ...(tls.ca ? { ca: [...defaultTrust(), tls.ca] } : {}),
  };
}
