// Benchmarks of the read side (issue 12), each figure against bare imapflow doing the same wire work in the same
// run. Called by bench/run.ts (full and --quick), or alone: `npx tsx bench/mail-read.ts [--quick] [--skip-build]`.
//   1. a page of 50 from a 10,000-message folder (first page without filters, a later page by cursor, a filtered
//      page), broker over HTTP vs bare imapflow (EXAMINE, the same SEARCH and FETCH, CLOSE); the first page in
//      a folder a tenth that size, to show it does not grow with the folder;
//   2. attachment download throughput vs bare imapflow download() of the same part, and the service's RSS growth
//      while it streams the attachment (100 MB; --quick 10 MB);
//   3. a parsed message of 25 MB (--quick 5 MB) of text, over IMAP and POP3: time and the service's peak RSS growth.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ImapFlow, type FetchQueryObject } from 'imapflow';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { startDovecot, type DovecotServer } from '../test/harness/dovecot.js';
import { ROOT, startService, type Service } from './lib/children.js';
import { sampleProc } from './lib/proc.js';
import { markdownTable, type Row } from './lib/report.js';
import { ratio, round, summarize, type Summary } from './lib/stats.js';

export interface MailReadOptions {
  quick: boolean;
  /** Where the service writes its log. */
  tmp: string;
  log: (msg: string) => void;
}

export interface MailReadResult {
  folderSize: number;
  smallFolderSize: number;
  iterations: number;
  page: { broker: Summary; bare: Summary; health: Summary; brokerSmall: Summary; next: Summary; bareNext: Summary; filtered: Summary; bareFiltered: Summary; filteredMatches: number };
  download: { bytes: number; brokerMBps: number; bareMBps: number; bareSameChunkMBps: number; rssGrowthMiB: number; liveGrowthMiB: number; rssAfterGcGrowthMiB: number; rawMBps: number; bareRawMBps: number };
  parsed: { bytes: number; imapMs: number; imapRssGrowthMiB: number; pop3Ms: number; pop3RssGrowthMiB: number; truncated: boolean };
}

const MiB = 1024 * 1024;
const USERS = { 'page@bench.test': 'page-Bench-1', 'small@bench.test': 'small-Bench-1', 'file@bench.test': 'file-Bench-1', 'parse@bench.test': 'parse-Bench-1' };
const SUMMARY: FetchQueryObject = { uid: true, flags: true, envelope: true, internalDate: true, size: true, bodyStructure: true };
const KEY = `msb_bench_read_${randomBytes(16).toString('base64url')}`;

/** A folder's worth of small, varied messages, fast: a few composed templates with their ids and subjects changed. */
async function seed(dovecot: DovecotServer, user: string, count: number): Promise<void> {
  const templates = await Promise.all(
    [
      { text: 'Please find the invoice attached.', attachments: [{ filename: 'invoice.pdf', content: randomBytes(2048) }] },
      { text: 'Plain note.', html: '<p>Plain <b>note</b>.</p>' },
      { html: '<p>HTML only</p>' },
    ].map(async (o) => (await new MailComposer({ from: 'Billing <billing@shop.test>', to: user, subject: 'SUBJECT', messageId: '<ID@bench.test>', ...o }).compile().build()).toString()),
  );
  for (let i = 0; i < count; i++) {
    const subject = i % 10 === 0 ? `Invoice ${i}` : `Message ${i}`;
    await dovecot.deliver(user, templates[i % templates.length]!.replace('Subject: SUBJECT', `Subject: ${subject}`).replace('<ID@bench.test>', `<m${i}@bench.test>`));
  }
}

function bareClient(dovecot: DovecotServer, user: keyof typeof USERS): ImapFlow {
  // the service's settings for the same plain IMAP port (src/connectors/imap/connection.ts), without a logger
  const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.ports.imap, secure: false, doSTARTTLS: false, auth: { user, pass: USERS[user] }, logger: false, disableAutoIdle: true });
  client.on('error', () => {});
  return client;
}

