import { PassThrough, type Readable } from 'node:stream';
import { MailParser, type AttachmentStream, type MessageText } from 'mailparser';
import { HEADER_MAX_BYTES, MAX_PARTS } from './limits.js';

/** Waits until `stream` takes writes again, or is gone; leaves no listener behind. */
function drained(stream: MailParser): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

/** One attachment's decoded bytes, streamed while the rest of the message is still being read. */
export interface ExtractedAttachment {
  contentType: string;
  filename: string | null;
  stream: Readable;
}

/**
 * Finds the attachment `partId` in a message stream and streams its decoded content, without holding the
 * message or the attachment in memory: other attachments are drained, and once the wanted one has ended the
 * input is destroyed (its owner, e.g. a POP3 connection, closes). At most `maxBytesBefore` bytes are read
 * before the attachment starts (text bodies before it are buffered by the parser): an attachment beyond that,
 * like one beyond a parse's limit, is not found. Resolves undefined when the message has no such attachment.
 */
export function extractAttachment(input: Readable, partId: string, maxBytesBefore: number): Promise<ExtractedAttachment | undefined> {
  const parser = new MailParser({
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
    ignoreEmbedded: true,
    checksumAlgo: false,
    maxHeadSize: HEADER_MAX_BYTES,
    maxChildNodes: MAX_PARTS,
  });
  return new Promise((resolve, reject) => {
    let output: PassThrough | undefined;
    let failed = false;
    const stop = () => {
      if (!input.destroyed) input.destroy();
      parser.destroy();
    };
    parser.on('error', (err: Error) => {
      failed = true;
      if (output) output.destroy(err);
      else resolve(undefined);
      stop();
    });
    parser.on('data', (data: AttachmentStream | MessageText) => {
      if (data.type === 'text') return;
      if (output || (data.partId ?? '1') !== partId) {
        data.content.resume();
        data.content.once('end', () => data.release?.());
        return;
      }
      const stream = new PassThrough();
      output = stream;
      data.content.once('error', (err: Error) => stream.destroy(err));
      data.content.once('end', () => {
        data.release?.();
        stop();
      });
      // the consumer's pace sets the parser's, and so the input's (pipe() honours backpressure)
      data.content.pipe(stream);
      stream.once('close', () => {
        if (!stream.writableFinished) stop();
      });
      resolve({ contentType: data.contentType, filename: data.filename ?? null, stream });
    });
    parser.once('end', () => {
      if (!output) resolve(undefined);
    });

    void (async () => {
      let before = 0;
      try {
        for await (const chunk of input) {
          if (failed || parser.destroyed) break;
          if (!output) {
            before += (chunk as Buffer).length;
            if (before > maxBytesBefore) {
              resolve(undefined);
              stop();
              return;
            }
          }
          if (!parser.write(chunk)) await drained(parser);
        }
        if (!parser.destroyed) parser.end();
      } catch (err) {
        // the input failed (a dropped connection), or was stopped here once the attachment had ended
        if (!output) reject(err);
        else if (!output.writableEnded) output.destroy(err as Error);
        stop();
      }
    })();
  });
}
