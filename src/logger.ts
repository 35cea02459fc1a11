import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';

/**
 * Paths redacted in every log line. Secrets are also wrapped in `Secret` (which serializes as
 * "[redacted]") and kept out of log calls; this list is the central safety net for what slips through,
 * such as an Authorization header or a body logged by mistake.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'password', '*.password', '*.*.password',
  'pass', '*.pass', '*.*.pass',
  'accessToken', '*.accessToken', '*.*.accessToken',
  'refreshToken', '*.refreshToken', '*.*.refreshToken',
  'clientSecret', '*.clientSecret', '*.*.clientSecret',
  'auth', '*.auth',
  'body', '*.body',
];

export function loggerOptions(config: Pick<Config, 'LOG_LEVEL'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    base: { service: 'mail-session-broker' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
}

/** The service logger: pino JSON to stdout, or to `destination` (tests capture every line this way). */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(config), destination) : pino(loggerOptions(config));
}
