// The processes the benchmark measures: the service (node dist/server.js), the bare-imapflow holder and
// the bare Fastify route. Each is a separate process with a raised open-file limit (see proc.ts).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../test/harness/ports.js';
import { HttpClient } from './http.js';
import { spawnChild, tailOf, type Child } from './proc.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const BENCH = path.join(ROOT, 'bench');

/** process.env without a TypeScript loader that the benchmark's own runner may have put there. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (env.NODE_OPTIONS && /tsx/.test(env.NODE_OPTIONS)) delete env.NODE_OPTIONS;
  delete env.MSB_BENCH_REEXEC;
  return env;
}

export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface Service {
  child: Child;
  port: number;
  http: HttpClient;
  /** Full GC in the service, then its process.memoryUsage() (through bench/probe.mjs). */
  memory(): Promise<MemoryUsage>;
  stop(): Promise<void>;
}

/**
 * Starts `node --expose-gc --import bench/probe.mjs dist/server.js` with `env` on a free loopback port
 * and waits until /health answers. The probe only adds a SIGUSR2 handler (see probe.mjs).
 */
export async function startService(
  label: string,
  tmp: string,
  env: Record<string, string>,
  opts: { maxSockets?: number; cpuProfDir?: string | undefined; headers?: Record<string, string> } = {},
): Promise<Service> {
  const port = await freePort();
  const probeFile = path.join(tmp, `probe-${label}.json`);
  // --cpu-prof writes a .cpuprofile when the service exits (it exits through process.exit on SIGTERM)
  const prof = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, `--cpu-prof-name=service-${label}.cpuprofile`] : [];
  const child = spawnChild(
    `service-${label}`,
    process.execPath,
    [...prof, '--expose-gc', '--import', path.join(BENCH, 'probe.mjs'), path.join(ROOT, 'dist/server.js')],
    {
      cwd: ROOT,
      logFile: path.join(tmp, `service-${label}.log`),
      env: { ...cleanEnv(), PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', MSB_BENCH_PROBE_FILE: probeFile, ...env },
    },
  );
  const http = new HttpClient(port, { maxSockets: opts.maxSockets ?? 64, headers: opts.headers ?? {} });
  const deadline = Date.now() + 60_000;
  for (;;) {
    child.assertAlive();
    const ok = await http.request('GET', '/health').then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await child.stop(1000);
      throw new Error(`service-${label} did not answer /health within 60 s (a busy machine starts it slowly); tail of its log:\n${tailOf(child.logFile)}`);
    }
    await sleep(50);
  }
  return {
    child,
    port,
    http,
    async memory() {
      child.assertAlive();
      rmSync(probeFile, { force: true });
      process.kill(child.pid, 'SIGUSR2');
      const until = Date.now() + 15_000;
      while (!existsSync(probeFile)) {
        child.assertAlive();
        if (Date.now() > until) throw new Error(`service-${label}: the memory probe did not answer within 15 s`);
        await sleep(20);
      }
      return JSON.parse(readFileSync(probeFile, 'utf8')) as MemoryUsage;
    },
    async stop() {
      http.close();
      // SIGTERM: the service logs out of every session (MSB_SHUTDOWN_TIMEOUT_MS bounds it)
      await child.stop(70_000);
    },
  };
}

export interface Holder {
  child: Child;
  call<T = Record<string, unknown>>(msg: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

/** Starts bench/holder.mjs (bare imapflow) and talks to it by JSON lines. */
export async function startHolder(tmp: string, label: string): Promise<Holder> {
  const child = spawnChild(`holder-${label}`, process.execPath, ['--expose-gc', path.join(BENCH, 'holder.mjs')], {
    cwd: ROOT,
    logFile: path.join(tmp, `holder-${label}.log`),
    env: cleanEnv(),
    pipes: true,
  });
  const stdout = child.proc.stdout;
  const stdin = child.proc.stdin;
  if (!stdout || !stdin) throw new Error('holder: no pipes');
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  createInterface({ input: stdout }).on('line', (line) => {
    let msg: { id?: number; ok?: boolean; ready?: boolean; result?: unknown; error?: string };
    try { msg = JSON.parse(line); } catch { return; }
    if (msg.ready) { ready(); return; }
    const w = msg.id === undefined ? undefined : waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id!);
    if (msg.ok) w.resolve(msg.result); else w.reject(new Error(`holder: ${msg.error}`));
  });
  void child.exited.then(() => {
    for (const w of waiting.values()) w.reject(new Error(`holder exited (${child.exitInfo}); tail:\n${tailOf(child.logFile)}`));
    waiting.clear();
  });
  await Promise.race([isReady, sleep(15_000).then(() => { throw new Error('holder did not start within 15 s'); }), child.exited.then(() => child.assertAlive())]);
  let nextId = 1;
  return {
    child,
    call<T>(msg: Record<string, unknown>, timeoutMs = 600_000): Promise<T> {
      child.assertAlive();
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => { waiting.delete(id); reject(new Error(`holder: ${String(msg.cmd)} took over ${timeoutMs} ms`)); }, timeoutMs);
        waiting.set(id, {
          resolve: (v) => { clearTimeout(timer); resolve(v as T); },
          reject: (e) => { clearTimeout(timer); reject(e); },
        });
        stdin.write(`${JSON.stringify({ ...msg, id })}\n`);
      });
    },
    async stop() {
      stdin.end();
      await child.stop(15_000);
    },
  };
}

export interface BareRoute {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Starts bench/bare-fastify.mjs answering GET /v1/sessions/:name with the JSON in bodyFile. */
export async function startBareRoute(tmp: string, label: string, bodyFile: string): Promise<BareRoute> {
  const port = await freePort();
  const logFile = path.join(tmp, `bare-fastify-${label}.log`);
  const child = spawnChild(`bare-fastify-${label}`, process.execPath, [path.join(BENCH, 'bare-fastify.mjs')], {
    cwd: ROOT,
    logFile,
    env: { ...cleanEnv(), PORT: String(port), BODY_FILE: bodyFile },
  });
  const http = new HttpClient(port);
  const deadline = Date.now() + 15_000;
  for (;;) {
    child.assertAlive();
    const ok = await http.request('GET', '/v1/sessions/x').then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await child.stop(1000);
      throw new Error(`bare Fastify route did not answer within 15 s:\n${tailOf(logFile)}`);
    }
    await sleep(50);
  }
  http.close();
  return { port, pid: child.pid, stop: () => child.stop(5000) };
}
