// Replicas of the service as real processes (`node --import tsx src/server.ts`, as test/server.test.ts
// runs it), each reaching Redis through its own TCP proxy, so that a test can cut one replica off Redis
// (a partition) while the others still reach it. Also: Dovecot's log read as login intervals per user.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_ENV } from '../helper.js';
import { killGroupOnExit } from './dovecot.js';
import { freePort, waitForPort } from './ports.js';
import { startTcpProxy, type TcpProxy } from './tcp-tools.js';

const SERVER = new URL('../../src/server.ts', import.meta.url).pathname;

export interface Replica {
  name: string;
  port: number;
  url: string;
  /** This replica's way to Redis: blackhole(true) cuts it off. */
  redisProxy: TcpProxy;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
}

/** Starts one replica; resolves once it listens. `redis` is where the proxy forwards to. */
export async function startReplica(name: string, redis: { port: number; password: string }, env: Record<string, string>): Promise<Replica> {
  const port = await freePort();
  const redisProxy = await startTcpProxy({ host: '127.0.0.1', port: redis.port });
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: {
      ...process.env,
      ...TEST_ENV,
      LOG_LEVEL: 'info',
      MSB_MAIL_LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      MSB_REPLICA_URL: url,
      MSB_REDIS_URL: `redis://:${redis.password}@127.0.0.1:${redisProxy.port}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const unregister = child.pid !== undefined ? killGroupOnExit(child.pid) : () => {};
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => {
    unregister();
    return code as number | null;
  });
  try {
    await waitForPort(port, '127.0.0.1', 60_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`replica ${name} did not listen: ${(err as Error).message}\n${text}`);
  }
  return { name, port, url, redisProxy, child, output: () => text, exited };
}

export async function stopReplica(replica: Replica, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  if (replica.child.exitCode === null && replica.child.signalCode === null) replica.child.kill(signal);
  const code = await Promise.race([replica.exited, sleep(30_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') {
    replica.child.kill('SIGKILL');
    throw new Error(`replica ${replica.name} did not exit within 30 s after ${signal}:\n${replica.output().slice(-4000)}`);
  }
  await replica.redisProxy.close();
  return code;
}

/** One IMAP or POP3 connection as Dovecot logged it: from its login to its disconnect (Infinity while open). */
export interface LoginInterval {
  user: string;
  session: string;
  from: number;
  to: number;
}

/** Parses a Dovecot log written with preciseLog (microsecond timestamps) into login intervals. */
export function loginIntervals(log: string): LoginInterval[] {
  const open = new Map<string, LoginInterval>();
  const done: LoginInterval[] = [];
  const stamp = (line: string) => {
    const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{6}) /.exec(line);
    return m ? Date.parse(`${m[1]!.replace(' ', 'T')}Z`) + Number(m[2]) / 1000 : NaN;
  };
  for (const line of log.split('\n')) {
    const login = /(?:imap|pop3)-login: Info: Login: user=<([^>]+)>.*session=<([^>]+)>/.exec(line);
    if (login) {
      open.set(login[2]!, { user: login[1]!, session: login[2]!, from: stamp(line), to: Infinity });
      continue;
    }
    const end = /(?:imap|pop3)\(([^)]+)\)<\d+><([^>]+)>: Info: (?:Disconnected|Logged out|Connection closed)/.exec(line);
    if (end) {
      const interval = open.get(end[2]!);
      if (!interval) continue;
      interval.to = stamp(line);
      open.delete(end[2]!);
      done.push(interval);
    }
  }
  return [...done, ...open.values()];
}

/** Pairs of connections of one user that were logged in at the same time. */
export function overlaps(intervals: LoginInterval[]): [LoginInterval, LoginInterval][] {
  const byUser = new Map<string, LoginInterval[]>();
  for (const i of intervals) byUser.set(i.user, [...(byUser.get(i.user) ?? []), i]);
  const out: [LoginInterval, LoginInterval][] = [];
  for (const list of byUser.values()) {
    list.sort((a, b) => a.from - b.from);
    // the connection that ends last so far: any later login before its end overlaps it
    let latest = list[0]!;
    for (const next of list.slice(1)) {
      if (next.from < latest.to) out.push([latest, next]);
      if (next.to > latest.to) latest = next;
    }
  }
  return out;
}
