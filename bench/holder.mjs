// The bare-imapflow baseline of the pool benchmark: holds N IMAP connections in one plain Node process
// (no TypeScript loader, started with --expose-gc), with the options the service's ImapConnector uses
// (logger: false instead of a pino child, disableAutoIdle: true), doing the same wire work as a service
// session (connect, login, STATUS INBOX) and the same keepalive as the service's Session: STATUS INBOX
// every keepaliveMs +-10%, first one keepaliveMs after connecting (src/domain/session.ts).
//
// Protocol: one JSON command per line on stdin, one JSON answer per line on stdout.
//   {"cmd":"open","n":..,"concurrency":..,"host":..,"port":..,"users":[[user,pass],..],"status":true,"keepaliveMs":..}
//     "idle": true instead of "status": each connection EXAMINEs INBOX and IDLEs at once, as the service's watch
//     connection does (autoIdleDelay 0, IDLE restarted every 4 minutes: src/connectors/imap/connection.ts)
//   {"cmd":"mem"}  {"cmd":"closeAll"}  {"cmd":"exit"}
import { createInterface } from 'node:readline';
import { ImapFlow } from 'imapflow';

/** @type {ImapFlow[]} */
const clients = [];
/** keepalive timer of each client @type {Map<ImapFlow, NodeJS.Timeout>} */
const timers = new Map();
let drops = 0;
let keepaliveErrors = 0;
let keepalives = 0;

function options(target, user, pass) {
  const idle = target.idle ? { disableAutoIdle: false, autoIdleDelay: 0, maxIdleTime: 4 * 60_000 } : { disableAutoIdle: true };
  return {
    host: target.host,
    port: target.port,
    secure: Boolean(target.secure),
    doSTARTTLS: target.secure ? undefined : false,
    tls: target.ca ? { minVersion: 'TLSv1.2', ca: target.ca } : { minVersion: 'TLSv1.2' },
    auth: { user, pass },
    logger: false,
    connectionTimeout: 15000,
    greetingTimeout: 15000,
    clientInfo: { name: 'mail-session-broker' },
    ...idle,
  };
}

async function openOne(target, index) {
  const [user, pass] = target.users[index % target.users.length];
  const client = new ImapFlow(options(target, user, pass));
  client.on('error', () => {});
  await client.connect();
  if (target.status) await client.status('INBOX', { messages: true, unseen: true });
  if (target.idle) await client.mailboxOpen('INBOX', { readOnly: true });
  client.once('close', () => { drops++; });
  if (target.keepaliveMs > 0) scheduleKeepalive(client, target.keepaliveMs);
  return client;
}

/** As the service: STATUS INBOX after period * (0.9..1.1), then again after each answer. */
function scheduleKeepalive(client, period) {
  const t = setTimeout(() => {
    keepalives++;
    client.status('INBOX', { messages: true, unseen: true }).then(
      () => scheduleKeepalive(client, period),
      () => { keepaliveErrors++; },
    );
  }, Math.round(period * (0.9 + Math.random() * 0.2)));
  t.unref();
  timers.set(client, t);
}

async function open(msg) {
  const started = performance.now();
  const latencies = [];
  let next = 0;
  let failures = 0;
  let firstError;
  const deadline = Date.now() + (msg.timeoutMs ?? 600000);
  const worker = async () => {
    while (next < msg.n && Date.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        clients.push(await openOne(msg, i));
        latencies.push(performance.now() - t0);
      } catch (err) {
        failures++;
        firstError ??= String(err?.message ?? err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(msg.concurrency, msg.n) }, worker));
  return { ms: performance.now() - started, opened: latencies.length, failures, firstError, latencies };
}

function mem() {
  const gc = globalThis.gc;
  if (typeof gc === 'function') {
    gc();
    gc();
  }
  return { ...process.memoryUsage(), gc: typeof gc === 'function', held: clients.length, drops, keepalives, keepaliveErrors };
}

async function closeAll() {
  for (const t of timers.values()) clearTimeout(t);
  timers.clear();
  const all = clients.splice(0);
  await Promise.allSettled(all.map((c) => Promise.race([c.logout(), new Promise((r) => setTimeout(r, 10000))]).finally(() => c.close())));
  return { closed: all.length };
}

const rl = createInterface({ input: process.stdin });
const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
rl.on('line', async (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
    let result;
    if (msg.cmd === 'open') result = await open(msg);
    else if (msg.cmd === 'mem') result = mem();
    else if (msg.cmd === 'closeAll') result = await closeAll();
    else if (msg.cmd === 'exit') {
      await closeAll();
      reply({ id: msg.id, ok: true });
      process.exit(0);
    } else throw new Error(`unknown command ${msg.cmd}`);
    reply({ id: msg.id, ok: true, result });
  } catch (err) {
    reply({ id: msg?.id, ok: false, error: String(err?.stack ?? err) });
  }
});
rl.on('close', () => process.exit(0));
reply({ ready: true, pid: process.pid });
