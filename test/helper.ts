import type { TestContext } from 'node:test';
import type { Response } from 'light-my-request';
import { buildApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';

export interface TestApp {
  app: App;
  /** Every log line the app wrote, service and mail libraries alike (both at trace level). */
  logs: string[];
}

/** Every log line of every app built in this process, for the leak checks. */
export const allLogs: string[] = [];

/**
 * Test defaults: no API keys (tests of authentication set MSB_AUTH=keys), an outbound policy that lets the
 * service reach the test servers on loopback and their random ports, and limits high enough for the suites.
 */
export const TEST_ENV: Record<string, string> = {
  LOG_LEVEL: 'trace',
  MSB_MAIL_LOG_LEVEL: 'trace',
  MSB_AUTH: 'none',
  MSB_OUTBOUND_DENY: 'none',
  MSB_OUTBOUND_PORTS: '*',
  // the test servers listen on random ports of loopback: listed, so that their errors are shown in full
  MSB_OUTBOUND_ALLOW: '127.0.0.0/8,::1,localhost',
  MSB_RATE_LIMIT_PER_MINUTE: '100000',
  MSB_FAILED_REQUEST_LIMIT_PER_MINUTE: '100000',
  // the test servers have self-signed certificates; production defaults to false
  MSB_ALLOW_INSECURE_TLS: 'true',
};

/** Builds the app with test settings, captures its logs, and closes it when the test ends. */
export async function build(
  t: Pick<TestContext, 'after'>,
  env: Record<string, string> = {},
  secretEnv: Record<string, string> = {},
): Promise<TestApp> {
  const logs: string[] = [];
  const config = loadConfig({ ...TEST_ENV, ...env });
  const stream = {
    write(line: string) {
      logs.push(line);
      allLogs.push(line);
    },
  };
  const app = await buildApp(config, { logger: createLogger(config, stream), secretEnv });
  t.after(() => app.close());
  // ready before the test starts its clock: on a loaded machine compiling the schemas takes seconds, and the
  // first injects would otherwise wait for it inside a test's own polling deadline
  await app.ready();
  return { app, logs };
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** The app()/call()/create() of a route test file, recording what the leak checks read at its end. */
export interface Recorder {
  /** The log lines of every app built through app(). */
  logSets: string[][];
  /** Every response body of call() and create(). */
  bodies: string[];
  /** build() over the file's base environment (read when called: worlds start in before()). */
  app(t: Pick<TestContext, 'after'>, env?: Record<string, string>, secretEnv?: Record<string, string>): Promise<App>;
  call(a: App, method: Method, url: string, payload?: object, headers?: Record<string, string>): Promise<Response>;
  create(a: App, body: Record<string, unknown>): Promise<Response>;
}

export function recorder(baseEnv: () => Record<string, string>, into: { logSets?: string[][]; bodies?: string[] } = {}): Recorder {
  const logSets = into.logSets ?? [];
  const bodies = into.bodies ?? [];
  const call: Recorder['call'] = async (a, method, url, payload, headers = {}) => {
    const res = await a.inject({ method, url, headers, ...(payload ? { payload } : {}) });
    bodies.push(res.body);
    return res;
  };
  return {
    logSets,
    bodies,
    async app(t, env = {}, secretEnv = {}) {
      const built = await build(t, { ...baseEnv(), ...env }, secretEnv);
      logSets.push(built.logs);
      return built.app;
    },
    call,
    create: (a, body) => call(a, 'POST', '/v1/sessions', body),
  };
}
