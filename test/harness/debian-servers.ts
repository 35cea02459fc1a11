// Running mail servers from unpacked Debian packages (Cyrus IMAP, Courier), shared by cyrus.ts and
// courier.ts.
//
// cyrus-imapd and courier-imap conflict with dovecot-imapd as packages (all provide imap-server), so
// .ci/install-test-deps does not install them: it unpacks them (apt-get download + dpkg-deb -x) into
// a cache folder. Their programs have compiled-in paths (/usr/lib/cyrus/bin, /usr/lib/courier-authlib,
// /etc/courier, /run/courier, /dev/log), so each server runs in private namespaces:
//   - a mount namespace in which the unpacked usr/ is overlaid (read-only) on /usr, and test folders
//     appear where the programs look (/etc/courier, /run, /dev/log), and nothing leaks to the host;
//   - a PID namespace whose init is the start script: when it ends, the kernel kills whatever is
//     left inside (couriertcpd calls setsid(), so a process-group signal alone would miss it).
// The script traps SIGTERM and passes it to everything in the namespace (`kill -TERM -1`), so a stop
// is a clean shutdown; SIGKILL of `unshare` (--kill-child) is the last resort.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { killGroupOnExit } from './dovecot.js';
import { canConnect, waitForPortClosed } from './ports.js';

/** Where .ci/install-test-deps unpacks the packages (MSB_DEBIAN_SERVERS_DIR overrides). */
export function debianServersDir(): string {
  if (process.env.MSB_DEBIAN_SERVERS_DIR) return process.env.MSB_DEBIAN_SERVERS_DIR;
  const cache = process.env.MSB_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'mail-session-broker');
  return path.join(cache, 'debian-servers');
}

/**
 * The unpacked root (with usr/ inside), after checking that everything a server needs is there.
 * Throws an error that says what to run: a test that needs Cyrus or Courier fails, never skips.
 */
export function unpackedRoot(what: string, files: readonly string[]): string {
  const dir = debianServersDir();
  const root = path.join(dir, 'root');
  const hint = 'run .ci/install-test-deps (as root or with sudo; it unpacks the Debian packages there), or set MSB_DEBIAN_SERVERS_DIR';
  if (!existsSync(path.join(dir, '.unpacked'))) throw new Error(`${what}: no unpacked Debian packages in ${dir}: ${hint}`);
  for (const file of files) {
    if (!existsSync(path.join(root, file))) throw new Error(`${what}: ${path.join(root, file)} is missing: ${hint}`);
  }
  if (process.getuid?.() !== 0) throw new Error(`${what}: runs in a mount namespace, which needs root (the tests run as root in CI)`);
  return root;
}

/** The package versions that were unpacked, e.g. { 'cyrus-imapd': '3.6.1-4+deb12u5' }. */
export function unpackedVersions(): Record<string, string> {
  const stamp = readFileSync(path.join(debianServersDir(), '.unpacked'), 'utf8').split('\n').slice(1);
  return Object.fromEntries(stamp.filter(Boolean).map((line) => line.split(' ') as [string, string]));
}

/** `sh -c` quoting. */
export function shq(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

export interface Mounts {
  /** The unpacked root; its usr/ is overlaid on /usr. */
  root: string;
  /** A folder whose entries appear in /etc (e.g. a `courier` symlink to a test folder). */
  etc?: string;
  /** A folder whose entries appear in /dev (e.g. a `log` symlink to a syslog socket). */
  dev?: string;
  /** A folder bound over /run. */
  run?: string;
}

/**
 * Shell lines that set the mounts up. The overlays have no upper layer (read-only, so any number of
 * namespaces may mount the same folders at once); what must be writable is a symlink in the lower
 * layer pointing at a test folder outside.
 */
export function mountScript(m: Mounts): string {
  const lines = ['set -e', `mount -t overlay msb-usr -o lowerdir=${shq(`${m.root}/usr`)}:/usr /usr`];
  if (m.etc) lines.push(`mount -t overlay msb-etc -o lowerdir=${shq(m.etc)}:/etc /etc`);
  if (m.dev) lines.push(`mount -t overlay msb-dev -o lowerdir=${shq(m.dev)}:/dev /dev`);
  if (m.run) lines.push(`mount --bind ${shq(m.run)} /run`);
  return lines.join('\n');
}

const UNSHARE = ['--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private'];

/** Runs a short script in its own namespaces (e.g. to add a user); rejects with its output on failure. */
export function runNamespaced(mounts: Mounts, script: string, stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('unshare', [...UNSHARE, 'sh', '-c', `${mountScript(mounts)}\n${script}`], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`namespaced command failed (${err.message.split('\n')[0]}):\n${script}\n--- output ---\n${stdout}${stderr}`));
      else resolve(`${stdout}${stderr}`);
    });
    child.stdin?.end(stdin ?? '');
  });
}

export interface NamespacedServer {
  /** Starts the script; resolves once every port accepts connections. */
  start(): Promise<void>;
  /** SIGTERM (clean shutdown inside), SIGKILL after 5 s; resolves once the ports are free. */
  stop(): Promise<void>;
}

