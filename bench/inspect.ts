// 3. Inspect throughput while N sessions are held vs a bare Fastify route returning the same JSON (alternating
// autocannon rounds, the median of each side), and the same with the default MSB_SUMMARY_MAX_AGE_MS.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startBareRoute, startService, type Service } from './lib/children.js';
import { load, type LoadResult } from './lib/load.js';
import type { Options } from './lib/options.js';
import { AUTH, createMany, serviceEnv } from './lib/targets.js';
import { log } from './lib/util.js';

export interface InspectResult {
  /** broker and bare: the median of the alternating rounds (all in `rounds`). */
  inspect: { broker: LoadResult; bare: LoadResult; bodyBytes: number; rounds: { broker: LoadResult[]; bare: LoadResult[] } };
  inspectDefaultAge: { n: number; broker: LoadResult; bare: LoadResult; maxAgeMs: number } | null;
}

/** The run with the median req/s of several. */
function medianRun(runs: LoadResult[]): LoadResult {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor((runs.length - 1) / 2)]!;
}

/** svc holds sessions p0..p<n-1>. */
export async function measureInspect(svc: Service, n: number, first: boolean, port: number, tmp: string, opts: Options): Promise<InspectResult> {
  const C = opts.concurrency;
  let inspectDefaultAge: InspectResult['inspectDefaultAge'] = null;
    const sample = await svc.http.expect('GET', '/v1/sessions/p0', [200]);
    const bodyFile = path.join(tmp, `inspect-body-${n}.json`);
    writeFileSync(bodyFile, sample.text);
    const paths = Array.from({ length: n }, (_, i) => `/v1/sessions/p${i}`);
    log(`  inspect: autocannon ${opts.connections} connections, ${opts.inspectRounds} alternating rounds of ${opts.inspectS} s (broker, bare Fastify)`);
    const bare = await startBareRoute(tmp, String(n), bodyFile);
    const runs: { broker: LoadResult[]; bare: LoadResult[] } = { broker: [], bare: [] };
    try {
      await load(svc.port, paths, 1, opts.connections, { headers: AUTH }); // warm-up
      await load(bare.port, paths, 1, opts.connections, { headers: AUTH });
      for (let r = 0; r < opts.inspectRounds; r++) {
        runs.broker.push(await load(svc.port, paths, opts.inspectS, opts.connections, { serverPid: svc.child.pid, headers: AUTH }));
        svc.child.assertAlive();
        runs.bare.push(await load(bare.port, paths, opts.inspectS, opts.connections, { serverPid: bare.pid, headers: AUTH }));
      }
    } finally {
      await bare.stop();
    }
    const brokerLoad = medianRun(runs.broker);
    const bareLoad = medianRun(runs.bare);
    for (const run of runs.broker) {
      if (run.non2xx || run.errors) throw new Error(`inspect load: ${run.non2xx} non-2xx answers, ${run.errors} errors`);
    }
    const inspect = { broker: brokerLoad, bare: bareLoad, bodyBytes: Buffer.byteLength(sample.text), rounds: runs };
    log(`  inspect: broker ${runs.broker.map((r) => r.rps.toFixed(0)).join('/')} req/s, bare ${runs.bare.map((r) => r.rps.toFixed(0)).join('/')} req/s`);

    // the same with the default MSB_SUMMARY_MAX_AGE_MS (inspect refreshes summaries live), in another service
    if (first && opts.defaultAgeN > 0) {
      const m = Math.min(n, opts.defaultAgeN);
      const svc2 = await startService(`default-age-${m}`, tmp, serviceEnv(m, opts, { MSB_SUMMARY_MAX_AGE_MS: '' }), { maxSockets: C + 8, cpuProfDir: opts.cpuProfDir, headers: AUTH });
      try {
        await createMany(svc2, 0, m, C, port);
        const p2 = paths.slice(0, m);
        await load(svc2.port, p2, 1, opts.connections, { headers: AUTH }); // warm-up
        const b2 = await load(svc2.port, p2, opts.inspectS, opts.connections, { serverPid: svc2.child.pid, headers: AUTH });
        svc2.child.assertAlive();
        inspectDefaultAge = { n: m, broker: b2, bare: bareLoad, maxAgeMs: 5000 };
        log(`  inspect with MSB_SUMMARY_MAX_AGE_MS default (5000), ${m} sessions: ${b2.rps.toFixed(0)} req/s`);
      } finally {
        await svc2.stop();
      }
    }

  return { inspect, inspectDefaultAge };
}
