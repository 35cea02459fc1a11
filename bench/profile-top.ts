// Summarises V8 .cpuprofile files (from `npm run bench -- --cpu-prof`, or any `node --cpu-prof`):
// self time by package and the functions with the most self and inclusive time.
//   npx tsx bench/profile-top.ts <file.cpuprofile> [more files] [--top=25] [--from=SECONDS: leave out the start]
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

/** node_modules/<pkg>, the service's own dist/ file, node:internal, or the V8 category. */
function bucket(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `service: ${dist[1]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return path.basename(url);
}

function key(n: ProfileNode): string {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, 'dist/').replace(/^file:\/\//, '')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
}

/** Keeps only the samples taken fromS seconds after the profile started (e.g. to leave the service's start out). */
function window(prof: Profile, fromS: number): void {
  if (!fromS || !prof.samples || !prof.timeDeltas) return;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  for (const n of prof.nodes) n.hitCount = 0;
  let t = prof.startTime;
  const from = prof.startTime + fromS * 1e6;
  for (const [i, id] of prof.samples.entries()) {
    t += prof.timeDeltas[i] ?? 0;
    if (t < from) continue;
    const n = byId.get(id);
    if (n) n.hitCount = (n.hitCount ?? 0) + 1;
  }
  prof.startTime = Math.max(prof.startTime, from);
}

function summarise(file: string, top: number, fromS: number): void {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  window(prof, fromS);
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const totalHits = prof.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
  const msPerHit = (prof.endTime - prof.startTime) / 1000 / totalHits;
  const idleHits = prof.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const busy = totalHits - idleHits || 1;

  const self = new Map<string, number>();
  const pkgs = new Map<string, number>();
  for (const n of prof.nodes) {
    const h = n.hitCount ?? 0;
    if (!h || n.callFrame.functionName === '(idle)') continue;
    self.set(key(n), (self.get(key(n)) ?? 0) + h);
    const b = bucket(n.callFrame.url, n.callFrame.functionName);
    pkgs.set(b, (pkgs.get(b) ?? 0) + h);
  }
  // inclusive: hits of a subtree, counted once per function even when it recurses
  const incl = new Map<string, number>();
  const subtree = new Map<number, number>();
  const total = (id: number): number => {
    const cached = subtree.get(id);
    if (cached !== undefined) return cached;
    const n = byId.get(id)!;
    const t = (n.hitCount ?? 0) + (n.children ?? []).reduce((a, c) => a + total(c), 0);
    subtree.set(id, t);
    return t;
  };
  const root = prof.nodes[0]!;
  const walk = (id: number, onPath: Set<string>): void => {
    const n = byId.get(id)!;
    const k = key(n);
    const fresh = !onPath.has(k);
    if (fresh && n.callFrame.functionName !== '(idle)' && n.callFrame.functionName !== '(root)') incl.set(k, (incl.get(k) ?? 0) + total(id));
    if (fresh) onPath.add(k);
    for (const c of n.children ?? []) walk(c, onPath);
    if (fresh) onPath.delete(k);
  };
  walk(root.id, new Set());

  const pct = (h: number) => `${((100 * h) / busy).toFixed(1).padStart(5)}%`;
  const ms = (h: number) => `${(h * msPerHit).toFixed(0).padStart(7)} ms`;
  const print = (title: string, m: Map<string, number>) => {
    console.log(`\n  ${title}`);
    for (const [k, h] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(h)} ${ms(h)}  ${k}`);
  };
  console.log(`\n${file}: ${(busy * msPerHit / 1000).toFixed(1)} s busy of ${((prof.endTime - prof.startTime) / 1e6).toFixed(1)} s (percentages are of busy time)`);
  print('self time by package / file', pkgs);
  print('self time by function', self);
  print('inclusive time by function', incl);
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
const fromS = Number(args.find((a) => a.startsWith('--from='))?.slice(7) ?? 0);
const files = args.filter((a) => !a.startsWith('--'));
if (!files.length) {
  console.error('usage: npx tsx bench/profile-top.ts <file.cpuprofile>... [--top=25] [--from=SECONDS]');
  process.exit(2);
}
for (const f of files) summarise(f, top, fromS);
