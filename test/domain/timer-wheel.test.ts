import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimerWheel, type TimerHost } from '../../src/domain/timer-wheel.js';

/** A fake clock with one timer slot, as the wheel uses the platform: advance() fires what falls due. */
function fakeHost() {
  let now = 1_000_000;
  let armed: { fn: () => void; at: number; id: number } | undefined;
  let ids = 0;
  let sets = 0;
  let longest = 0;
  const host: TimerHost = {
    now: () => now,
    set(fn, ms) {
      sets += 1;
      longest = Math.max(longest, ms);
      armed = { fn, at: now + ms, id: ++ids };
      return armed.id;
    },
    clear(handle) {
      if (armed?.id === handle) armed = undefined;
    },
  };
  return {
    host,
    get armedAt() { return armed?.at; },
    get sets() { return sets; },
    /** The longest delay the platform timer was given. */
    get longest() { return longest; },
    advance(ms: number) {
      const until = now + ms;
      while (armed && armed.at <= until) {
        now = armed.at;
        const { fn } = armed;
        armed = undefined;
        fn();
      }
      now = until;
    },
  };
}

test('timers run in due order, never early, with one platform timer for all of them', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 10, host: f.host });
  const ran: string[] = [];
  wheel.schedule(300, () => ran.push('c'));
  wheel.schedule(100, () => ran.push('a'));
  wheel.schedule(200, () => ran.push('b'));
  wheel.schedule(100, () => ran.push('a2'));
  assert.equal(wheel.size, 4);
  f.advance(99);
  assert.deepEqual(ran, []);
  f.advance(1);
  assert.deepEqual(ran, ['a', 'a2'], 'same due time: in the order scheduled');
  f.advance(200);
  assert.deepEqual(ran, ['a', 'a2', 'b', 'c']);
  assert.equal(wheel.size, 0);
  assert.equal(f.armedAt, undefined, 'nothing armed when nothing is due');
});

test('a timer beyond what a Node timer takes (2^31 - 1 ms; Node fires a longer one after 1 ms) runs at its due time, not early', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 100, host: f.host });
  const ran: string[] = [];
  // found by the fuzz test: an idle timeout just below the limit, rounded up to the resolution, went over it
  const nearLimit = 2 ** 31 - 1 - 27;
  const fortyDays = 40 * 86_400_000;
  wheel.schedule(nearLimit, () => ran.push('near'));
  wheel.schedule(fortyDays, () => ran.push('forty'));
  assert.ok(f.longest <= 2 ** 31 - 1, `the platform timer was given ${f.longest} ms`);
  f.advance(nearLimit - 1);
  assert.deepEqual(ran, []);
  f.advance(101);
  assert.deepEqual(ran, ['near']);
  f.advance(fortyDays - nearLimit - 200);
  assert.deepEqual(ran, ['near'], 'not early');
  f.advance(300);
  assert.deepEqual(ran, ['near', 'forty']);
  assert.ok(f.longest <= 2 ** 31 - 1, `the platform timer was given ${f.longest} ms`);
});

test('timers due within one resolution step share one wake-up, at most a step late', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 100, host: f.host });
  const ran: number[] = [];
  for (let i = 0; i < 50; i++) wheel.schedule(1001 + i, () => ran.push(i));
  const setsBefore = f.sets;
  f.advance(1099);
  assert.deepEqual(ran, []);
  f.advance(1);
  assert.equal(ran.length, 50);
  assert.equal(f.sets - setsBefore, 0, 'no re-arming per timer');
});

test('a cancelled timer never runs, and cancelling many does not keep them', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 1, host: f.host });
  const ran: number[] = [];
  const handles = Array.from({ length: 1000 }, (_, i) => wheel.schedule(1000 + i, () => ran.push(i)));
  for (const [i, h] of handles.entries()) if (i % 10 !== 0) h.cancel();
  handles[5]!.cancel(); // twice: harmless
  assert.equal(wheel.size, 100);
  f.advance(5000);
  assert.equal(ran.length, 100);
  assert.ok(ran.every((i) => i % 10 === 0));
  handles[0]!.cancel(); // after it ran: harmless
  assert.equal(wheel.size, 0);
});

test('cancelling the earliest timer re-arms for the next one; a timer scheduled from a callback runs too', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 1, host: f.host });
  const ran: string[] = [];
  const first = wheel.schedule(10, () => ran.push('first'));
  wheel.schedule(50, () => {
    ran.push('second');
    wheel.schedule(0, () => ran.push('from callback'));
  });
  first.cancel();
  f.advance(20);
  assert.deepEqual(ran, []);
  f.advance(40);
  assert.deepEqual(ran, ['second', 'from callback']);
});

test('an earlier timer re-arms the platform timer sooner', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 1, host: f.host });
  wheel.schedule(60_000, () => {});
  const late = f.armedAt!;
  let ran = false;
  wheel.schedule(5, () => (ran = true));
  assert.ok(f.armedAt! < late);
  f.advance(5);
  assert.equal(ran, true);
});

test('a callback that throws does not stop the other timers', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 1, host: f.host });
  let ran = false;
  wheel.schedule(10, () => { throw new Error('boom'); });
  wheel.schedule(20, () => (ran = true));
  assert.throws(() => f.advance(10), /boom/);
  f.advance(20);
  assert.equal(ran, true);
});

test('stop() drops every timer and refuses new ones', () => {
  const f = fakeHost();
  const wheel = new TimerWheel({ resolutionMs: 1, host: f.host });
  let ran = 0;
  wheel.schedule(10, () => (ran += 1));
  wheel.stop();
  wheel.schedule(10, () => (ran += 1)).cancel();
  wheel.schedule(10, () => (ran += 1));
  f.advance(100);
  assert.equal(ran, 0);
  assert.equal(wheel.size, 0);
});

test('with the real clock, a timer runs', async () => {
  const wheel = new TimerWheel({ resolutionMs: 5 });
  await new Promise<void>((resolve) => wheel.schedule(1, resolve));
  wheel.stop();
});
