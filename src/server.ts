import { buildApp } from './app.js';
import { ConfigError, deprecatedVariables, loadConfig } from './config.js';
import { logDestination } from './log-destination.js';
import { createLogger } from './logger.js';
import { installProcessGuard } from './process-guard.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Writes to stderr, where a broken stream must not become an exception of its own. */
function say(text: string): void {
  try {
    process.stderr.write(`mail-session-broker: ${text}\n`);
  } catch {
    // nobody is listening
  }
}

/** The only module that reads the environment, handles signals and listens. */
async function main(): Promise<void> {
  process.stderr.on('error', () => {});
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      say(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const destination = logDestination();
  const logger = createLogger(config, destination);
  installProcessGuard(logger);
  for (const warning of deprecatedVariables(process.env)) logger.warn(warning);
  const app = await buildApp(config, { logger, secretEnv: process.env });

  // The shutdown deadline and the second signal never depend on the logger: the destination never blocks,
  // and the timer is armed before anything is logged.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    const deadline = Date.now() + config.MSB_SHUTDOWN_TIMEOUT_MS;
    setTimeout(() => {
      logger.error('shutdown took too long: exiting anyway');
      process.exit(1);
    }, config.MSB_SHUTDOWN_TIMEOUT_MS);
    logger.info({ signal, timeoutMs: config.MSB_SHUTDOWN_TIMEOUT_MS }, 'shutting down: logging out of every session');
    app.close().then(
      async () => {
        logger.info('shut down cleanly');
        // the last lines get a moment to reach a slow reader, never the whole deadline
        await destination.flush(Math.min(1000, Math.max(0, deadline - Date.now()) / 2));
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  if (config.MSB_AUTH === 'none' && !LOOPBACK.has(config.HOST)) {
    logger.warn(
      { host: config.HOST },
      `NO AUTHENTICATION ON ${config.HOST}: MSB_AUTH=none with HOST=${config.HOST} serves every session and every readable secret to anyone who reaches this port. Development only; without HOST it listens on loopback.`,
    );
  }
  await app.listen({ port: config.PORT, host: config.HOST });
}

main().catch((err: unknown) => {
  say(`failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
