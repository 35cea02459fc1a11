import type { TestContext } from 'node:test';
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

/** Builds the app with test settings, captures its logs, and closes it when the test ends. */
export async function build(t: Pick<TestContext, 'after'>, env: Record<string, string> = {}): Promise<TestApp> {
  const logs: string[] = [];
  const config = loadConfig({ LOG_LEVEL: 'trace', MSB_MAIL_LOG_LEVEL: 'trace', ...env });
  const stream = {
    write(line: string) {
      logs.push(line);
      allLogs.push(line);
    },
  };
  const app = await buildApp(config, { logger: createLogger(config, stream) });
  t.after(() => app.close());
  return { app, logs };
}
