/**
 * What is not a request/response pair: CONNECT and protocol upgrades (WebSocket), handed over by
 * front/ with the socket. Each still becomes an Exchange (mode `tunnel` or `intercept` for CONNECT;
 * the mode of its target for an upgrade), is admitted by the same guard, and ends with one reason,
 * told to the same observers; front/ (`RawContext`) numbers it, tells observers and writes refusals.
 * Decrypted requests from an intercepted tunnel come back in through `Front.serve` with an
 * `Arrival` of `{ via: 'tunnel', authority }`: context travels as an argument, never on the socket.
 */

import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Readable, Transform } from 'node:stream';
import type { Route, Runtime } from '../config/runtime.js';
import {
  BadRequestError,
  BodyTooLargeError,
  ClientAbortedError,
  RequestTimeoutError,
  ShuttingDownError,
  SidecacheError,
  toSidecacheError,
  UpstreamResetError,
} from '../errors.js';
import {
  type Arrival,
  createExchange,
  type Exchange,
  type ExchangeEnd,
  type RawParts,
  type Reply,
} from '../exchange.js';
import type { SpliceEnding, TunnelEnd, TunnelReport } from '../observers.js';
import { rawHead } from '../raw-head.js';
import type { Reason } from '../reasons.js';
import { splice } from './splice.js';

export interface RawContext {
  readonly parts: RawParts;
  /** The runtime a new exchange is routed with (it follows config reloads). */
  current(): Runtime;
  nextId(): string;
  notify(end: ExchangeEnd): void;
  buildExchange(
    id: string,
    req: IncomingMessage,
    arrival: Arrival,
    body: Exchange['body'],
    signal: AbortSignal,
    startedAt: number,
    start: number,
  ): Exchange;
  unroutedExchange(
    id: string,
    req: IncomingMessage,
    signal: AbortSignal,
    startedAt: number,
    start: number,
  ): Exchange;
  isDraining(): boolean;
  /** Aborted at the end of shutdown. */
  readonly closing: AbortSignal;
  /**
   * Ends an exchange that gets no tunnel: its error as a raw response (front/synth.ts) and the
   * socket closed, or, when the client is already gone, the socket destroyed; observers are told.
   */
  refuse(ex: Exchange, socket: Duplex, error: SidecacheError): void;
}

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');

export function endingReason(ending: SpliceEnding | 'tls_failed'): Reason {
  switch (ending) {
    case 'idle_timeout':
      return 'tunnel_idle_timeout';
    case 'tls_failed':
      return 'client_tls_failed';
    case 'shutdown':
      return 'shutting_down';
    case 'closed':
    case 'client_error':
    case 'origin_error':
      return 'tunnel_closed';
    default: {
      const never: never = ending;
      return never;
    }
  }
}

/** Aborted when the client socket closes or sidecache shuts down. */
function exchangeSignal(socket: Duplex, closing: AbortSignal): AbortSignal {
  const gone = new AbortController();
  socket.once('close', () => gone.abort());
  return AbortSignal.any([gone.signal, closing]);
}

/** `host:port` from a CONNECT request target (authority-form, RFC 9110 §9.3.6). */
export function parseConnectTarget(raw: string): URL {
  let url: URL | null = null;
  try {
    url = new URL(`https://${raw}`);
  } catch {
    url = null;
  }
  const explicitPort = /:\d{1,5}$/.test(raw);
  if (
    url === null ||
    !explicitPort ||
    url.host === '' ||
    url.username !== '' ||
    url.password !== '' ||
    `${url.pathname}${url.search}${url.hash}` !== '/'
  ) {
    throw new BadRequestError(`CONNECT target "${raw.slice(0, 200)}" is not HOST:PORT`);
  }
  return url;
}

function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80;
}

function routeForAuthority(runtime: Runtime, url: URL): Route | null {
  const byOrigin = runtime.routeByOrigin.get(url.origin);
  if (byOrigin) return byOrigin;
  const port = portOf(url);
  for (const route of runtime.routes) {
    const origin = new URL(route.origin);
    if (origin.hostname === url.hostname && portOf(origin) === port) return route;
  }
  return null;
}

/** How serveConnect and serveUpgrade make their Exchange once the shared start is done. */
type BuildRaw = (id: string, signal: AbortSignal, startedAt: number, start: number) => Exchange;

/**
 * The start CONNECT and Upgrade share: the socket's errors swallowed (the http server stops
 * listening on a socket it hands over; a reset must not crash us), the id, the clock and the abort
 * signal, then the Exchange from `build`. While draining, or when `build` throws, the request is
 * refused through synth and the answer is null.
 */
