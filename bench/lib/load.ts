// HTTP load with autocannon (in the benchmark process): GET over a rotating list of paths.
import autocannon from 'autocannon';
import { sampleProc } from './proc.js';

export interface LoadResult {
  /** Completed requests per second over the whole run. */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Mean response size in bytes (body and headers). */
  bytesPerResponse: number;
  durationS: number;
  connections: number;
  /** CPU the server process used during the run (when its pid is given): % of one core, and per request. */
  serverCpuPercent: number | null;
  serverCpuUsPerRequest: number | null;
}

export async function load(
  port: number,
  paths: readonly string[],
  durationS: number,
  connections: number,
  opts: { serverPid?: number | undefined; headers?: Record<string, string> | undefined } = {},
): Promise<LoadResult> {
  const serverPid = opts.serverPid;
  let i = 0;
  const before = serverPid === undefined ? undefined : sampleProc(serverPid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    pipelining: 1,
    duration: durationS,
    timeout: 30,
    headers: opts.headers ?? {},
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => {
          req.path = paths[i++ % paths.length];
          return req;
        },
      },
    ],
  });
  const completed = result.requests.total;
  const after = serverPid === undefined ? undefined : sampleProc(serverPid);
  const cpuS = before && after ? after.cpuS - before.cpuS : undefined;
  return {
    rps: completed / result.duration,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.mean },
    requests: completed,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    bytesPerResponse: completed ? result.throughput.total / completed : 0,
    durationS: result.duration,
    connections,
    serverCpuPercent: cpuS === undefined || !before || !after ? null : (100 * cpuS) / ((after.at - before.at) / 1000),
    serverCpuUsPerRequest: cpuS === undefined || !completed ? null : (cpuS * 1e6) / completed,
  };
}
