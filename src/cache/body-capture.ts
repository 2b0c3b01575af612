/**
 * Captures a response body for storage while it streams to the client. Chunks are kept only up to
 * `limitBytes`; past that the capture lets go (the client still gets every byte, streaming). The
 * body is handed over only when the origin ended it cleanly and, when it announced a
 * Content-Length, with exactly that many bytes. An origin failure reaches the client's stream as
 * an error, so a truncated body is visible and never stored.
 *
 * A body that comes in one chunk is handed over as it came (a view into its socket read: the
 * memory store keeps it when the read is little larger, memory-store.ts). With a Content-Length
 * within the limit, a body that comes in several is copied as it comes into one buffer of that
 * size, taken when the second chunk arrives: each socket read is then free as soon as the client
 * has it, instead of being held until the end and copied once more.
 */
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { UpstreamResetError } from '../errors.js';

export interface CaptureEvents {
  /** The whole body arrived, within the limit. */
  onComplete(body: Buffer): void;
  /** The body is larger than the limit: it streams on, nothing will be stored. */
  onOverflow(): void;
  /** The origin body failed, was shorter than announced, or the client went away first. */
  onFail(err: Error): void;
}

export function captureBody(
  source: Readable,
  limitBytes: number,
  expectedBytes: number | undefined,
  events: CaptureEvents,
): Readable {
  let chunks: Buffer[] = [];
  /** The whole body's buffer, when its length is announced and within the limit. */
  let whole: Buffer | null = null;
  const sized = expectedBytes !== undefined && expectedBytes > 0 && expectedBytes <= limitBytes;
  let bytes = 0;
  let overflow = false;
  /** More bytes came than the Content-Length announced. */
  let excess = false;
  let finished = false;
  const tee = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      const at = bytes;
      bytes += chunk.length;
      if (!overflow && !excess) {
        if (bytes > limitBytes) {
          overflow = true;
          chunks = [];
          whole = null;
          events.onOverflow();
        } else if (sized && bytes > (expectedBytes as number)) {
          // More than announced: nothing more is kept, and flush fails the capture.
          excess = true;
          chunks = [];
          whole = null;
        } else if (sized && (whole !== null || chunks.length > 0)) {
          // A second chunk: from here on the body is gathered in one buffer of its size.
          if (whole === null) {
            whole = Buffer.allocUnsafeSlow(expectedBytes as number);
            whole.set(chunks[0] as Buffer, 0);
            chunks = [];
          }
          whole.set(chunk, at);
        } else {
          chunks.push(chunk);
        }
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (expectedBytes !== undefined && bytes !== expectedBytes) {
        cb(
          new UpstreamResetError(`origin body ended after ${bytes} of ${expectedBytes} bytes`, {
            detail: { receivedBytes: bytes, expectedBytes },
          }),
        );
        return;
      }
      finished = true;
      if (!overflow) {
        events.onComplete(whole ?? (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes)));
      }
      chunks = [];
      whole = null;
      cb();
    },
  });
  let failed = false;
  const fail = (err: Error): void => {
    if (finished || failed) return;
    failed = true;
    chunks = [];
    events.onFail(err);
  };
  // Before the reader's own 'error' listener: whoever ends the exchange on this error already sees
  // it as not stored (pipeline's callback alone comes a tick after the stream closed).
  tee.on('error', fail);
  pipeline(source, tee, (err) => {
    if (err) fail(err);
  });
  return tee;
}

/** Reads a whole body in the background (no client), up to `limitBytes`; null when larger. */
export async function readBody(
  source: Readable,
  limitBytes: number,
  expectedBytes: number | undefined,
): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of source) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    bytes += b.length;
    if (bytes > limitBytes) {
      source.destroy();
      return null;
    }
    chunks.push(b);
  }
  if (expectedBytes !== undefined && bytes !== expectedBytes) {
    throw new UpstreamResetError(`origin body ended after ${bytes} of ${expectedBytes} bytes`);
  }
  return Buffer.concat(chunks, bytes);
}

/** Lets an unwanted body drain so the connection can be reused; its errors are expected and dropped. */
export function discard(body: Readable | Buffer | null): void {
  if (body === null || Buffer.isBuffer(body)) return;
  body.on('error', () => {
    // The body is not used; an error here only means the connection will not be reused.
  });
  body.resume();
}
