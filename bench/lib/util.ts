// Small helpers every measurement uses: the run's log, time bounds, the open-file limit, the machine's description.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './children.js';
import { FD_LIMIT, openFileLimit } from './proc.js';
import { round } from './stats.js';

export const t0 = performance.now();
export const log = (msg: string): void => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
export const KiB = 1024;

/** Rejects after ms; every network step of the benchmark is bounded in time. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Re-runs this process under `ulimit -n FD_LIMIT` when its limit is lower (Dovecot inherits it too). */
export function ensureFdLimit(): void {
  if (openFileLimit() >= FD_LIMIT || process.env.MSB_BENCH_REEXEC) return;
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const res = spawnSync('bash', ['-c', script, 'bench', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, MSB_BENCH_REEXEC: '1' },
  });
  process.exit(res.status ?? 1);
}

export function machine() {
  const cpus = os.cpus();
  const version = (pkg: string): string => {
    try { return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version; } catch { return '?'; }
  };
  let dovecot = '?';
  try { dovecot = execFileSync('dovecot', ['--version'], { encoding: 'utf8' }).trim(); } catch { /* reported as ? */ }
  return {
    cpu: cpus[0]?.model ?? '?',
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    dovecot,
    imapflow: version('imapflow'),
    nodePop3: version('node-pop3'),
    fastify: version('fastify'),
    autocannon: version('autocannon'),
  };
}
export type Machine = ReturnType<typeof machine>;
