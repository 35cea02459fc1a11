// An emulated network link for the benchmark: Shopify's Toxiproxy (a Go TCP proxy) on loopback, with a latency
// toxic each way. This kernel has no netem; Toxiproxy adds the delay per direction in user space, so both the
// service and the bare clients go through the same proxy and the same delay.
// The server is installed by install-toxiproxy.sh when missing; if that fails the benchmark fails (no skip).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../test/harness/ports.js';
import { ROOT } from './children.js';
import { spawnChild, tailOf, type Child } from './proc.js';

export interface Toxiproxy {
  child: Child;
  version: string;
  /** A proxy on 127.0.0.1 to 127.0.0.1:upstreamPort with latencyMs added in each direction; returns its port. */
  link(name: string, upstreamPort: number, latencyMs: number): Promise<number>;
  stop(): Promise<void>;
}

/** The path of the toxiproxy server binary, installing it first when it is missing; throws saying why it cannot. */
export function toxiproxyBinary(): string {
  const script = path.join(ROOT, 'bench/lib/install-toxiproxy.sh');
  try {
    const out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n');
    return out[out.length - 1]!;
  } catch (err) {
    throw new Error(`--link needs Toxiproxy and ${path.relative(ROOT, script)} could not install it (${(err as Error).message.split('\n')[0]}); see its output above`);
  }
}

export async function startToxiproxy(tmp: string): Promise<Toxiproxy> {
  const bin = toxiproxyBinary();
  const apiPort = await freePort();
  const child = spawnChild('toxiproxy', bin, ['-host', '127.0.0.1', '-port', String(apiPort)], { cwd: ROOT, env: process.env, logFile: path.join(tmp, 'toxiproxy.log') });
  const api = async (method: string, url: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`http://127.0.0.1:${apiPort}${url}`, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${url}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  let version = '';
  const deadline = Date.now() + 30_000;
  for (;;) {
    child.assertAlive();
    try {
      version = await (await fetch(`http://127.0.0.1:${apiPort}/version`)).text();
      break;
    } catch {
      if (Date.now() > deadline) {
        await child.stop(1000);
        throw new Error(`toxiproxy did not answer on port ${apiPort} within 30 s; tail of its log:\n${tailOf(child.logFile)}`);
      }
      await sleep(100);
    }
  }
  return {
    child,
    version: version.trim(),
    async link(name, upstreamPort, latencyMs) {
      const listen = await freePort();
      await api('POST', '/proxies', { name, listen: `127.0.0.1:${listen}`, upstream: `127.0.0.1:${upstreamPort}`, enabled: true });
      for (const stream of ['upstream', 'downstream']) {
        await api('POST', `/proxies/${name}/toxics`, { name: `latency_${stream}`, type: 'latency', stream, toxicity: 1, attributes: { latency: latencyMs, jitter: 0 } });
      }
      return listen;
    },
    async stop() {
      await child.stop(3000);
    },
  };
}
