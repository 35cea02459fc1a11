// Child processes of the benchmark and what /proc says about them.
//
// Every child runs in its own process group (detached), is started through
// `bash -c 'ulimit -n ...; exec ...'` so it may hold tens of thousands of sockets, and is registered
// with the test harness's killGroupOnExit(), which kills the group if the benchmark itself dies (even
// by SIGKILL, through a reaper). stop() sends SIGTERM to the group and SIGKILL after a grace period.
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { killGroupOnExit } from '../../test/harness/dovecot.js';

export const FD_LIMIT = 200_000;

/** The soft RLIMIT_NOFILE of a process (ours by default), from /proc. */
export function openFileLimit(pid: number | 'self' = 'self'): number {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(soft);
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcSample {
  /** Resident set size in bytes (VmRSS). */
  rss: number;
  /** User + system CPU time in seconds. */
  cpuS: number;
  /** Wall clock of the sample (performance.now(), ms). */
  at: number;
}

/** RSS from /proc/<pid>/status and utime+stime from /proc/<pid>/stat. */
export function sampleProc(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? Number.NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after "(comm)": state is field 3; utime and stime are fields 14 and 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return { rss: rssKiB * 1024, cpuS: (utime + stime) / ticksPerSecond(), at: performance.now() };
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  logFile: string;
  /** Set once the process has exited. */
  exitInfo: string | undefined;
  exited: Promise<void>;
  /** Throws when the process is gone (with the tail of its log). */
  assertAlive(): void;
  /** SIGTERM to the group, SIGKILL after graceMs; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function tailOf(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/**
 * Starts `cmd args` with a raised open-file limit in its own process group. Its stdout and stderr go to
 * `logFile` (never a pipe the benchmark might stop reading), unless `pipes` asks for stdin/stdout pipes.
 */
export function spawnChild(
  name: string,
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; cwd: string; logFile: string; pipes?: boolean },
): Child {
  const out = openSync(opts.logFile, 'a');
  const stdio: StdioOptions = opts.pipes ? ['pipe', 'pipe', out] : ['ignore', out, out];
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  let proc: ChildProcess;
  try {
    proc = spawn('bash', ['-c', script, name, cmd, ...args], { cwd: opts.cwd, env: opts.env, stdio, detached: true });
  } finally {
    closeSync(out);
  }
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = proc.pid;
  const unregister = killGroupOnExit(pid);
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    proc.once('error', (err) => { exitInfo = `spawn error: ${err.message}`; resolve(); });
    proc.once('exit', (code, signal) => { exitInfo = `exit code ${code}, signal ${signal}`; resolve(); });
  });
  const child: Child = {
    name,
    proc,
    pid,
    logFile: opts.logFile,
    get exitInfo() { return exitInfo; },
    exited,
    assertAlive() {
      if (exitInfo !== undefined) {
        throw new Error(`${name} (pid ${pid}) exited unexpectedly (${exitInfo}); tail of ${opts.logFile}:\n${tailOf(opts.logFile)}`);
      }
    },
    async stop(graceMs = 10_000) {
      if (exitInfo === undefined) {
        try { process.kill(-pid, 'SIGTERM'); } catch { /* gone */ }
        const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
        if (timedOut) {
          try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
          await Promise.race([exited, sleep(5000)]);
        }
      }
      // anything else left in the group (there should be nothing) goes too
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
      unregister();
    },
  };
  return child;
}

/** Share of all CPUs busy (0-100) over `ms`, from /proc/stat: how much else runs on the machine. */
export async function systemBusyPercent(ms: number): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  const total = b.total - a.total;
  return total > 0 ? (100 * (total - (b.idle - a.idle))) / total : 0;
}
