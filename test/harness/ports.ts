// Small TCP helpers shared by the test servers: pick a free loopback port, and wait until
// something listens on one. Only 127.0.0.1 is ever used: tests must not touch other hosts.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Asks the kernel for a free port on 127.0.0.1 (listen on port 0, read it, close).
 * There is a small window before the caller binds it; that is acceptable for tests.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: listening socket has no TCP address'));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}

/** One TCP connect attempt; resolves true when something accepted the connection. */
export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls until a TCP connect to host:port succeeds. `what` names the thing being waited
 * for (e.g. "dovecot imaps listener") so that a timeout says what never came up.
 */
export async function waitForPort(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 15000,
  what = 'a TCP listener',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await canConnect(port, host, Math.min(1000, timeoutMs))) return;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} on ${host}:${port} (TCP connect never succeeded)`);
    }
    await sleep(25);
  }
}

/** The opposite of waitForPort: polls until nothing accepts connections on host:port. */
export async function waitForPortClosed(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 5000,
  what = 'a TCP listener',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await canConnect(port, host, 500)) {
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} on ${host}:${port} to stop accepting connections`);
    }
    await sleep(25);
  }
}
