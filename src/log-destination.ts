import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';

/**
 * Where the service log goes: stdout, written so that a broken or stalled reader can neither stop the
 * service nor its shutdown.
 *
 * Why not pino's default destination (sonic-boom): when stdout is a pipe whose reader has gone, its
 * synchronous flush at exit retries EPIPE forever (sonic-boom 4.2 sleeps and loops on every error but
 * EAGAIN), so `process.exit()` never returns and no signal is handled any more; and its asynchronous
 * writes run on libuv's thread pool, where a write into a pipe nobody reads blocks a thread that exit
 * then waits for. Node's own process.stdout blocks the event loop on a full pipe (pipes are synchronous
 * on Linux). So a pipe (a container's log, a shell pipeline) gets a non-blocking stream of its own: lines
 * queue in memory while the reader is slow, are dropped (and counted) beyond MAX_PENDING_BYTES, and are
 * all dropped once the reader is gone. A socket (journald, a parent process) is written the same way. A
 * file or a terminal is written synchronously, and a write error drops the line instead of throwing.
 *
 * process.stdout is never touched: Node would switch the shared pipe back to blocking mode.
 */
export interface LogDestination {
  write(line: string): void;
  /** Waits until queued lines are written, the reader is gone, or `timeoutMs` passed. Never rejects. */
  flush(timeoutMs: number): Promise<void>;
  /** Lines dropped so far because the reader was too slow or gone. */
  readonly dropped: number;
}

const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** The destination for file descriptor `fd` (stdout by default). */
export function logDestination(fd = 1): LogDestination {
  let pipe: boolean;
  let socket: boolean;
  try {
    const stat = fstatSync(fd);
    pipe = stat.isFIFO();
    socket = stat.isSocket();
  } catch {
    // a closed descriptor: every line is dropped
    return new DroppingDestination();
  }
  // a socket (journald, a parent process) cannot be reopened: the stream takes the descriptor itself
  if (socket) return new StreamDestination(fd, true);
  if (!pipe) return new SyncDestination(fd);
  try {
    // a description of the pipe of our own: non-blocking mode must not leak to whoever shares the original
    // (npm, a shell, stderr after 2>&1), and closing it must not free fd 1 for the next socket to take
    return new StreamDestination(openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK), false);
  } catch (err) {
    // ENXIO: the reader is already gone; no /proc: write as to a file
    return (err as NodeJS.ErrnoException).code === 'ENXIO' ? new DroppingDestination() : new SyncDestination(fd);
  }
}

class DroppingDestination implements LogDestination {
  dropped = 0;
  write(): void {
    this.dropped += 1;
  }
  async flush(): Promise<void> {}
}

/** Files and terminals: one synchronous write per line; an error drops the line, never throws. */
class SyncDestination implements LogDestination {
  dropped = 0;
  #broken = false;
  readonly #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
  }
  write(line: string): void {
    if (this.#broken) {
      this.dropped += 1;
      return;
    }
    try {
      writeSync(this.#fd, line);
    } catch (err) {
      this.dropped += 1;
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.#broken = true;
    }
  }
  async flush(): Promise<void> {}
}

/** A pipe or socket: libuv writes without blocking and queues what the reader has not taken yet. */
class StreamDestination implements LogDestination {
  dropped = 0;
  #broken = false;
  /** Lines dropped since the last note about it was written. */
  #unreported = 0;
  readonly #socket: Socket;

  /**
   * `shared`: the descriptor is the process's own stdout, which closing the stream closes: it is then taken
   * by /dev/null at once, so the number 1 is not handed to the next socket opened (where a stray console
   * write would end up).
   */
  constructor(fd: number, shared: boolean) {
    this.#socket = new Socket({ fd, readable: false, writable: true });
    // EPIPE, ECONNRESET...: the reader is gone for good; an 'error' without a listener would crash the process
    this.#socket.on('error', () => this.#breakDown());
    this.#socket.on('close', () => {
      this.#breakDown();
      if (shared) occupy(fd);
    });
    this.#socket.on('drain', () => this.#reportDropped());
    // pending log lines alone never keep the process alive
    this.#socket.unref();
  }

  write(line: string): void {
    if (this.#broken || this.#socket.writableLength > MAX_PENDING_BYTES) {
      this.dropped += 1;
      this.#unreported += 1;
      return;
    }
    this.#socket.write(line);
  }

  flush(timeoutMs: number): Promise<void> {
    if (this.#broken || this.#socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#socket.off('drain', done).off('close', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.#socket.on('drain', done).on('close', done);
    });
  }

  #breakDown(): void {
    this.#broken = true;
    this.#socket.destroy();
  }

  /** Once a slow reader caught up, one line says how many lines it missed. */
  #reportDropped(): void {
    if (this.#unreported === 0 || this.#broken) return;
    const note = { level: 40, time: new Date().toISOString(), service: 'mail-session-broker', dropped: this.#unreported, msg: 'log lines dropped: the log reader was too slow' };
    this.#unreported = 0;
    this.#socket.write(`${JSON.stringify(note)}\n`);
  }
}

/** Puts /dev/null on a descriptor number that was just closed (open takes the lowest free number). */
function occupy(fd: number): void {
  try {
    const nul = openSync('/dev/null', 'w');
    if (nul !== fd) closeSync(nul);
  } catch {
    // nothing better to do
  }
}
