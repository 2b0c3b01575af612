/**
 * front/ for what is not a request/response pair: CONNECT and protocol upgrades (WebSocket). Each
 * still becomes an Exchange (mode `tunnel` or `intercept` for CONNECT; the mode of its target for
 * an upgrade), is admitted by the same guard, and ends with one reason, told to the same observers.
 * Decrypted requests from an intercepted tunnel come back in through `Front.serve` with an
 * `Arrival` of `{ via: 'tunnel', authority }`: context travels as an argument, never on the socket.
 */

import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import type { Route, Runtime } from '../config/runtime.js';
import { BadRequestError, ClientAbortedError, ShuttingDownError, type SidecacheError } from '../errors.js';
import type { Exchange, Next } from '../exchange.js';
import type { Reason } from '../reasons.js';
import { type SpliceEnding, splice } from '../tunnel/splice.js';
import type { TunnelEnd } from '../tunnel/tunnels.js';
import type { UpgradeOutcome } from '../upstream/upgrade-relay.js';
import type { ExchangeEnd } from './front-server.js';
import { synthRawResponse, toSidecacheError } from './synth.js';

/** How a request reached front/: on the proxy listener, or decrypted from an intercepted tunnel. */
export type Arrival = { readonly via: 'listener' } | { readonly via: 'tunnel'; readonly authority: string };

export const LISTENER: Arrival = Object.freeze({ via: 'listener' });

/** A finished tunnel or upgraded connection, for metrics. */
export interface TunnelReport extends TunnelEnd {
  readonly kind: 'tunnel' | 'intercept' | 'upgrade';
  readonly durationMs: number;
}

/** What front/ needs from the other modules to serve CONNECT and Upgrade (wired in server.ts). */
export interface RawParts {
  /** The guard for exchanges that do not run the pipeline: resolves when admitted, throws if refused. */
  admit: Next;
  /** Whether a CONNECT to `host` is decrypted (`intercept`) rather than tunnelled as-is. */
  intercepts(host: string): boolean;
  /** What the guard does not check: the CONNECT port. Throws a SidecacheError. */
  checkConnect(ex: Exchange): void;
  /**
   * Opens an admitted CONNECT: connects (blind tunnel) or prepares TLS (intercept), calls
   * `established` to answer 200, then carries bytes; resolves when the tunnel closes. Throws a
   * SidecacheError before `established` when the tunnel cannot be opened.
   */
  openTunnel(
    ex: Exchange,
    socket: Socket,
    head: Buffer,
    established: () => void,
    closing: AbortSignal,
  ): Promise<TunnelEnd>;
  /** Sends an admitted Upgrade request to its origin. */
  upgrade(ex: Exchange, req: IncomingMessage): Promise<UpgradeOutcome>;
  readonly idleTimeoutMs: number;
  onTunnelEnd?(report: TunnelReport): void;
}

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

export function serveConnect(ctx: RawContext, req: IncomingMessage, socket: Socket, head: Buffer): void {
  // The http server stops listening for errors on a socket it hands over; a reset must not crash us.
  socket.on('error', () => {});
  const id = ctx.nextId();
  const startedAt = Date.now();
  const start = performance.now();
  const signal = exchangeSignal(socket, ctx.closing);
  let ex: Exchange;
  try {
    if (ctx.isDraining()) throw new ShuttingDownError('sidecache is shutting down');
    const url = parseConnectTarget(req.url ?? '');
    const mode = ctx.parts.intercepts(url.hostname) ? 'intercept' : 'tunnel';
    const authority = `${url.hostname}:${portOf(url)}`;
    ex = {
      id,
      mode,
      method: 'CONNECT',
      target: url,
      origin: url.origin,
      route: routeForAuthority(ctx.current(), url),
      headers: req.headers,
      body: null,
      client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, protocol: 'http' },
      signal,
      timings: { startedAt, start, phases: {} },
      tunnel: { authority, intercepted: mode === 'intercept' },
    };
  } catch (err) {
    refuse(ctx, ctx.unroutedExchange(id, req, signal, startedAt, start), socket, toSidecacheError(err));
    return;
  }
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
    refuse(ctx, ex, socket, error);
  });
}

export function serveUpgrade(
  ctx: RawContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  arrival: Arrival,
): void {
  socket.on('error', () => {});
  const id = ctx.nextId();
  const startedAt = Date.now();
  const start = performance.now();
  const signal = exchangeSignal(socket, ctx.closing);
  let ex: Exchange;
  try {
    if (ctx.isDraining()) throw new ShuttingDownError('sidecache is shutting down');
    ex = ctx.buildExchange(id, req, arrival, null, signal, startedAt, start);
  } catch (err) {
    refuse(ctx, ctx.unroutedExchange(id, req, signal, startedAt, start), socket, toSidecacheError(err));
    return;
  }
  (async () => {
    await ctx.parts.admit(ex);
    const outcome = await ctx.parts.upgrade(ex, req);
    if (signal.aborted) {
      if (outcome.kind === 'upgraded') outcome.originSocket.destroy();
      else if (outcome.reply.body instanceof Readable) outcome.reply.body.destroy();
      throw new ClientAbortedError('client disconnected during the upgrade');
    }
    if (outcome.kind === 'answered') {
      // The origin declined to switch protocols: relay its answer, then close.
      const { reply } = outcome;
      socket.write(rawHead(reply.status, reply.statusText, { ...reply.headers, connection: 'close' }));
      let bytes = 0;
      if (reply.body === null) socket.end();
      else if (Buffer.isBuffer(reply.body)) {
        bytes = reply.body.length;
        socket.end(reply.body);
      } else {
        reply.body.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        reply.body.pipe(socket);
        reply.body.once('error', () => socket.destroy());
      }
      socket.once('close', () => {
        ex.reason = 'origin_response';
        ctx.notify({ ex, status: reply.status, bytes, replySource: 'origin' });
      });
      return;
    }
    socket.write(rawHead(outcome.status, outcome.statusText, outcome.headers));
    if (outcome.originHead.length > 0) socket.write(outcome.originHead);
    if (head.length > 0) outcome.originSocket.write(head);
    const result = await splice(socket, outcome.originSocket, {
      idleTimeoutMs: ctx.parts.idleTimeoutMs,
      signal: ctx.closing,
    });
    const end: TunnelEnd = {
      ...result,
      bytesUp: result.bytesUp + head.length,
      bytesDown: result.bytesDown + outcome.originHead.length,
    };
    finishTunnel(ctx, ex, end, 'upgrade', outcome.status);
  })().catch((err: unknown) => refuse(ctx, ex, socket, toSidecacheError(err)));
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

function refuse(ctx: RawContext, ex: Exchange, socket: Duplex, error: SidecacheError): void {
  ex.reason = error.reason;
  if (error.reason === 'client_disconnected' || socket.destroyed || !socket.writable) {
    socket.destroy();
    ctx.notify({ ex, status: 499, bytes: 0, error, replySource: null });
    return;
  }
  const raw = synthRawResponse(error, ex.id);
  socket.end(raw.bytes);
  ctx.notify({ ex, status: error.status, bytes: raw.bodyBytes, error, replySource: 'synth' });
}

/** A response head in HTTP/1.1 wire form (for sockets that no ServerResponse owns). */
function rawHead(status: number, statusText: string | undefined, headers: OutgoingHttpHeaders): Buffer {
  let head = `HTTP/1.1 ${status} ${statusText ?? STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      const text = String(v);
      if (/[\r\n]/.test(text)) continue;
      head += `${name}: ${text}\r\n`;
    }
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}
