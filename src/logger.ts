import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';
import { redactValue } from './security/redact.js';

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

/** The level methods a mail library calls (imapflow's Logger; MSAL's callback goes through the same). */
export interface LibraryLogger {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  fatal(...args: unknown[]): void;
  isLevelEnabled(level: string): boolean;
}

const LIBRARY_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** The error a library log line is about: imapflow logs `{ err, ... }`, others the error itself. */
function errorOf(first: unknown): unknown {
  if (first instanceof Error) return first;
  return typeof first === 'object' && first !== null && 'err' in first ? (first as { err: unknown }).err : undefined;
}

/**
 * The logger to hand a mail library: every argument of every line (message and fields alike) has the
 * session's current secrets removed by the rule API details use (redactSecrets), because libraries log
 * what a server said, and a server may echo the password (imapflow logs the raw responseText of a
 * refused LOGIN at error level). `secrets` is read per line: a token that changes is covered at once.
 * A line about an error that `expected` accepts (a wrong password, an untrusted certificate: the caller
 * gets it as the answer) goes out at debug, without its stack at the levels operators read.
 */
export function scrubbingLogger(logger: Logger, secrets: () => readonly string[], expected?: (err: unknown) => boolean): LibraryLogger {
  const out = { isLevelEnabled: (level: string) => logger.isLevelEnabled(level) } as LibraryLogger;
  for (const wanted of LIBRARY_LEVELS) {
    out[wanted] = (...args: unknown[]) => {
      const level = expected && (wanted === 'error' || wanted === 'warn') && expected(errorOf(args[0])) ? 'debug' : wanted;
      if (!logger.isLevelEnabled(level)) return;
      const current = secrets();
      const clean = args.map((arg) => redactValue(arg, current));
      (logger[level] as (...a: unknown[]) => void)(...clean);
    };
  }
  return out;
}

/**
 * The logger of one request (Fastify's childLoggerFactory): the pino child, with the request id bound, is made
 * when the request first logs at an enabled level, not for every request. Making it is not free (its bindings
 * pass the redaction), and most requests log nothing at the service's level (an inspect at warn: about a tenth
 * of its CPU went there, bench/inspect-cpu.ts). Plain methods on a class: nothing is allocated per request but
 * the object itself.
 */
class RequestLogger {
  readonly #parent: Logger;
  readonly #bindings: pino.Bindings;
  readonly #options: pino.ChildLoggerOptions;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  #real(): Logger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#options));
  }

  get level(): string {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    const values = this.#parent.levels.values;
    return (values[level] ?? Infinity) >= (values[this.level] ?? 0);
  }

  #log(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: unknown[]): void {
    if (this.isLevelEnabled(level)) (this.#real()[level] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void { this.#log('fatal', args); }
  error(...args: unknown[]): void { this.#log('error', args); }
  warn(...args: unknown[]): void { this.#log('warn', args); }
  info(...args: unknown[]): void { this.#log('info', args); }
  debug(...args: unknown[]): void { this.#log('debug', args); }
  trace(...args: unknown[]): void { this.#log('trace', args); }
  silent(): void {}

  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.#real().child(bindings, options);
  }
}

/** Fastify's childLoggerFactory: see RequestLogger. */
export function lazyRequestLogger(parent: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions): Logger {
  return new RequestLogger(parent, bindings, options) as unknown as Logger;
}
