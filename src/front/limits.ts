/**
 * Limits on what one client may hold or send, so that one client cannot starve the others:
 * connections in total (Node's `server.maxConnections`: excess sockets are closed at once) and per
 * client IP address (the request on an excess connection is answered 503 and the connection
 * closed), and request bodies counted as they stream (413 as soon as the count passes
 * `limits.maxBodyBytes`, whatever Content-Length said). Header size and the header and request
 * timeouts are Node server options (`serverOptionsFor`).
 */
import type { IncomingMessage, Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import type { LimitsConfig } from '../config/schema.js';
import { BodyTooLargeError, TooManyConnectionsError } from '../errors.js';

/** Node server options that enforce `limits` (431 on header size, 408 on slow clients). */
export function serverOptionsFor(limits: LimitsConfig): ServerOptions {
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout,
    requestTimeout: limits.requestTimeoutMs,
    // Node checks the two timeouts on this period (30 s by default): keep it finer than them.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
  };
}

export interface ConnectionLimits {
  /** The refusal for a request on `socket` when that connection is over a limit, else null. */
  refusal(socket: Socket): TooManyConnectionsError | null;
}

export function limitConnections(
  server: Server,
  limits: LimitsConfig,
  onRefuse?: (address: string, open: number) => void,
): ConnectionLimits {
  server.maxConnections = limits.maxConnections;
  server.maxHeadersCount = limits.maxHeaderCount + 1; // one more, so going over is seen (431)
  const perClient = new Map<string, number>();
  const over = new WeakSet<Socket>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const open = (perClient.get(address) ?? 0) + 1;
    perClient.set(address, open);
    if (open > limits.maxConnectionsPerClient) {
      over.add(socket);
      onRefuse?.(address, open);
    }
    socket.once('close', () => {
      const left = (perClient.get(address) ?? 1) - 1;
      if (left <= 0) perClient.delete(address);
      else perClient.set(address, left);
    });
  });
  return {
    refusal(socket) {
      if (!over.has(socket)) return null;
      return new TooManyConnectionsError(
        `${socket.remoteAddress} has more than ${limits.maxConnectionsPerClient} connections open (limits.maxConnectionsPerClient)`,
      );
    },
  };
}

/**
 * The request body, counted as it flows: throws at once when Content-Length already says too
 * much; otherwise the returned stream fails with BodyTooLargeError as soon as the count passes.
 */
export function limitBody(req: IncomingMessage, maxBodyBytes: number): IncomingMessage | Transform {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    throw new BodyTooLargeError(
      `request body of ${declared} bytes is larger than ${maxBodyBytes} (limits.maxBodyBytes)`,
    );
  }
  let seen = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBodyBytes) {
        callback(new BodyTooLargeError(`request body grew past ${maxBodyBytes} bytes (limits.maxBodyBytes)`));
        return;
      }
      callback(null, chunk);
    },
  });
  req.on('error', (err) => counted.destroy(err));
  req.pipe(counted);
  counted.once('error', () => req.unpipe(counted));
  return counted;
}
