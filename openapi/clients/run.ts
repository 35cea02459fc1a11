// Drives the clients generated from openapi/openapi.json against the real service and the test Dovecot:
// started by .ci/openapi-clients after it generated them into openapi/.generated/. Each client script creates
// an IMAP session, reads its state and mailbox counts through its typed models, gets a typed problem
// (MAIL_AUTH_FAILED) for a wrong password, and deletes the session, with a real API key (MSB_AUTH=keys).
//
//   OPENAPI_PYTHON=<venv>/bin/python npx tsx openapi/clients/run.ts
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { defaultUsers, startDovecot } from '../../test/harness/dovecot.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const generated = path.resolve(here, '../.generated');
const python = process.env.OPENAPI_PYTHON;

function fail(message: string): never {
  process.stderr.write(`[openapi-clients] FAILED: ${message}\n`);
  process.exit(1);
}

// no silent skip: every piece must be there
if (!python || !existsSync(python)) fail(`OPENAPI_PYTHON (${python ?? 'unset'}) is not a Python with openapi-python-client's runtime: run .ci/openapi-clients`);
for (const file of ['python/mail_session_broker_client/__init__.py', 'typescript/schema.d.ts']) {
  if (!existsSync(path.join(generated, file))) fail(`openapi/.generated/${file} is missing: run .ci/openapi-clients`);
}

/** Runs one client script; resolves with its exit code, its output going to ours. */
function run(label: string, command: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (err) => {
      process.stderr.write(`[openapi-clients] ${label}: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

const USER = 'alice@example.test';
const dovecot = await startDovecot();
const key = `clients-${randomBytes(24).toString('hex')}`;
const app = await buildApp(
  loadConfig({
    LOG_LEVEL: 'warn',
    // imapflow logs the refused login of the wrong-password step at error level: expected here
    MSB_MAIL_LOG_LEVEL: 'fatal',
    MSB_AUTH: 'keys',
    MSB_API_KEYS: `clients:bot:${createHash('sha256').update(key).digest('hex')}`,
    // the test Dovecot listens on loopback, on random ports
    MSB_OUTBOUND_DENY: 'none',
    MSB_OUTBOUND_PORTS: '*',
  }),
);
let status = 0;
try {
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  for (const subject of ['invoice 1', 'invoice 2']) {
    await dovecot.deliver(USER, `From: supplier@example.test\r\nTo: ${USER}\r\nSubject: ${subject}\r\n\r\nPlease pay.\r\n`);
  }
  const env = {
    MSB_URL: url,
    MSB_API_KEY: key,
    IMAP_HOST: '127.0.0.1',
    IMAP_PORT: String(dovecot.ports.imaps),
    IMAP_USER: USER,
    IMAP_PASSWORD: defaultUsers[USER]!,
    IMAP_CA: dovecot.caPem,
    EXPECTED_MESSAGES: '2',
  };
  process.stdout.write(`[openapi-clients] service ${url}, Dovecot IMAPS 127.0.0.1:${dovecot.ports.imaps}\n`);
  const results = {
    python: await run('python', python, [path.join(here, 'python/smoke.py')], { ...env, PYTHONPATH: path.join(generated, 'python') }),
    typescript: await run('typescript', process.execPath, ['--import', 'tsx', path.join(here, 'typescript/smoke.ts')], env),
  };
  for (const [client, code] of Object.entries(results)) {
    process.stdout.write(`[openapi-clients] ${client} client: ${code === 0 ? 'ok' : `FAILED (exit ${code})`}\n`);
    if (code !== 0) status = 1;
  }
  if ((await app.inject({ method: 'GET', url: '/v1/sessions', headers: { authorization: `Bearer ${key}` } })).json().sessions.length !== 0) {
    process.stderr.write('[openapi-clients] FAILED: the clients left sessions behind\n');
    status = 1;
  }
} finally {
  await app.close();
  await dovecot.close();
}
process.exit(status);