function rawExchange(
  ctx: RawContext,
  req: IncomingMessage,
  socket: Duplex,
  build: BuildRaw,
): Exchange | null {
  socket.on('error', () => {});
  const id = ctx.nextId();
  const startedAt = Date.now();
  const start = performance.now();
  const signal = exchangeSignal(socket, ctx.closing);
  try {
    if (ctx.isDraining()) throw new ShuttingDownError('sidecache is shutting down');
    return build(id, signal, startedAt, start);
  } catch (err) {
    ctx.refuse(ctx.unroutedExchange(id, req, signal, startedAt, start), socket, toSidecacheError(err));
    return null;
  }
}

export function serveConnect(ctx: RawContext, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const ex = rawExchange(ctx, req, socket, (id, signal, startedAt, start) => {
    const url = parseConnectTarget(req.url ?? '');
    const mode = ctx.parts.intercepts(url.hostname, portOf(url)) ? 'intercept' : 'tunnel';
    const authority = `${url.hostname}:${portOf(url)}`;
    return createExchange({
      id,
      mode,
      method: 'CONNECT',
      target: url,
      origin: url.origin,
      route: routeForAuthority(ctx.current(), url),
      headers: req.headers,
      body: null,
      client: {
        address: socket.remoteAddress ?? '',
        port: socket.remotePort ?? 0,
        protocol: 'http',
        httpVersion: req.httpVersion,
      },
      signal,
      timings: { startedAt, start, phases: {} },
      tunnel: { authority, intercepted: mode === 'intercept' },
    });
  });
  if (ex === null) return;
  let answered = false;
  const established = (): void => {
    answered = true;
    socket.write(ESTABLISHED);
  };
  (async () => {
    await ctx.parts.admit(ex);
    ctx.parts.checkConnect(ex);
    const end = await ctx.parts.openTunnel(ex, socket, head, established, ctx.closing);
    finishTunnel(ctx, ex, end, ex.mode === 'intercept' ? 'intercept' : 'tunnel');
  })().catch((err: unknown) => {
    const error = toSidecacheError(err);
    if (answered) {
      socket.destroy();
      ex.reason = error.reason;
      ctx.notify({ ex, status: 200, bytes: 0, error, replySource: 'origin' });
      return;
    }
    ctx.refuse(ex, socket, error);
  });
}

export function serveUpgrade(
  ctx: RawContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  arrival: Arrival,
): void {
  const ex = rawExchange(ctx, req, socket, (id, signal, startedAt, start) =>
    ctx.buildExchange(id, req, arrival, null, signal, startedAt, start),
  );
  if (ex === null) return;
  const { signal } = ex;
  (async () => {
    await ctx.parts.admit(ex);
    const { limits } = ctx.current().config;
    const { body, rest } = await readUpgradeBody(req, socket, head, limits, signal);
    const outcome = await ctx.parts.upgrade(ex, req, body);
    if (signal.aborted) {
      if (outcome.kind === 'upgraded') outcome.originSocket.destroy();
      else if (outcome.reply.body instanceof Readable) outcome.reply.body.destroy();
      throw new ClientAbortedError('client disconnected during the upgrade');
    }
    if (outcome.kind === 'answered') {
      relayAnswer(ctx, ex, socket, outcome.reply);
      return;
    }
    socket.write(rawHead(outcome.status, outcome.statusText, outcome.headers));
    if (outcome.originHead.length > 0) socket.write(outcome.originHead);
    if (rest.length > 0) outcome.originSocket.write(rest);
    const result = await splice(socket, outcome.originSocket, {
      idleTimeoutMs: ctx.parts.idleTimeoutMs,
      signal: ctx.closing,
    });
    const end: TunnelEnd = {
      ...result,
      bytesUp: result.bytesUp + rest.length,
      bytesDown: result.bytesDown + outcome.originHead.length,
    };
    finishTunnel(ctx, ex, end, 'upgrade', outcome.status);
  })().catch((err: unknown) => ctx.refuse(ex, socket, toSidecacheError(err)));
}

/**
 * The body of an Upgrade request comes before any upgraded byte (RFC 9110 §7.8): its
 * Content-Length bytes are taken from `head` (what followed the request head) and, when `head`
 * is shorter, read from the socket; what is left is the first upgraded bytes. A chunked body is
 * refused: its end could only be found by parsing it here.
 */