/**
 * GET `url` from the service, streamed: bytes, milliseconds and, with `sample`, the service's peak RSS over the
 * exchange (read from /proc every 5 ms, which costs this client time: latencies are measured without). With
 * `midway`, called once half of `expected` bytes have arrived, while the stream is paused.
 */
function stream(
  svc: Service,
  url: string,
  opts: { sample?: boolean; midway?: { expected: number; call: () => Promise<void> } } = {},
): Promise<{ status: number; bytes: number; ms: number; peakRss: number; body: Buffer | undefined }> {
  const { midway } = opts;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let peakRss = opts.sample ? sampleProc(svc.child.pid).rss : 0;
    const timer = opts.sample ? setInterval(() => (peakRss = Math.max(peakRss, sampleProc(svc.child.pid).rss)), 5) : undefined;
    const keep: Buffer[] = [];
    const req = http.get({ host: '127.0.0.1', port: svc.port, path: url, headers: { authorization: `Bearer ${KEY}` } }, (res) => {
      let bytes = 0;
      let called = false;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (res.headers['content-type']?.startsWith('application/json')) keep.push(c);
        if (midway && !called && bytes >= midway.expected / 2) {
          called = true;
          res.pause();
          void midway.call().then(() => res.resume(), reject);
        }
      });
      res.on('end', () => {
        clearInterval(timer);
        resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - started, peakRss, body: keep.length ? Buffer.concat(keep) : undefined });
      });
      res.on('error', (err) => (clearInterval(timer), reject(err)));
    });
    req.on('error', (err) => (clearInterval(timer), reject(err)));
  });
}

