// A private Redis (Debian's redis-server 7) for the replica tests: its own temp dir, a free loopback
// port, a password (AUTH), optionally TLS with a test CA. No persistence by default, so that a restart
// loses every key: the hardest case for "nothing is lost when it comes back" (the replicas write again
// what they hold). The process runs detached and is killed with the test process (killGroupOnExit).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCerts, type TestCerts } from './certs.js';
import { killGroupOnExit, removeDirOnExit } from './dovecot.js';
import { canConnect, freePort, waitForPortClosed } from './ports.js';

export interface RedisServer {
  port: number;
  password: string;
  /** redis:// (or rediss:// with tls) URL with the password, for MSB_REDIS_URL. */
  url: string;
  /** With tls: the CA file that signed the server certificate (MSB_REDIS_CA_FILE). */
  caFile?: string;
  dir: string;
  /** Stops the server (SIGKILL when `hard`), keeping the port; with persistence off every key is gone. */
  stop(hard?: boolean): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
  log(): Promise<string>;
}

export interface RedisOptions {
  tls?: boolean;
  /** Append-only file on: a restart keeps the data. */
  persistent?: boolean;
}

function findRedis(): string {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin']) {
    if (!dir) continue;
    const candidate = path.join(dir, 'redis-server');
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error('redis-server not found: install Debian\'s redis-server (run .ci/install-test-deps)');
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const bin = findRedis();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msb-redis-'));
  const forgetDir = removeDirOnExit(dir);
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  let certs: TestCerts | undefined;
  if (options.tls) certs = await makeCerts();
  const args = [
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--logfile', path.join(dir, 'redis.log'),
    '--requirepass', password,
    '--save', '',
    '--appendonly', options.persistent ? 'yes' : 'no',
    '--maxclients', '10000',
    ...(certs
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', certs.certFile, '--tls-key-file', certs.keyFile, '--tls-ca-cert-file', certs.caFile, '--tls-auth-clients', 'no']
      : ['--port', String(port)]),
  ];
  let child: ChildProcess | undefined;
  let unregister: (() => void) | undefined;

  async function start(): Promise<void> {
    if (child) throw new Error('startRedis: already running');
    const proc = spawn(bin, args, { detached: true, stdio: 'ignore' });
    child = proc;
    let exited = false;
    proc.once('exit', () => (exited = true));
    if (proc.pid !== undefined) unregister = killGroupOnExit(proc.pid);
    const deadline = Date.now() + 15_000;
    while (!(await canConnect(port))) {
      if (exited) throw new Error(`redis-server exited at start:\n${await readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => '')}`);
      if (Date.now() > deadline) throw new Error('redis-server did not listen within 15 s');
      await sleep(20);
    }
  }

  async function stop(hard = false): Promise<void> {
    const proc = child;
    if (!proc) return;
    const exited = new Promise((resolve) => (proc.exitCode !== null ? resolve(undefined) : proc.once('exit', resolve)));
    proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    unregister?.();
    child = undefined;
    await waitForPortClosed(port, '127.0.0.1', 5000, 'stopped redis-server');
  }

  await start();
  return {
    port,
    password,
    url: `${certs ? 'rediss' : 'redis'}://:${password}@${certs ? 'localhost' : '127.0.0.1'}:${port}`,
    ...(certs ? { caFile: certs.caFile } : {}),
    dir,
    stop,
    start,
    log: () => readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => ''),
    async close() {
      await stop(true);
      forgetDir();
      if (!process.env.MSB_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
    },
  };
}
