import type * as Msal from '@azure/msal-node';
import type { Logger } from 'pino';
import { scrubbingLogger } from '../logger.js';

/**
 * MSAL's log lines go to a pino child at the mail libraries' level. PII logging stays off, and lines
 * MSAL flags as containing PII are dropped anyway: tokens and user names never reach the log this way.
 * What is left can still quote the identity provider (an error_description), so the lines lose
 * `secrets()` (the client secret, the password of a ROPC request in flight) like every library line.
 */
export function msalLoggerOptions(
  msal: typeof Msal,
  logger: Logger,
  level: string,
  secrets: () => readonly string[] = () => [],
): NonNullable<Msal.NodeSystemOptions['loggerOptions']> {
  const log = scrubbingLogger(logger.child({ lib: 'msal' }, { level }), secrets);
  const { LogLevel } = msal;
  const msalLevel =
    level === 'trace' ? LogLevel.Trace : level === 'debug' ? LogLevel.Verbose : level === 'info' ? LogLevel.Info : level === 'warn' ? LogLevel.Warning : LogLevel.Error;
  return {
    piiLoggingEnabled: false,
    logLevel: msalLevel,
    loggerCallback: (msgLevel: Msal.LogLevel, message: string, containsPii: boolean) => {
      if (containsPii) return;
      if (msgLevel === LogLevel.Error) log.error(message);
      else if (msgLevel === LogLevel.Warning) log.warn(message);
      else if (msgLevel === LogLevel.Info) log.info(message);
      else if (msgLevel === LogLevel.Verbose) log.debug(message);
      else log.trace(message);
    },
  };
}