/**
 * A long-running server: `script` starts the daemons in the background (after the mounts); the
 * wrapper waits for them and turns SIGTERM into `kill -TERM -1` inside the PID namespace.
 */
export function namespacedServer(opts: {
  what: string;
  mounts: Mounts;
  script: string;
  ports: Record<string, number>;
  /** stdout and stderr of everything inside go here (never into a pipe we would have to drain). */
  outFile: string;
  /** Extra text for a start failure (e.g. the server's syslog). */
  diagnostics: () => string;
}): NamespacedServer {
  let child: ChildProcess | undefined;
  let unregister: (() => void) | undefined;
  let exited: Promise<void> = Promise.resolve();
  let exitInfo: string | undefined;
  const wrapper = [
    mountScript(opts.mounts),
    'set +e',
    // pid 1 of the namespace gets only the signals it has a handler for
    "trap 'kill -TERM -1 2>/dev/null; wait; exit 0' TERM INT",
    opts.script,
    'wait',
  ].join('\n');

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    if (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
      try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* gone */ }
      const late = await Promise.race([exited.then(() => false), sleep(5000, undefined, { ref: false }).then(() => true)]);
      // unshare --kill-child takes the namespace's init with it, and the kernel the rest
      if (late) { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }
      await exited;
    }
    unregister?.();
    unregister = undefined;
    child = undefined;
    for (const [name, port] of Object.entries(opts.ports)) await waitForPortClosed(port, '127.0.0.1', 5000, `stopped ${opts.what}'s ${name} listener`);
  }

  async function start(): Promise<void> {
    if (child) throw new Error(`${opts.what}: already running`);
    const out = openSync(opts.outFile, 'a');
    const proc = spawn('unshare', [...UNSHARE, 'sh', '-c', wrapper], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child = proc;
    exitInfo = undefined;
    exited = new Promise((resolve) => {
      proc.once('error', (err) => { exitInfo = `spawn error: ${err.message}`; resolve(); });
      proc.once('exit', (code, signal) => { exitInfo = `exit code ${code}, signal ${signal}`; resolve(); });
    });
    if (proc.pid !== undefined) unregister = killGroupOnExit(proc.pid);
    const deadline = Date.now() + 20_000;
    try {
      for (const [name, port] of Object.entries(opts.ports)) {
        for (;;) {
          if (exitInfo !== undefined) throw new Error(`it exited early: ${exitInfo}`);
          if (await canConnect(port)) break;
          if (Date.now() >= deadline) throw new Error(`its ${name} port ${port} never accepted a TCP connection within 20 s`);
          await sleep(25);
        }
      }
    } catch (err) {
      await stop().catch(() => undefined);
      const out = (() => { try { return readFileSync(opts.outFile, 'utf8'); } catch { return ''; } })();
      throw new Error(`${opts.what} did not start (${(err as Error).message})\n--- output ---\n${tail(out)}\n${opts.diagnostics()}`);
    }
  }

  return { start, stop };
}

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export interface SyslogSink {
  /** Every message received so far, one a line, without the <priority> prefix. */
  text(): string;
  close(): Promise<void>;
}

/**
 * A stand-in for /dev/log: a Unix stream socket (glibc's syslog() falls back to SOCK_STREAM when
 * the socket is not a datagram one) that collects the lines, for servers that log only to syslog.
 */
export async function startSyslogSink(socketPath: string): Promise<SyslogSink> {
  await rm(socketPath, { force: true });
  let text = '';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      // stream syslog: one message per NUL (glibc) or newline
      pending += chunk;
      const parts = pending.split(/[\0\n]/);
      pending = parts.pop() ?? '';
      for (const part of parts) if (part) text += `${part.replace(/^<\d+>/, '')}\n`;
    });
    socket.on('error', () => { /* the logging process went away */ });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  server.unref();
  // the servers log as an unprivileged user after dropping root
  await new Promise<void>((resolve, reject) => execFile('chmod', ['666', socketPath], (err) => (err ? reject(err) : resolve())));
  return {
    text: () => text,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Polls `read` until `re` matches at least `count` lines; fails with the text's tail. */
export async function waitForLines(what: string, read: () => Promise<string>, re: RegExp, count = 1, timeoutMs = 5000): Promise<void> {
  const plain = new RegExp(re.source, re.flags.replace(/[gy]/g, ''));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await read();
    const seen = text.split('\n').filter((line) => plain.test(line)).length;
    if (seen >= count) return;
    if (Date.now() >= deadline) throw new Error(`${what}: expected ${count} line(s) matching ${re} within ${timeoutMs} ms, saw ${seen}.\n--- tail ---\n${tail(text)}`);
    await sleep(25);
  }
}

/** Number of lines of `text` matching `re`. */
export function countLines(text: string, re: RegExp): number {
  const plain = new RegExp(re.source, re.flags.replace(/[gy]/g, ''));
  return text.split('\n').filter((line) => plain.test(line)).length;
}
