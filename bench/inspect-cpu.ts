// Server CPU per inspect request (GET /v1/sessions/:name) against a bare Fastify route returning the same JSON,
// both in this process (the service built by `npm run build`, as it runs), measured while autocannon (a child
// process) loads each in turn: for working on the request path alone, with a profiler if wanted. Not part of
// the runner (bench/inspect.ts measures the service as a process of its own).
//   npm run build && npx tsx bench/inspect-cpu.ts [--s=5] [--connections=32]
//   ... --create[=N]: instead, CPU per create+close (POST + DELETE, IMAP, watch: []) against bare imapflow doing the
//   same wire work (connect, login, STATUS INBOX, logout), N of each, interleaved: their difference is the
//   broker's own CPU per create
//   ONLY=broker PROFILE=/tmp/broker.cpuprofile npx tsx bench/inspect-cpu.ts   (one side, profiled during the load
//   only; then npx tsx bench/profile-top.ts /tmp/broker.cpuprofile)
import { spawn } from 'node:child_process';
import Fastify from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { startDovecot } from '../test/harness/dovecot.js';
import { bareImap, SEQ_PASS, SEQ_USER } from './lib/targets.js';

const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const seconds = arg('s', 5);
const connections = arg('connections', 32);
// the compiled service (tsx would add its own helpers to every function the request path makes)
const dist = (file: string) => `../dist/${file}`;
const { buildApp } = (await import(dist('app.js'))) as typeof import('../src/app.js');
const { loadConfig } = (await import(dist('config.js'))) as typeof import('../src/config.js');
const key = `msb_bench_${randomBytes(24).toString('base64url')}`;
const dovecot = await startDovecot();
const app = await buildApp(loadConfig({
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  MSB_AUTH: 'keys',
  MSB_API_KEYS: `bench:bot:${createHash('sha256').update(key).digest('hex')}`,
  MSB_RATE_LIMIT_PER_MINUTE: '0',
  MSB_OUTBOUND_DENY: 'none',
  MSB_OUTBOUND_PORTS: '*',
  MSB_SUMMARY_MAX_AGE_MS: '3600000',
  // EXTRA_ENV='{"MSB_FAILED_REQUEST_LIMIT_PER_MINUTE":"0"}': what a setting costs
  ...(JSON.parse(process.env.EXTRA_ENV ?? '{}') as Record<string, string>),
}));
await app.listen({ port: 0, host: '127.0.0.1' });
const port = (app.server.address() as { port: number }).port;
const auth = { authorization: `Bearer ${key}` };
const created = await app.inject({ method: 'POST', url: '/v1/sessions', headers: auth, payload: { name: 's', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' }, username: 'alice@example.test', password: 'alice-Secret-1', watch: [] } });
if (created.statusCode !== 201) throw new Error(created.body);
// the baseline: a bare Fastify route returning the same JSON, in this process too
const sample = (await app.inject({ method: 'GET', url: '/v1/sessions/s', headers: auth })).json();
const bare = Fastify({ logger: false });
bare.get('/v1/sessions/:name', async () => sample);
await bare.listen({ port: 0, host: '127.0.0.1' });
const barePort = (bare.server.address() as { port: number }).port;
const creates = process.argv.find((a) => a.startsWith('--create'));
const inspector = process.env.PROFILE ? new (await import('node:inspector')).Session() : undefined;
const post = (method: string, params?: object) => new Promise<any>((resolve, reject) => inspector!.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
const startProfile = async () => {
  if (!inspector) return;
  inspector.connect();
  await post('Profiler.enable');
  await post('Profiler.start');
};
const stopProfile = async () => {
  if (!inspector) return;
  const { profile } = await post('Profiler.stop');
  (await import('node:fs')).writeFileSync(process.env.PROFILE!, JSON.stringify(profile));
};
if (creates) {
  const n = Number(creates.split('=')[1] ?? 200);
  const body = { type: 'imap', host: '127.0.0.1', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' }, username: SEQ_USER, password: SEQ_PASS, watch: [] };
  const cpu = { broker: 0, bare: 0 };
  for (let i = -20; i < n; i++) {
    if (i === 0) await startProfile();
    let before = process.cpuUsage();
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', headers: auth, payload: { ...body, name: `c${i + 20}` } });
    if (res.statusCode !== 201) throw new Error(res.body);
    await app.inject({ method: 'DELETE', url: `/v1/sessions/c${i + 20}`, headers: auth });
    let used = process.cpuUsage(before);
    if (i >= 0) cpu.broker += used.user + used.system;
    if (process.env.ONLY === 'broker') continue;
    before = process.cpuUsage();
    await bareImap({ port: dovecot.ports.imap, secure: false }, true);
    used = process.cpuUsage(before);
    if (i >= 0) cpu.bare += used.user + used.system;
  }
  await stopProfile();
  const ms = (us: number) => (us / n / 1000).toFixed(3);
  console.log(`create+close: broker ${ms(cpu.broker)} ms CPU, bare imapflow ${ms(cpu.bare)} ms CPU, the broker's own ${ms(cpu.broker - cpu.bare)} ms (n=${n}; app.inject, no HTTP socket)`);
  await app.close();
  await dovecot.close();
  process.exit(0);
}
const run = (s: number, port: number) => new Promise<{ requests: number; cpuUs: number }>((resolve, reject) => {
  const before = process.cpuUsage();
  const child = spawn(process.execPath, ['node_modules/autocannon/autocannon.js', '-j', '-c', String(connections), '-d', String(s), '-H', `authorization=Bearer ${key}`, `http://127.0.0.1:${port}/v1/sessions/s`], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.on('exit', () => {
    const used = process.cpuUsage(before);
    try {
      const r = JSON.parse(out);
      if (r.non2xx) reject(new Error(`${r.non2xx} non-2xx`));
      resolve({ requests: r.requests.total, cpuUs: used.user + used.system });
    } catch (err) { reject(err); }
  });
});
await run(1, port);
await run(1, barePort);
// PROFILE=<file>: the V8 profile of this process during the measured runs (not the start-up)
await startProfile();
for (let i = 0; i < 3; i++) {
  // ONLY=broker or ONLY=bare: one side, for a profile of it alone
  for (const [label, p] of ([['broker', port], ['bare', barePort]] as const).filter(([l]) => !process.env.ONLY || process.env.ONLY === l)) {
    const r = await run(seconds, p);
    console.log(`${label}: ${(r.requests / seconds).toFixed(0)} req/s, server CPU ${(r.cpuUs / r.requests).toFixed(1)} µs per request`);
  }
}
await stopProfile();
await bare.close();
await app.close();
await dovecot.close();
