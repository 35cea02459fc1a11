// Benchmark of the change side (issue 13): the bulk "Move all" of N messages chosen by a subject filter, broker
// over HTTP vs bare imapflow doing the same wire work in the same run (SELECT, UID SEARCH SUBJECT, UID MOVE of the
// set). The broker also fetches each message's Message-ID, INTERNALDATE and size (what its ids are made of) and
// answers every old and new id. Each side moves its own mailbox's messages INBOX -> Done and back, alternating,
// `rounds` times. Called by bench/run.ts (full: 10,000 messages; --quick: 1,000), or alone:
// `npx tsx bench/mail-change.ts [--quick] [--skip-build]`.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ImapFlow } from 'imapflow';
import { startDovecot, type DovecotServer } from '../test/harness/dovecot.js';
import { ROOT, startService, type Service } from './lib/children.js';
import { markdownTable, type Row } from './lib/report.js';
import { ratio, summarize, type Summary } from './lib/stats.js';

export interface MailChangeResult {
  messages: number;
  rounds: number;
  broker: Summary;
  bare: Summary;
}

const USERS = { 'move-broker@bench.test': 'move-Bench-1', 'move-bare@bench.test': 'move-Bench-2' };
const KEY = `msb_bench_change_${randomBytes(16).toString('base64url')}`;

async function seed(dovecot: DovecotServer, user: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await dovecot.deliver(user, `From: Billing <billing@shop.test>\r\nTo: ${user}\r\nSubject: Invoice ${i}\r\nMessage-ID: <m${i}@bench.test>\r\nDate: Tue, 3 Nov 2026 08:00:00 +0000\r\n\r\nInvoice ${i}\r\n`);
  }
}

/** The bare side: one connection, the same commands the service sends for a bulk move (without the id FETCH). */
async function bareMove(client: ImapFlow, from: string, to: string): Promise<number> {
  const lock = await client.getMailboxLock(from);
  try {
    const uids = await client.search({ subject: 'invoice' }, { uid: true });
    if (!uids || !uids.length) return 0;
    await client.messageMove(uids, to, { uid: true });
    return uids.length;
  } finally {
    lock.release();
  }
}

export async function measureMailChange(o: { quick: boolean; tmp: string; log: (msg: string) => void }): Promise<MailChangeResult> {
  const messages = o.quick ? 1000 : 10_000;
  const rounds = o.quick ? 2 : 4;
  const dovecot = await startDovecot({ users: USERS });
  let svc: Service | undefined;
  let bare: ImapFlow | undefined;
  try {
    o.log(`mail change: seeding 2 x ${messages} messages`);
    for (const user of Object.keys(USERS)) await seed(dovecot, user, messages);
    svc = await startService('mail-change', o.tmp, {
      MSB_AUTH: 'keys',
      MSB_API_KEYS: `bench:bot:${createHash('sha256').update(KEY, 'utf8').digest('hex')}`,
      MSB_RATE_LIMIT_PER_MINUTE: '0',
      MSB_OUTBOUND_DENY: 'none',
      MSB_OUTBOUND_PORTS: '*',
      MSB_COMMAND_TIMEOUT_MS: '120000',
      MSB_LOCK_TIMEOUT_MS: '120000',
    }, { headers: { authorization: `Bearer ${KEY}` } });
    await svc.http.expect('POST', '/v1/sessions', [201], {
      name: 'mover', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' }, username: 'move-broker@bench.test', password: USERS['move-broker@bench.test'], watch: [],
    });
    bare = new ImapFlow({ host: '127.0.0.1', port: dovecot.ports.imap, secure: false, doSTARTTLS: false, auth: { user: 'move-bare@bench.test', pass: USERS['move-bare@bench.test'] }, logger: false, disableAutoIdle: true });
    bare.on('error', () => {});
    await bare.connect();
    await bare.mailboxCreate('Done');
    // the broker's folder, made through a client of the bench (the service has no folder creation)
    const maker = new ImapFlow({ host: '127.0.0.1', port: dovecot.ports.imap, secure: false, doSTARTTLS: false, auth: { user: 'move-broker@bench.test', pass: USERS['move-broker@bench.test'] }, logger: false });
    maker.on('error', () => {});
    await maker.connect();
    await maker.mailboxCreate('Done');
    await maker.logout();
    const brokerMs: number[] = [];
    const bareMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const [from, to] = round % 2 === 0 ? ['INBOX', 'Done'] : ['Done', 'INBOX'];
      let t = performance.now();
      const res = await svc.http.expect('POST', '/v1/sessions/mover/messages/move', [200], { folder: from, where: { subject: 'invoice' }, to });
      brokerMs.push(performance.now() - t);
      const moved = (JSON.parse(res.text) as { moved: number }).moved;
      t = performance.now();
      const bareMoved = await bareMove(bare, from, to);
      bareMs.push(performance.now() - t);
      if (moved !== messages || bareMoved !== messages) throw new Error(`round ${round}: broker moved ${moved}, bare ${bareMoved}, expected ${messages}`);
      o.log(`bulk move ${from} -> ${to} of ${messages}: broker ${brokerMs.at(-1)!.toFixed(0)} ms, bare ${bareMs.at(-1)!.toFixed(0)} ms`);
    }
    return { messages, rounds, broker: summarize(brokerMs), bare: summarize(bareMs) };
  } finally {
    await bare?.logout().catch(() => undefined);
    await svc?.stop();
    await dovecot.close();
  }
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '–');

export function mailChangeRows(r: MailChangeResult): Row[] {
  return [
    {
      figure: `bulk move of ${r.messages} messages by subject filter ("Move all"), median ms (n=${r.rounds})`,
      broker: f0(r.broker.median),
      baseline: `${f0(r.bare.median)} (bare imapflow: SELECT, UID SEARCH SUBJECT, UID MOVE of the set)`,
      ratio: ratio(r.broker.median, r.bare.median),
      target: '<= 1.3x',
      met: r.broker.median <= 1.3 * r.bare.median,
    },
  ];
}

// alone: npx tsx bench/mail-change.ts [--quick] [--skip-build]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const t0 = performance.now();
  const log = (msg: string) => console.log(`[bench mail-change ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'msb-bench-change-'));
  (async () => {
    if (!process.argv.includes('--skip-build')) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    const result = await measureMailChange({ quick, tmp, log });
    console.log(`\n${markdownTable(mailChangeRows(result))}`);
    rmSync(tmp, { recursive: true, force: true });
    process.exit(0);
  })().catch((err: unknown) => {
    console.error(err);
    console.error(`logs kept in ${tmp}`);
    process.exit(1);
  });
}
