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

// Building a context parses every root certificate (tens of ms with Node's ~150 roots): done once per
// CA file and per-session CA, not per connection. Bounded, oldest first out.
const shared = new Map<string, SecureContext>();
const MAX_CONTEXTS = 256;

/** A TLS context (TLS 1.2 at least) trusting the default CAs, MSB_EXTRA_CA_FILE and `sessionCa`. */
export function outboundSecureContext(extraCaFile: string, sessionCa?: string): SecureContext {
  const key = `${extraCaFile}\u0000${sessionCa ?? ''}`;
  let context = shared.get(key);
  if (!context) {
    context = createSecureContext({ ca: [...trustedPems(extraCaFile), ...(sessionCa ? [sessionCa] : [])], minVersion: 'TLSv1.2' });
    if (shared.size >= MAX_CONTEXTS) shared.delete(shared.keys().next().value!);
    shared.set(key, context);
  }
  return context;
}
