import { Readable } from 'node:stream';
import type Pop3Command from 'node-pop3';
import { AppError } from '../../errors.js';
import { scrub } from '../../net/errors.js';

/**
 * POP3 multi-line answers (RETR, TOP, UIDL, LIST), read off node-pop3's socket by this module instead of
 * node-pop3's own stream. node-pop3 decides where an answer ends by looking at each TCP chunk on its own: a
 * terminator split across two chunks is never seen (the command hangs until its timeout), a chunk that happens
 * to be "." or ".\r\n" ends the answer early (the message is silently cut), dot-stuffing is not undone and the
 * last line's CRLF is dropped. Here the answer is decoded as RFC 1939 3 says, whatever the chunking: the
 * status line, then lines with one leading "." removed, up to the line ".". The body is a stream that pauses
 * the socket while its reader is behind, so a 100 MB RETR holds a few chunks in memory, not 100 MB.
 *
 * node-pop3 keeps the connection otherwise (login, STAT, QUIT): its 'data' listeners are set aside for the
 * length of one answer and put back after the terminator.
 */

const DOT = 0x2e;
const CR = 0x0d;
const LF = 0x0a;

/** Undoes dot-stuffing and finds the terminating "." line across any chunking. */
export class DotDecoder {
  #lineStart = true;
  /** The start of a line that may be the terminator (".", ".\r"), waiting for the next chunk. */
  #held: Buffer | undefined;
  done = false;

  /**
   * The body bytes in `chunk`: as few slices of it as the removed dots allow (one, mostly), since every slice
   * becomes one write downstream. After the terminator `done` is set and the rest is ignored.
   */
  push(chunk: Buffer): Buffer[] {
    const data = this.#held ? Buffer.concat([this.#held, chunk]) : chunk;
    this.#held = undefined;
    const out: Buffer[] = [];
    let run = 0; // where the current run of body bytes started
    let i = 0;
    while (i < data.length && !this.done) {
      if (this.#lineStart) {
        if (data[i] === DOT) {
          const next = data[i + 1];
          if (next === undefined || (next === CR && data[i + 2] === undefined)) {
            if (i > run) out.push(data.subarray(run, i));
            this.#held = data.subarray(i);
            return out;
          }
          // "." CRLF ends the answer (a bare LF is taken as well, for servers that send one)
          if (next === LF || (next === CR && data[i + 2] === LF)) {
            this.done = true;
            break;
          }
          // any other line starting with "." was stuffed: drop the one added
          if (i > run) out.push(data.subarray(run, i));
          run = i + 1;
          i += 1;
        }
        this.#lineStart = false;
      }
      const nl = data.indexOf(LF, i);
      if (nl < 0) {
        i = data.length;
      } else {
        i = nl + 1;
        this.#lineStart = true;
      }
    }
    if (i > run) out.push(data.subarray(run, i));
    return out;
  }
}

/** The socket node-pop3 reads from (TLS or plain), once logged in. */
type Socket = NonNullable<Pop3Command['_socket']>;

const STATUS_MAX = 4096;

/**
 * Sends `command` and resolves with its multi-line answer as a stream, once the server said +OK; rejects with
 * MAIL_PROTOCOL_ERROR on -ERR (a missing message...) and with MAIL_NETWORK_ERROR when the connection ends.
 * Destroying the stream before its end destroys the connection (it is mid-answer). `where` names the server.
 */
export function multiline(pop: Pop3Command, command: string, where: string): Promise<Readable> {
  const socket = pop._socket as Socket | null;
  if (!socket || socket.destroyed) return Promise.reject(new AppError('MAIL_NETWORK_ERROR', `${where}: not connected`));
  const saved = socket.listeners('data') as ((chunk: Buffer) => void)[];
  socket.removeAllListeners('data');
  const decoder = new DotDecoder();
  let status: Buffer | null = Buffer.alloc(0);
  const body = new Readable({
    read: () => socket.resume(),
    destroy: (err, callback) => {
      if (!decoder.done) socket.destroy();
      callback(err);
    },
  });

  return new Promise<Readable>((resolve, reject) => {
    const restore = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      for (const listener of saved) socket.on('data', listener);
      // a socket paused for a slow reader would hold back the next answer: it is handed back flowing
      socket.resume();
    };
    const fail = (err: AppError) => {
      restore();
      if (status !== null) reject(err);
      else body.destroy(err);
    };
    const onClose = () => fail(new AppError('MAIL_NETWORK_ERROR', `${where}: the connection closed during ${command.split(' ')[0]}`));
    const onError = () => fail(new AppError('MAIL_NETWORK_ERROR', `${where}: the connection failed during ${command.split(' ')[0]}`));
    const onData = (input: Buffer) => {
      let chunk = input;
      if (status !== null) {
        const line = Buffer.concat([status, chunk]);
        const nl = line.indexOf(LF);
        if (nl < 0) {
          if (line.length > STATUS_MAX) {
            socket.destroy();
            fail(new AppError('MAIL_PROTOCOL_ERROR', `${where}: no status line in the answer to ${command.split(' ')[0]}`));
          } else {
            status = line;
          }
          return;
        }
        const text = line.subarray(0, nl).toString('latin1').trim();
        chunk = line.subarray(nl + 1);
        if (!text.startsWith('+OK')) {
          // a refused multi-line command answers one line: the connection stays usable
          restore();
          reject(new AppError('MAIL_PROTOCOL_ERROR', `${where}: ${command.split(' ')[0]} refused: ${scrub(text.replace(/^-ERR\s*/, ''))}`));
          return;
        }
        status = null;
        resolve(body);
      }
      for (const part of decoder.push(chunk)) {
        if (!body.push(part)) socket.pause();
      }
      if (decoder.done) {
        restore();
        body.push(null);
      }
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.resume();
    socket.write(`${command}\r\n`, 'latin1');
  });
}

/**
 * Reads a whole multi-line answer, keeping its first `keep` bytes: the rest is read and dropped, so the
 * connection stays in step for the next command (TOP of a message with a 50 MB header keeps 1 MB).
 */
export async function collect(body: Readable, keep: number): Promise<{ bytes: Buffer; complete: boolean }> {
  const parts: Buffer[] = [];
  let kept = 0;
  let total = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (kept < keep) {
      const part = buf.subarray(0, keep - kept);
      parts.push(part);
      kept += part.length;
    }
  }
  return { bytes: Buffer.concat(parts), complete: total <= keep };
}
