import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SessionObserver } from './domain/session.js';
import type { SessionPool } from './domain/pool.js';

/**
 * Prometheus metrics, one registry per app (tests build many apps in one process). The pool reports
 * through the SessionObserver interface, so the domain code never imports prom-client.
 */
export interface Metrics {
  registry: Registry;
  observer: SessionObserver;
  /** Makes the sessions gauge read this pool at each scrape. */
  watch(pool: SessionPool): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  let watched: SessionPool | undefined;
  collectDefaultMetrics({ register: registry, prefix: 'msb_' });

  new Gauge({
    name: 'msb_sessions',
    help: 'Sessions in the pool, by type and state.',
    labelNames: ['type', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const session of watched?.list() ?? []) this.inc({ type: session.type, state: session.state });
    },
  });
  const connects = new Counter({ name: 'msb_connects_total', help: 'Successful connects (first connect and reconnects).', labelNames: ['type', 'reconnect'], registers: [registry] });
  const reconnects = new Counter({ name: 'msb_reconnects_total', help: 'Times a session lost its connection and started reconnecting.', labelNames: ['type'], registers: [registry] });
  const failures = new Counter({ name: 'msb_failures_total', help: 'Sessions that failed, by error code.', labelNames: ['type', 'code'], registers: [registry] });
  const createSeconds = new Histogram({
    name: 'msb_connect_duration_seconds',
    help: 'Time to connect, log in and read the first summary.',
    labelNames: ['type', 'reconnect'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const keepaliveSeconds = new Histogram({
    name: 'msb_keepalive_rtt_seconds',
    help: 'Round trip of keepalive commands (IMAP STATUS, POP3 check).',
    labelNames: ['type', 'ok'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [registry],
  });

  const observer: SessionObserver = {
    connected(type, ms, reconnect) {
      connects.inc({ type, reconnect: String(reconnect) });
      createSeconds.observe({ type, reconnect: String(reconnect) }, ms / 1000);
    },
    reconnecting(type) {
      reconnects.inc({ type });
    },
    failed(type, code) {
      failures.inc({ type, code });
    },
    keepalive(type, ms, ok) {
      keepaliveSeconds.observe({ type, ok: String(ok) }, ms / 1000);
    },
  };
  return {
    registry,
    observer,
    watch(pool) {
      watched = pool;
    },
  };
}
