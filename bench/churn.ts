// 6. Memory under churn: cycles of create, refresh (inspect with refresh=true) and close of IMAP and POP3 sessions,
// one in ten with a wrong password (a refused create), in a service of its own. The service runs with
// --expose-gc (children.ts); after every block of cycles the probe forces a full GC and reads the heap, so what
// is left is what the service holds, not garbage awaiting the collector. The figure: heap growth over the
// second half of the run, which must be flat (< 1 MiB) if what grows early is a cache that stops growing.
import type { DovecotServer } from '../test/harness/dovecot.js';
import { startService, type MemoryUsage } from './lib/children.js';
import type { Options } from './lib/options.js';
import { sampleProc } from './lib/proc.js';
import { round } from './lib/stats.js';
import { AUTH, HOST, POOL_USERS, serviceEnv } from './lib/targets.js';
import { log } from './lib/util.js';

export interface ChurnResult {
  cycles: number;
  concurrency: number;
  wrongPasswordEvery: number;
  refused: number;
  seconds: number;
  /** [cycles done, heapUsed MiB after a full GC, RSS MiB] */
  samples: [number, number, number][];
  /** Heap after GC at the middle and at the end, and the least-squares slope over the second half. */
  heapMidMiB: number;
  heapEndMiB: number;
  secondHalfGrowthMiB: number;
  secondHalfSlopeMiBPer1000: number;
  firstHalfSlopeMiBPer1000: number;
}

const MiB = 1024 * 1024;

function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const num = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const den = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return den ? num / den : Number.NaN;
}

export async function measureChurn(dovecot: DovecotServer, tmp: string, opts: Options): Promise<ChurnResult> {
  const cycles = opts.churnCycles;
  const C = 10;
  const block = Math.max(100, Math.round(cycles / 20));
  const wrongEvery = 10;
  const svc = await startService('churn', tmp, serviceEnv(C + 100, opts), { maxSockets: C + 4, cpuProfDir: opts.cpuProfDir, headers: AUTH });
  const samples: ChurnResult['samples'] = [];
  let refused = 0;
  const started = performance.now();
  try {
    const sample = async (done: number): Promise<void> => {
      const mem: MemoryUsage = await svc.memory();
      samples.push([done, round(mem.heapUsed / MiB, 2), round(sampleProc(svc.child.pid).rss / MiB, 1)]);
    };
    const cycle = async (i: number): Promise<void> => {
      const [user, pass] = POOL_USERS[i % POOL_USERS.length]!;
      const pop3 = i % 2 === 1;
      const wrong = i % wrongEvery === wrongEvery - 1;
      // names repeat across cycles as a bot's would, and some are new each time (a caller that numbers its runs)
      const name = i % 4 === 0 ? `churn-${i}` : `churn-w${i % (C * 4)}`;
      const body = {
        name, type: pop3 ? 'pop3' : 'imap', host: HOST, port: pop3 ? dovecot.ports.pop3 : dovecot.ports.imap, secure: false,
        username: user, password: wrong ? `${pass}-wrong` : pass, tls: { starttls: 'off' },
      };
      if (wrong) {
        await svc.http.expect('POST', '/v1/sessions', [422, 429], body);
        refused += 1;
        return;
      }
      await svc.http.expect('POST', '/v1/sessions', [201], body);
      await svc.http.expect('GET', `/v1/sessions/${name}?refresh=true`, [200]);
      await svc.http.expect('DELETE', `/v1/sessions/${name}`, [204]);
    };
    await sample(0);
    let next = 0;
    for (let done = 0; done < cycles; done += block) {
      const end = Math.min(cycles, done + block);
      // workers take disjoint cycle numbers, so no two hold the same name at once
      const worker = async (): Promise<void> => {
        while (next < end) await cycle(next++);
      };
      await Promise.all(Array.from({ length: C }, worker));
      svc.child.assertAlive();
      await sample(end);
      if ((end / block) % 5 === 0) log(`  churn: ${end} cycles, heap after GC ${samples.at(-1)![1]} MiB, RSS ${samples.at(-1)![2]} MiB`);
    }
  } finally {
    await svc.stop();
  }
  const half = cycles / 2;
  const second = samples.filter(([c]) => c >= half);
  const first = samples.filter(([c]) => c <= half && c > 0);
  const mid = second[0]!;
  const end = samples.at(-1)!;
  return {
    cycles,
    concurrency: C,
    wrongPasswordEvery: wrongEvery,
    refused,
    seconds: round((performance.now() - started) / 1000, 1),
    samples,
    heapMidMiB: mid[1],
    heapEndMiB: end[1],
    secondHalfGrowthMiB: round(end[1] - mid[1], 2),
    secondHalfSlopeMiBPer1000: round(slope(second.map(([c, h]) => [c, h])) * 1000, 3),
    firstHalfSlopeMiBPer1000: round(slope(first.map(([c, h]) => [c, h])) * 1000, 3),
  };
}