async function json(svc: Service, url: string): Promise<Record<string, unknown>> {
  const res = await stream(svc, url);
  if (res.status !== 200 || !res.body) throw new Error(`GET ${url}: ${res.status} ${res.body?.toString('utf8').slice(0, 300)}`);
  return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function measurePages(svc: Service, dovecot: DovecotServer, o: MailReadOptions, folderSize: number, iterations: number): Promise<MailReadResult['page']> {
  const bare = bareClient(dovecot, 'page@bench.test');
  await bare.connect();
  try {
    const first = await json(svc, '/v1/sessions/page/messages?limit=50');
    const cursor = String(first.nextCursor);
    const boundary = Math.min(...(first.messages as { id: string }[]).map((m) => Number(Buffer.from(m.id, 'base64url').toString('utf8').split(':')[2])));
    const bareFirst = async () => {
      const box = await bare.mailboxOpen('INBOX', { readOnly: true });
      await bare.fetchAll(`${Math.max(1, box.exists - 49)}:${box.exists}`, SUMMARY);
      await bare.mailboxClose();
    };
    const bareNext = async () => {
      await bare.mailboxOpen('INBOX', { readOnly: true });
      const uids = (await bare.search({ uid: `1:${boundary - 1}` }, { uid: true })) as number[];
      await bare.fetchAll(uids.slice(-50), SUMMARY, { uid: true });
      await bare.mailboxClose();
    };
    let matches = 0;
    const bareFiltered = async () => {
      await bare.mailboxOpen('INBOX', { readOnly: true });
      const uids = (await bare.search({ subject: 'invoice' }, { uid: true })) as number[];
      matches = uids.length;
      await bare.fetchAll(uids.slice(-50), SUMMARY, { uid: true });
      await bare.mailboxClose();
    };
    const samples: Record<string, number[]> = { broker: [], bare: [], health: [], brokerSmall: [], next: [], bareNext: [], filtered: [], bareFiltered: [] };
    const rounds: [keyof typeof samples, () => Promise<unknown>][] = [
      ['broker', () => json(svc, '/v1/sessions/page/messages?limit=50')],
      ['bare', bareFirst],
      // the HTTP floor: what any answer of the service costs this client
      ['health', () => stream(svc, '/health')],
      ['brokerSmall', () => json(svc, '/v1/sessions/small/messages?limit=50')],
      ['next', () => json(svc, `/v1/sessions/page/messages?limit=50&cursor=${cursor}`)],
      ['bareNext', bareNext],
      ['filtered', () => json(svc, '/v1/sessions/page/messages?limit=50&subject=invoice')],
      ['bareFiltered', bareFiltered],
    ];
    // warm-up (Dovecot builds its index on first access), then interleaved so that noise hits all alike
    for (let i = 0; i < 5; i++) for (const [, fn] of rounds) await fn();
    for (let i = 0; i < iterations; i++) for (const [name, fn] of rounds) samples[name]!.push(await timed(fn));
    o.log(`page of 50 from ${folderSize}: broker median ${round(summarize(samples.broker!).median)} ms, bare ${round(summarize(samples.bare!).median)} ms`);
    return {
      broker: summarize(samples.broker!),
      bare: summarize(samples.bare!),
      health: summarize(samples.health!),
      brokerSmall: summarize(samples.brokerSmall!),
      next: summarize(samples.next!),
      bareNext: summarize(samples.bareNext!),
      filtered: summarize(samples.filtered!),
      bareFiltered: summarize(samples.bareFiltered!),
      filteredMatches: matches,
    };
  } finally {
    await bare.logout().catch(() => bare.close());
  }
}

async function measureDownload(svc: Service, dovecot: DovecotServer, o: MailReadOptions, bytes: number, runs: number): Promise<MailReadResult['download']> {
  const file = randomBytes(bytes);
  const raw = await new MailComposer({ from: 'a@bench.test', to: 'file@bench.test', subject: 'big file', text: 'attached', attachments: [{ filename: 'big.bin', content: file }] }).compile().build();
  await dovecot.deliver('file@bench.test', raw.toString('latin1'));
  const { messages } = await json(svc, '/v1/sessions/file/messages');
  const id = (messages as { id: string }[])[0]!.id;
  const uid = Number(Buffer.from(id, 'base64url').toString('utf8').split(':')[2]);
  const bare = bareClient(dovecot, 'file@bench.test');
  await bare.connect();
  const bareDownload = async (part: string | undefined, chunkSize?: number) => {
    const started = performance.now();
    const lock = await bare.getMailboxLock('INBOX', { readOnly: true });
    let n = 0;
    try {
      const result = await bare.download(String(uid), part, { uid: true, decodeText: false, ...(chunkSize ? { chunkSize } : {}) });
      if (!('content' in result) || !result.content) throw new Error('bare download: nothing');
      for await (const chunk of result.content) n += (chunk as Buffer).length;
    } finally {
      lock.release();
      await bare.mailboxClose();
    }
    return { n, ms: performance.now() - started };
  };
  try {
    const broker: number[] = [];
    const bareRates: number[] = [];
    const bareSame: number[] = [];
    const raws: number[] = [];
    const bareRaws: number[] = [];
    let growth = 0;
    // the memory that stays live while a download streams: a full GC in the service halfway through (not timed)
    const rest = await svc.memory();
    let mid = rest;
    const probe = await stream(svc, `/v1/sessions/file/messages/${id}/attachments/2`, { midway: { expected: file.length, call: async () => void (mid = await svc.memory()) } });
    if (probe.bytes !== file.length) throw new Error(`attachment download: ${probe.bytes} of ${file.length} bytes`);
    const liveGrowth = (mid.heapUsed + mid.external - rest.heapUsed - rest.external) / MiB;
    const rssAfterGc = (mid.rss - rest.rss) / MiB;
    for (let i = 0; i < runs; i++) {
      const before = (await svc.memory()).rss;
      const b = await stream(svc, `/v1/sessions/file/messages/${id}/attachments/2`, { sample: true });
      if (b.status !== 200 || b.bytes !== file.length) throw new Error(`attachment download: status ${b.status}, ${b.bytes} of ${file.length} bytes`);
      broker.push(bytes / MiB / (b.ms / 1000));
      growth = Math.max(growth, (b.peakRss - before) / MiB);
      const a = await bareDownload('2');
      if (a.n !== file.length) throw new Error(`bare download: ${a.n} of ${file.length} bytes`);
      bareRates.push(bytes / MiB / (a.ms / 1000));
      // the service asks for 256 KiB per FETCH (src/connectors/imap/messages.ts): the same, to show its own overhead
      const s = await bareDownload('2', 256 * 1024);
      bareSame.push(bytes / MiB / (s.ms / 1000));
      const r = await stream(svc, `/v1/sessions/file/messages/${id}/raw`);
      raws.push(r.bytes / MiB / (r.ms / 1000));
      const br = await bareDownload(undefined);
      bareRaws.push(br.n / MiB / (br.ms / 1000));
    }
    const med = (xs: number[]) => summarize(xs).median;
    o.log(`attachment of ${bytes / MiB} MiB: broker ${round(med(broker))} MiB/s, bare ${round(med(bareRates))} MiB/s, RSS growth ${round(growth)} MiB`);
    return { bytes, brokerMBps: med(broker), bareMBps: med(bareRates), bareSameChunkMBps: med(bareSame), rssGrowthMiB: growth, liveGrowthMiB: liveGrowth, rssAfterGcGrowthMiB: rssAfterGc, rawMBps: med(raws), bareRawMBps: med(bareRaws) };
  } finally {
    await bare.logout().catch(() => bare.close());
  }
}

async function measureParsed(svc: Service, dovecot: DovecotServer, o: MailReadOptions, bytes: number): Promise<MailReadResult['parsed']> {
  const line = 'The quick brown fox jumps over the lazy dog, invoice 4711, total 42.00 EUR.\n';
  const text = line.repeat(Math.ceil(bytes / line.length));
  const raw = await new MailComposer({ from: 'a@bench.test', to: 'parse@bench.test', subject: 'big text', text, textEncoding: 'quoted-printable' }).compile().build();
  await dovecot.deliver('parse@bench.test', raw.toString('latin1'));
  const { messages } = await json(svc, '/v1/sessions/parse-imap/messages');
  const id = (messages as { id: string }[])[0]!.id;
  const pop = await json(svc, '/v1/sessions/parse-pop3/messages');
  const popId = (pop.messages as { id: string }[])[0]!.id;
  const once = async (url: string) => {
    const before = (await svc.memory()).rss;
    const res = await stream(svc, url, { sample: true });
    if (res.status !== 200 || !res.body) throw new Error(`GET ${url}: ${res.status}`);
    const detail = JSON.parse(res.body.toString('utf8')) as { text: string; truncated: boolean };
    return { ms: res.ms, growth: (res.peakRss - before) / MiB, text: detail.text.length, truncated: detail.truncated };
  };
  await once(`/v1/sessions/parse-imap/messages/${id}`);
  const imap = await once(`/v1/sessions/parse-imap/messages/${id}`);
  const pop3 = await once(`/v1/sessions/parse-pop3/messages/${popId}`);
  o.log(`parsed message of ${round(raw.length / MiB)} MiB: IMAP ${round(imap.ms)} ms +${round(imap.growth)} MiB RSS, POP3 ${round(pop3.ms)} ms +${round(pop3.growth)} MiB RSS`);
  return { bytes: raw.length, imapMs: imap.ms, imapRssGrowthMiB: imap.growth, pop3Ms: pop3.ms, pop3RssGrowthMiB: pop3.growth, truncated: imap.truncated || pop3.truncated };
}

/** Runs the three read benchmarks against a Dovecot and a service of their own. */
export async function measureMailRead(o: MailReadOptions): Promise<MailReadResult> {
  const folderSize = o.quick ? 2000 : 10_000;
  const smallFolderSize = folderSize / 10;
  const iterations = o.quick ? 20 : 100;
  const dovecot = await startDovecot({ users: USERS });
  let svc: Service | undefined;
  try {
    o.log(`mail read: seeding ${folderSize} + ${smallFolderSize} messages`);
    await seed(dovecot, 'page@bench.test', folderSize);
    await seed(dovecot, 'small@bench.test', smallFolderSize);
    svc = await startService('mail-read', o.tmp, {
      MSB_AUTH: 'keys',
      MSB_API_KEYS: `bench:bot:${createHash('sha256').update(KEY, 'utf8').digest('hex')}`,
      MSB_RATE_LIMIT_PER_MINUTE: '0',
      MSB_OUTBOUND_DENY: 'none',
      MSB_OUTBOUND_PORTS: '*',
      MSB_COMMAND_TIMEOUT_MS: '120000',
      MSB_LOCK_TIMEOUT_MS: '120000',
    }, { headers: { authorization: `Bearer ${KEY}` } });
    const session = (name: string, type: string, user: keyof typeof USERS) =>
      svc!.http.expect('POST', '/v1/sessions', [201], {
        name, type, host: '127.0.0.1', port: type === 'imap' ? dovecot.ports.imap : dovecot.ports.pop3, secure: false, tls: { starttls: 'off' }, username: user, password: USERS[user],
      });
    await session('page', 'imap', 'page@bench.test');
    await session('small', 'imap', 'small@bench.test');
    await session('file', 'imap', 'file@bench.test');
    await session('parse-imap', 'imap', 'parse@bench.test');
    await session('parse-pop3', 'pop3', 'parse@bench.test');
    const page = await measurePages(svc, dovecot, o, folderSize, iterations);
    const download = await measureDownload(svc, dovecot, o, (o.quick ? 10 : 100) * MiB, o.quick ? 2 : 3);
    const parsed = await measureParsed(svc, dovecot, o, (o.quick ? 5 : 25) * MiB);
    return { folderSize, smallFolderSize, iterations, page, download, parsed };
  } finally {
    await svc?.stop();
    await dovecot.close();
  }
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

/** The result table's rows for the read benchmarks. */
export function mailReadRows(r: MailReadResult): Row[] {
  const p = r.page;
  const within = (b: Summary, bare: Summary) => b.median <= 1.2 * bare.median + 2;
  const same = 'bare imapflow: EXAMINE, the same FETCH, CLOSE';
  return [
    { figure: `page of 50 from a ${r.folderSize}-message folder, first page, median ms (n=${r.iterations})`, broker: f2(p.broker.median), baseline: `${f2(p.bare.median)} (${same})`, ratio: ratio(p.broker.median, p.bare.median), target: '<= 1.2x + 2 ms', met: within(p.broker, p.bare) },
    { figure: 'page of 50, first page, p99 ms', broker: f2(p.broker.p99), baseline: f2(p.bare.p99), ratio: ratio(p.broker.p99, p.bare.p99), target: '–', met: null },
    { figure: 'HTTP floor: GET /health from the same client, median ms', broker: f2(p.health.median), baseline: '–', ratio: null, target: '–', met: null },
    { figure: `first page in a ${r.smallFolderSize}-message folder vs the ${r.folderSize}-message one, median ms`, broker: f2(p.brokerSmall.median), baseline: `${f2(p.broker.median)} (broker, ${r.folderSize} messages)`, ratio: ratio(p.broker.median, p.brokerSmall.median), target: 'not O(folder size)', met: p.broker.median <= 1.5 * p.brokerSmall.median + 2 },
    { figure: 'page of 50, second page by cursor, median ms', broker: f2(p.next.median), baseline: `${f2(p.bareNext.median)} (bare: EXAMINE, UID SEARCH UID 1:n, UID FETCH 50, CLOSE)`, ratio: ratio(p.next.median, p.bareNext.median), target: '<= 1.2x + 2 ms', met: within(p.next, p.bareNext) },
    { figure: `page of 50 filtered by subject (${p.filteredMatches} matches), median ms`, broker: f2(p.filtered.median), baseline: `${f2(p.bareFiltered.median)} (bare: EXAMINE, UID SEARCH SUBJECT, UID FETCH 50, CLOSE)`, ratio: ratio(p.filtered.median, p.bareFiltered.median), target: '<= 1.2x + 2 ms', met: within(p.filtered, p.bareFiltered) },
    { figure: `attachment download (${r.download.bytes / MiB} MiB), MiB/s`, broker: f2(r.download.brokerMBps), baseline: `${f2(r.download.bareMBps)} (bare imapflow download() of the part, default chunks)`, ratio: ratio(r.download.brokerMBps, r.download.bareMBps), target: '>= 0.9x', met: r.download.brokerMBps >= 0.9 * r.download.bareMBps },
    { figure: 'attachment download vs bare imapflow with the service\'s chunk size, MiB/s', broker: f2(r.download.brokerMBps), baseline: `${f2(r.download.bareSameChunkMBps)} (bare download(), chunkSize 256 KiB)`, ratio: ratio(r.download.brokerMBps, r.download.bareSameChunkMBps), target: '–', met: null },
    { figure: `service RSS growth while streaming the ${r.download.bytes / MiB} MiB attachment (peak, garbage included), MiB`, broker: f2(r.download.rssGrowthMiB), baseline: '–', ratio: null, target: '< 32 MiB', met: r.download.rssGrowthMiB < 32 },
    { figure: 'the same, halfway through after a full GC: RSS / live heap + external growth, MiB', broker: `${f2(r.download.rssAfterGcGrowthMiB)} / ${f2(r.download.liveGrowthMiB)}`, baseline: '–', ratio: null, target: '–', met: null },
    { figure: 'raw message download (.eml), MiB/s', broker: f2(r.download.rawMBps), baseline: `${f2(r.download.bareRawMBps)} (bare imapflow download() of BODY[])`, ratio: ratio(r.download.rawMBps, r.download.bareRawMBps), target: '–', met: null },
    { figure: `parsed message of ${f2(r.parsed.bytes / MiB)} MiB of text over IMAP: ms / peak RSS growth MiB`, broker: `${f2(r.parsed.imapMs)} / ${f2(r.parsed.imapRssGrowthMiB)}`, baseline: '–', ratio: null, target: 'stated', met: null },
    { figure: `the same over POP3 (RETR parsed): ms / peak RSS growth MiB${r.parsed.truncated ? ' (truncated at MSB_PARSE_MAX_BYTES)' : ''}`, broker: `${f2(r.parsed.pop3Ms)} / ${f2(r.parsed.pop3RssGrowthMiB)}`, baseline: '–', ratio: null, target: 'stated', met: null },
  ];
}

// alone: npx tsx bench/mail-read.ts [--quick] [--skip-build]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const t0 = performance.now();
  const log = (msg: string) => console.log(`[bench mail-read ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'msb-bench-read-'));
  (async () => {
    if (!process.argv.includes('--skip-build')) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    const result = await measureMailRead({ quick, tmp, log });
    const md = markdownTable(mailReadRows(result));
    console.log(`\n${md}`);
    // bench/results/mail-read(-quick).{json,md}: this module's figures of a run of its own
    const base = path.join(ROOT, 'bench', 'results', quick ? 'mail-read-quick' : 'mail-read');
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    writeFileSync(`${base}.json`, `${JSON.stringify({ date: new Date().toISOString(), loadavgAfter: load, result }, null, 2)}\n`);
    writeFileSync(`${base}.md`, `# mail-session-broker read benchmark (bench/mail-read.ts${quick ? ' --quick' : ''})\n\nMeasured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}, loopback; load average after the run ${load}. Ratio = broker / baseline.\n\n${md}`);
    console.log(`[bench mail-read] wrote ${path.relative(ROOT, base)}.{json,md}`);
    rmSync(tmp, { recursive: true, force: true });
    process.exit(0);
  })().catch((err: unknown) => {
    console.error(err);
    console.error(`logs kept in ${tmp}`);
    process.exit(1);
  });
}
