import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdaptiveReconnectGate, type AdaptiveGateOptions } from '../../src/domain/reconnect-gate.js';

/** A fake clock and timers: tick() advances time and runs what falls due. */
function fakeClock() {
  let now = 0;
  let id = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      timers.set(++id, { at: now + ms, fn });
      return id;
    },
    clearTimer: (h: unknown) => void timers.delete(h as number),
    async tick(ms: number) {
      const until = now + ms;
      for (;;) {
        const next = [...timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > until) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
        await new Promise((resolve) => setImmediate(resolve));
      }
      now = until;
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

function gate(options: Partial<AdaptiveGateOptions> = {}) {
  const clock = fakeClock();
  const g = new AdaptiveReconnectGate({ startPerSec: 50, maxPerSec: 400, slowMs: 2000, ...clock, ...options });
  return { g, clock };
}

/** Starts `count` acquires on host; returns a counter of those granted so far. */
function waiters(g: AdaptiveReconnectGate, host: string, count: number) {
  const state = { granted: 0, reports: [] as ((r: { ok: boolean; ms: number; overload?: boolean }) => void)[] };
  for (let i = 0; i < count; i++) {
    void g.acquire(host).then((report) => {
      state.granted += 1;
      state.reports.push(report);
    });
  }
  return state;
}

test('a host gets a burst of a tenth of its rate at once, then the rest at the rate', async () => {
  const { g, clock } = gate();
  const w = waiters(g, 'imap.a.test', 20);
  await clock.tick(0);
  assert.equal(w.granted, 5, 'the burst: 50/s / 10');
  await clock.tick(100);
  assert.ok(w.granted >= 9 && w.granted <= 11, `about 5 more in 100 ms at 50/s, got ${w.granted - 5}`);
  await clock.tick(1000);
  assert.equal(w.granted, 20);
});

test('hosts have rates of their own: a busy host does not hold back another', async () => {
  const { g, clock } = gate();
  const a = waiters(g, 'imap.a.test', 500);
  await clock.tick(0);
  const b = waiters(g, 'imap.b.test', 5);
  await clock.tick(0);
  assert.equal(b.granted, 5, 'host b is served at once although host a has hundreds waiting');
  assert.ok(a.granted < 10);
});

test('fast logins raise the rate, up to the maximum', async () => {
  const { g, clock } = gate({ maxPerSec: 60 });
  const w = waiters(g, 'h', 5);
  await clock.tick(0);
  for (const report of w.reports) report({ ok: true, ms: 20 });
  assert.equal(g.rate('h'), 55);
  const more = waiters(g, 'h', 20);
  await clock.tick(2000);
  for (const report of more.reports) report({ ok: true, ms: 20 });
  assert.equal(g.rate('h'), 60, 'capped at maxPerSec');
});

test('a report counts once, and a wrong password says nothing about the load', async () => {
  const { g, clock } = gate();
  const w = waiters(g, 'h', 2);
  await clock.tick(0);
  w.reports[0]!({ ok: true, ms: 10 });
  w.reports[0]!({ ok: true, ms: 10 });
  assert.equal(g.rate('h'), 51);
  w.reports[1]!({ ok: false, ms: 10 });
  assert.equal(g.rate('h'), 51);
});

test('refusals and slow logins halve the rate, once per slow window, never below the floor', async () => {
  const { g, clock } = gate({ startPerSec: 80 });
  const w = waiters(g, 'h', 8);
  await clock.tick(0);
  w.reports[0]!({ ok: false, ms: 5, overload: true });
  assert.equal(g.rate('h'), 40);
  w.reports[1]!({ ok: false, ms: 5, overload: true });
  assert.equal(g.rate('h'), 40, 'the same burst of failures counts once');
  await clock.tick(2001);
  w.reports[2]!({ ok: true, ms: 2500 });
  assert.equal(g.rate('h'), 20, 'a slow login is a sign of overload too');
  for (let i = 3; i < 8; i++) {
    await clock.tick(2001);
    w.reports[i]!({ ok: false, ms: 1, overload: true });
  }
  assert.equal(g.rate('h'), 5, 'the floor');
});

test('a rate of 0 is no cap; stop() drops the waiters', async () => {
  const { g } = gate({ startPerSec: 0 });
  await Promise.all(Array.from({ length: 1000 }, () => g.acquire('h')));
  assert.equal(g.rate('h'), undefined);
  const capped = gate({ startPerSec: 10 });
  const w = waiters(capped.g, 'h', 10);
  await capped.clock.tick(0);
  capped.g.stop();
  await capped.clock.tick(5000);
  assert.equal(w.granted, 1, 'only the burst; the rest never resolve');
});
