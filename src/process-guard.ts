import type { Logger } from 'pino';
import { isAppError } from './errors.js';

/**
 * The process-level safety net: an exception thrown from a library's callback (a socket handler, a
 * parser, a timer of imapflow or ews-javascript-api) or a promise rejection that nobody handles is
 * logged and the service keeps running, instead of Node's default of exiting and dropping every
 * principal's sessions.
 *
 * Why running on is safe here: such a fault unwinds one callback of one connection. The pool and the
 * session state machine change their state only in synchronous steps, so no fault can leave them half
 * updated; the connection the fault came from is either still usable or is noticed as dead by the
 * session's own deadlines (every command has one) and keepalive, which reconnect it. What is not
 * recovered: the one operation that was in that callback (its request still gets its own deadline's
 * answer). Each fault is a bug to fix at its root; the log line says where.
 *
 * What is logged: the error's name, code and stack frames (code locations), never its message or the
 * stack's first line, which carry whatever the library put there: a server's answer, mail content, an
 * echoed password. Our own AppErrors are the exception: their messages are built secret-free.
 */
export function installProcessGuard(logger: Logger): void {
  let reporting = false;
  const report = (origin: string, err: unknown) => {
    // a fault while logging a fault (a broken logger) must not loop
    if (reporting) return;
    reporting = true;
    try {
      logger.error({ origin, fault: describeFault(err) }, 'unhandled fault outside any request: logged, the service keeps running');
    } catch {
      // nothing left to tell it to
    } finally {
      reporting = false;
    }
  };
  process.on('uncaughtException', (err, origin) => report(origin, err));
  process.on('unhandledRejection', (reason) => report('unhandledRejection', reason));
  quietConsole(logger);
}

/**
 * Libraries that print with console.* (ews-javascript-api does, with server answers in it) would write
 * raw text to stdout: past the log format and its redaction, and through Node's process.stdout, which
 * blocks the whole process while the log pipe is full. One debug line says it happened, without the text.
 */
function quietConsole(logger: Logger): void {
  for (const method of ['log', 'info', 'debug', 'warn', 'error', 'trace', 'dir', 'table'] as const) {
    console[method] = () => logger.debug({ lib: 'console', method }, 'a library wrote to the console: its text is not logged (it can carry what a server sent)');
  }
}

export interface FaultDescription {
  name: string;
  code?: string;
  /** Our own errors only; a library's message may carry what a server sent. */
  message?: string;
  /** Up to 10 "at ..." lines of the stack: where, never what. */
  frames: string[];
}

const SAFE_CODE = /^[A-Za-z0-9_.:-]{1,64}$/;
const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_$]{0,63}$/;

/** A loggable description of anything thrown: name, code and code locations only. */
export function describeFault(err: unknown): FaultDescription {
  if (typeof err !== 'object' || err === null) return { name: typeof err, frames: [] };
  const e = err as { name?: unknown; code?: unknown; stack?: unknown; constructor?: { name?: unknown } };
  const rawName = typeof e.name === 'string' ? e.name : typeof e.constructor?.name === 'string' ? e.constructor.name : 'Object';
  const frames =
    typeof e.stack === 'string'
      ? e.stack
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line.startsWith('at '))
          // a frame is a function name and a file position; bound it anyway
          .map((line) => line.slice(0, 300))
          .slice(0, 10)
      : [];
  return {
    name: SAFE_NAME.test(rawName) ? rawName : 'Error',
    ...(typeof e.code === 'string' && SAFE_CODE.test(e.code) ? { code: e.code } : typeof e.code === 'number' ? { code: String(e.code) } : {}),
    ...(isAppError(err) ? { message: err.message } : {}),
    frames,
  };
}
