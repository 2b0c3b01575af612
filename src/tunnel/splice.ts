/**
 * Joins two byte streams both ways (a CONNECT tunnel, an upgraded WebSocket connection): bytes are
 * copied with backpressure, a FIN from one side is passed on as a FIN to the other (half-close; the
 * other direction keeps flowing), an error on either side tears both down, and a connection with
 * no bytes either way for `idleTimeoutMs` is closed. Resolves once both sides are closed, with the
 * byte counts and how it ended.
 */
import type { Duplex } from 'node:stream';
import type { SpliceEnding } from '../observers.js';

export interface SpliceResult {
  /** Bytes from the client to the origin. */
  readonly bytesUp: number;
  /** Bytes from the origin to the client. */
  readonly bytesDown: number;
  readonly ending: SpliceEnding;
  /** The error code when `ending` is an error. */
  readonly errorCode?: string;
}

export interface SpliceOptions {
  readonly idleTimeoutMs: number;
  /** Aborting tears both sides down (shutdown). */
  readonly signal?: AbortSignal;
}

interface TimedDuplex extends Duplex {
  setTimeout?(ms: number, callback?: () => void): unknown;
}

export function splice(client: TimedDuplex, origin: TimedDuplex, opts: SpliceOptions): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let bytesUp = 0;
    let bytesDown = 0;
    let ending: SpliceEnding | null = null;
    let errorCode: string | undefined;
    let open = 2;

    const endWith = (why: SpliceEnding, err?: NodeJS.ErrnoException): void => {
      if (ending !== null) return;
      ending = why;
      if (err) errorCode = err.code ?? 'ERR';
    };
    const teardown = (why: SpliceEnding, err?: NodeJS.ErrnoException): void => {
      endWith(why, err);
      client.destroy();
      origin.destroy();
    };
    /** The other side closed: flush what we still owe this one, then close it. */
    const closeSoon = (s: Duplex): void => {
      if (s.destroyed) return;
      if (s.writableFinished) {
        s.destroy();
        return;
      }
      s.end();
      s.once('finish', () => s.destroy());
      const timer = setTimeout(() => s.destroy(), opts.idleTimeoutMs);
      timer.unref();
      s.once('close', () => clearTimeout(timer));
    };
    const onAbort = (): void => teardown('shutdown');

    const onClose = (other: Duplex) => (): void => {
      closeSoon(other);
      open--;
      if (open > 0) return;
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ bytesUp, bytesDown, ending: ending ?? 'closed', ...(errorCode ? { errorCode } : {}) });
    };

    client.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
    });
    origin.on('data', (chunk: Buffer) => {
      bytesDown += chunk.length;
    });
    client.on('error', (err: NodeJS.ErrnoException) => teardown('client_error', err));
    origin.on('error', (err: NodeJS.ErrnoException) => teardown('origin_error', err));
    client.once('close', onClose(origin));
    origin.once('close', onClose(client));
    // Both directions pass through the client socket, so its timer sees every byte either way.
    client.setTimeout?.(opts.idleTimeoutMs, () => teardown('idle_timeout'));
    if (opts.signal?.aborted) {
      teardown('shutdown');
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // pipe() ends the destination when the source ends: the half-close travels on.
    client.pipe(origin);
    origin.pipe(client);
  });
}
