import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { AppError } from '../errors.js';

/**
 * Trust for outbound HTTPS to EWS and the identity provider: Node's bundled roots, the file of
 * NODE_EXTRA_CA_CERTS, and the file of MSB_EXTRA_CA_FILE, plus a per-session CA where one is given.
 * Passing `ca` to Node replaces its default trust, so everything that should stay trusted is listed.
 *
 * MSB_EXTRA_CA_FILE exists because NODE_EXTRA_CA_CERTS is read once when Node starts (one file only);
 * a deployment (or a test) can name its private CA here without changing the process environment.
 * Verification is never turned off.
 */

function readPem(file: string, variable: string, required: boolean): string[] {
  try {
    return [readFileSync(file, 'utf8')];
  } catch (err) {
    // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS; our own setting fails loudly
    if (!required) return [];
    throw new AppError('INTERNAL_ERROR', `${variable}: cannot read ${file}`, {}, { cause: err });
  }
}

function trustedPems(extraCaFile: string): string[] {
  const nodeExtra = process.env.NODE_EXTRA_CA_CERTS;
  return [
    ...rootCertificates,
    ...(nodeExtra ? readPem(nodeExtra, 'NODE_EXTRA_CA_CERTS', false) : []),
    ...(extraCaFile ? readPem(extraCaFile, 'MSB_EXTRA_CA_FILE', true) : []),
  ];
}

// Building a context parses every root certificate (a few ms): done once per CA file, not per request
const shared = new Map<string, SecureContext>();

/** A TLS context (TLS 1.2 at least) trusting the default CAs, MSB_EXTRA_CA_FILE and `sessionCa`. */
export function outboundSecureContext(extraCaFile: string, sessionCa?: string): SecureContext {
  if (sessionCa) return createSecureContext({ ca: [...trustedPems(extraCaFile), sessionCa], minVersion: 'TLSv1.2' });
  let context = shared.get(extraCaFile);
  if (!context) {
    context = createSecureContext({ ca: trustedPems(extraCaFile), minVersion: 'TLSv1.2' });
    shared.set(extraCaFile, context);
  }
  return context;
}
