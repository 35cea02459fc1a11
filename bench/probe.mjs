// Preloaded into the measured service process by the benchmark (node --expose-gc --import <this>
// dist/server.js); not part of the service. On SIGUSR2 it runs a full garbage collection and writes
// process.memoryUsage() as JSON to $MSB_BENCH_PROBE_FILE, so the service's heap can be compared with the
// bare-imapflow holder's, measured the same way. Plain JavaScript: no TypeScript loader in the process.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.MSB_BENCH_PROBE_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    const gc = globalThis.gc;
    if (typeof gc === 'function') {
      gc();
      gc();
    }
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ ...process.memoryUsage(), gc: typeof gc === 'function', at: Date.now() }));
    renameSync(tmp, file);
  });
}