async function readUpgradeBody(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  limits: { readonly maxBodyBytes: number; readonly requestTimeoutMs: number },
  signal: AbortSignal,
): Promise<{ body: Buffer | null; rest: Buffer }> {
  if (req.headers['transfer-encoding'] !== undefined) {
    throw new BadRequestError('an Upgrade request with a chunked body is not supported');
  }
  const declared = req.headers['content-length'];
  const length = declared === undefined ? 0 : Number(declared);
  if (length === 0) return { body: null, rest: head };
  if (length > limits.maxBodyBytes) {
    throw new BodyTooLargeError(
      `request body of ${length} bytes is larger than ${limits.maxBodyBytes} (limits.maxBodyBytes)`,
    );
  }
  if (head.length >= length) return { body: head.subarray(0, length), rest: head.subarray(length) };
  const chunks: Buffer[] = [head];
  let got = head.length;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: SidecacheError): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      signal.removeEventListener('abort', onAbort);
      socket.pause();
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) done();
    };
    const onEnd = (): void => done(new ClientAbortedError('client closed before sending the request body'));
    const onAbort = (): void => done(new ClientAbortedError('client disconnected during the request body'));
    const timer = setTimeout(
      () => done(new RequestTimeoutError('request body not received in time (limits.requestTimeoutMs)')),
      limits.requestTimeoutMs,
    );
    socket.on('data', onData);
    socket.once('end', onEnd);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  const all = Buffer.concat(chunks);
  return { body: all.subarray(0, length), rest: all.subarray(length) };
}

/**
 * The origin declined to switch protocols: its answer is relayed, then the connection closed. A
 * body of unknown length is sent chunked, so a client can tell a body cut short by the origin
 * (no last chunk) from a whole one. The exchange is told to observers once, when the socket closes.
 */
function relayAnswer(ctx: RawContext, ex: Exchange, socket: Duplex, reply: Reply): void {
  const headers: OutgoingHttpHeaders = { ...reply.headers, connection: 'close' };
  const streamed = reply.body instanceof Readable;
  const chunked = streamed && headers['content-length'] === undefined && bodyAllowed(ex.method, reply.status);
  if (chunked) headers['transfer-encoding'] = 'chunked';
  let bytes = 0;
  let failure: SidecacheError | undefined;
  let complete = !streamed;
  // Like a tunnel, a relayed answer still running ends with the shutdown's last step.
  const onClosing = (): void => {
    failure ??= new ShuttingDownError('sidecache shut down during the response');
    socket.destroy();
  };
  ctx.closing.addEventListener('abort', onClosing, { once: true });
  socket.once('close', () => {
    ctx.closing.removeEventListener('abort', onClosing);
    if (failure === undefined && !complete) {
      failure = new ClientAbortedError('client disconnected during the response');
    }
    ex.reason = failure?.reason ?? 'origin_response';
    const end = { ex, status: reply.status, bytes, replySource: 'origin' as const };
    ctx.notify(failure ? { ...end, error: failure } : end);
  });
  // The answer said `connection: close`: once it is all written, the connection is closed, as Node
  // does after such a response, rather than waiting for a client that may keep its side open.
  // What the client still sends is read and dropped, so the close is not a reset.
  socket.once('finish', () => socket.destroy());
  socket.resume();
  socket.write(rawHead(reply.status, reply.statusText, headers));
  const body = reply.body;
  if (body === null) {
    socket.end();
    return;
  }
  if (Buffer.isBuffer(body)) {
    bytes = body.length;
    socket.end(body);
    return;
  }
  body.on('data', (c: Buffer) => {
    bytes += c.length;
  });
  body.once('end', () => {
    complete = true;
  });
  body.once('error', (err: Error) => {
    failure =
      err instanceof SidecacheError
        ? err
        : new UpstreamResetError(`${ex.origin} closed the connection before the end of its answer`, {
            cause: err,
            detail: { upstream: ex.origin },
          });
    // Cut short: closing without the last chunk (or before Content-Length) tells the client.
    socket.destroy();
  });
  socket.once('close', () => body.destroy());
  if (chunked) body.pipe(chunkFramer()).pipe(socket);
  else body.pipe(socket);
}

/** HTTP/1.1 chunked framing (RFC 9112 §7.1) of a byte stream, ending with the last chunk. */
function chunkFramer(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (chunk.length === 0) {
        callback();
        return;
      }
      callback(null, Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, CRLF]));
    },
    flush(callback) {
      callback(null, LAST_CHUNK);
    },
  });
}

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

function bodyAllowed(method: string, status: number): boolean {
  return method !== 'HEAD' && status !== 204 && status !== 304 && !(status >= 100 && status < 200);
}

function finishTunnel(
  ctx: RawContext,
  ex: Exchange,
  end: TunnelEnd,
  kind: TunnelReport['kind'],
  status = 200,
): void {
  ex.reason = endingReason(end.ending);
  ctx.notify({ ex, status, bytes: end.bytesDown, replySource: 'origin' });
  ctx.parts.onTunnelEnd?.({ ...end, kind, durationMs: performance.now() - ex.timings.start });
}
