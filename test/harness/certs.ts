// Test TLS material made on the fly with the openssl CLI: a private CA, a server certificate it
// signed (valid for 127.0.0.1 and localhost), and an unrelated self-signed certificate for
// "untrusted certificate" tests. Nothing is committed to the repo and nothing outlives two days.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface TestCerts {
  dir: string;
  /** PEM file of the test CA (what a client must trust). */
  caFile: string;
  caPem: string;
  /** Server certificate signed by the CA, SAN IP:127.0.0.1, DNS:localhost. */
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** A self-signed leaf (same SANs) that no test CA vouches for. */
  selfSignedCertFile: string;
  selfSignedKeyFile: string;
}

const DAYS = '2';
const SAN = 'subjectAltName=IP:127.0.0.1,DNS:localhost';

// execFile, never a shell: the paths come from mkdtemp and need no quoting.
async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error('openssl not found: install the openssl package (see .ci/install-test-deps)');
    }
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function create(): Promise<TestCerts> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msb-certs-'));
  // The keys are throwaway, but remove them when the test process ends anyway.
  if (!process.env.MSB_KEEP_TEST_DIRS) process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  // Dovecot's config parser reads the files as root, but keep the dir traversable for
  // services that drop privileges before reading (e.g. a JVM run as another user).
  await chmod(dir, 0o755);
  const f = (name: string): string => path.join(dir, name);

  // 1. The CA: self-signed, CA:true, allowed to sign certificates.
  await openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', DAYS,
    '-keyout', f('ca.key'), '-out', f('ca.pem'),
    '-subj', '/CN=mail-session-broker test CA',
    '-addext', 'basicConstraints=critical,CA:true',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], dir);

  // 2. The server leaf: CSR, then signed by the CA with the SANs clients check.
  await openssl([
    'req', '-new', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost',
  ], dir);
  await writeFile(f('server.ext'), [
    'basicConstraints=CA:false',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    SAN,
    '',
  ].join('\n'));
  await openssl([
    'x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-days', DAYS, '-sha256', '-extfile', f('server.ext'), '-out', f('server.pem'),
  ], dir);

  // 3. An unrelated self-signed leaf with the same SANs, so that a client rejects it only
  //    because nobody vouches for it (DEPTH_ZERO_SELF_SIGNED_CERT), not for a name mismatch.
  await openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', DAYS,
    '-keyout', f('self-signed.key'), '-out', f('self-signed.pem'),
    '-subj', '/CN=localhost', '-addext', SAN,
  ], dir);

  return {
    dir,
    caFile: f('ca.pem'),
    caPem: await readFile(f('ca.pem'), 'utf8'),
    certFile: f('server.pem'),
    keyFile: f('server.key'),
    certPem: await readFile(f('server.pem'), 'utf8'),
    keyPem: await readFile(f('server.key'), 'utf8'),
    selfSignedCertFile: f('self-signed.pem'),
    selfSignedKeyFile: f('self-signed.key'),
  };
}

let cached: Promise<TestCerts> | undefined;

/** Makes the test certificates once per process; later calls share the same promise. */
export function makeCerts(): Promise<TestCerts> {
  cached ??= create();
  // A failure should not be cached forever (e.g. openssl installed mid-run): allow a retry.
  cached.catch(() => { cached = undefined; });
  return cached;
}
