/**
 * front/: owns the client side. Turns each request into an Exchange, runs the pipeline, writes the
 * Reply (streaming, with backpressure), maps any error to a synthetic reply, aborts the upstream
 * when the client goes away, and tells observers (access log, metrics) how the exchange ended.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { createServer, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Duplex, Readable } from 'node:stream';
import type { Runtime } from '../config/runtime.js';
import {
  BadRequestError,
  ClientAbortedError,
  HeadersTooLargeError,
  MethodNotSupportedError,
  RequestTimeoutError,
  ShuttingDownError,
  SidecacheError,
  toSidecacheError,
} from '../errors.js';
import {
  type Arrival,
  createExchange,
  type Exchange,
  type ExchangeEnd,
  type ExchangeObserver,
  type InterimSource,
  type Next,
  type RawParts,
  type Reply,
  type SignalSource,
} from '../exchange.js';
import { compileForwardedTrust } from '../forwarded.js';
import { type RawContext, serveConnect, serveUpgrade } from '../tunnel/raw.js';
import { limitBody, limitConnections, serverOptionsFor } from './limits.js';
import { createRequestHygiene } from './request-hygiene.js';
import { ResponseWatch } from './response-watch.js';
import { synthErrorReply, synthRawResponse } from './synth.js';
import { createTargetMemo } from './target.js';

export interface FrontOptions {
  /** The runtime at start: limits and listener options are bound to it. */
  readonly runtime: Runtime;
  /**
   * The runtime to route a new exchange with (the config reload's holder, RuntimeRef.current);
   * `runtime` when absent. Read once per exchange, when it starts.
   */
  readonly current?: () => Runtime;
  readonly pipeline: Next;
  readonly observers: readonly ExchangeObserver[];
  /** Logs protocol errors that never became an exchange (malformed requests). */
  readonly onClientError?: (code: string, message: string) => void;
  /**
   * Last word on the response headers, right before the head is written (Server-Timing); given
   * the reply's own headers object, which it may change.
   */
  readonly responseHeaders?: (ex: Exchange, headers: OutgoingHttpHeaders) => OutgoingHttpHeaders;
  /** CONNECT tunnels and protocol upgrades (tunnel/raw.ts); answered with 501 when absent. */
  readonly raw?: RawParts;
}

export interface Front {
  readonly server: Server;
  /** Exchanges not yet finished. */
  inFlight(): number;
  /** Stop keeping connections alive; new requests get 503. */
  startDraining(): void;
  /** Closes every CONNECT tunnel and upgraded connection (the end of shutdown). */
  closeTunnels(): void;
  /** CONNECT tunnels and upgrades not yet told to the observers (they are told when they close). */
  openTunnels(): number;
  /** Destroys every client connection still open (the shutdown deadline); returns how many. */
  destroyConnections(): number;
  /** Serves one request that arrived another way (decrypted from an intercepted tunnel). */
  serve(req: IncomingMessage, res: ServerResponse, arrival: Arrival): void;
  /** Serves one Upgrade request that arrived another way. */
  serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, arrival: Arrival): void;
}

/** The arrival of every request on the proxy listener. */
const LISTENER: Arrival = Object.freeze({ via: 'listener' });
const exchangePrefix = randomBytes(4).toString('hex');
/** Errors after which the client connection is closed rather than kept alive. */
const CLOSE_AFTER = new Set(['SC_ERR_BODY_TOO_LARGE', 'SC_ERR_TOO_MANY_CONNECTIONS', 'SC_ERR_BAD_REQUEST']);

export function createFront(opts: FrontOptions): Front {
  let counter = 0;
  let inFlight = 0;
  let draining = false;
  const { runtime } = opts;
  const targetOf = createTargetMemo();
  const current = opts.current ?? (() => runtime);
  const { limits } = runtime.config;
  const hygieneFor = (rt: Runtime) =>
    createRequestHygiene({
      strip: rt.config.proxy.stripRequestHeaders,
      maxHeaderCount: limits.maxHeaderCount,
      trustForwarded: compileForwardedTrust(rt.config.proxy.trustForwarded),
    });
  /** The request hygiene of the last runtime seen (rebuilt after a reload, not per request). */
  let hygieneOf = { runtime, hygiene: hygieneFor(runtime) };
  const hygieneNow = (rt: Runtime) => {
    if (hygieneOf.runtime !== rt) hygieneOf = { runtime: rt, hygiene: hygieneFor(rt) };
    return hygieneOf.hygiene;
  };

  const notify = (end: ExchangeEnd): void => {
    end.ex.timings.end = performance.now();
    for (const observe of opts.observers) observe(end);
  };

  const nextId = (): string => `${exchangePrefix}-${(++counter).toString(36)}`;
  /** Aborted at the end of shutdown: tears down tunnels and upgraded connections. */
  const tunnelsClosing = new AbortController();

  /**
   * Starts one exchange. A reply the pipeline makes without I/O (a remembered hit) is written here,
   * in the same tick, with no promise; any other is awaited (the promise returned).
   */
  function onRequest(req: IncomingMessage, res: ServerResponse, arrival: Arrival): void {
    inFlight++;
    const id = nextId();
    // The one 'close' listener of this response (response-watch.ts): 'close' fires once per
    // response, so a plain listener, without once()'s wrapper and removal. The AbortSignal is made
    // only if something reads ex.signal.
    const watch = new ResponseWatch(req, res);
    if (res.socket !== null) {
      res.on('close', () => {
        inFlight--;
        watch.closed(res.writableFinished);
      });
    } else {
      // A pipelined request whose response waits behind another: Node attaches it to the socket
      // only when its turn comes, so if the connection closes first it never emits 'close'. The
      // socket's close ends it then (whichever comes first counts).
      let closed = false;
      const onClose = (): void => {
        if (closed) return;
        closed = true;
        inFlight--;
        watch.closed(res.writableFinished);
      };
      res.on('close', onClose);
      req.socket.once('close', onClose);
    }
    const startedAt = Date.now();
    const start = performance.now();
    let ex: Exchange;
    try {
      if (draining) throw new ShuttingDownError('sidecache is shutting down');
      const refusal = connectionLimits.refusal(req.socket);
      if (refusal) throw refusal;
      const body = requestHasBody(req) ? limitBody(req, limits.maxBodyBytes) : null;
      ex = buildExchange(id, req, arrival, body, watch, startedAt, start, watch);
    } catch (err) {
      const failed = unroutedExchange(id, req, watch, startedAt, start);
      deliverError(failed, toSidecacheError(err), res, watch);
      return;
    }
    let result: Reply | Promise<Reply>;
    try {
      result = opts.pipeline(ex);
    } catch (err) {
      deliverError(ex, toSidecacheError(err), res, watch);
      return;
    }
    if (result instanceof Promise) {
      // One reaction, no async frame: what the pipeline answered is delivered, what it threw is
      // mapped to an error reply; a bug in either is caught here, never left to reject.
      result.then(
        (reply) => {
          try {
            deliver(ex, reply, res, watch);
          } catch (err) {
            internalError(err, res);
          }
        },
        (err: unknown) => {
          try {
            deliverError(ex, toSidecacheError(err), res, watch);
          } catch (err2) {
            internalError(err2, res);
          }
        },
      );
      return;
    }
    deliver(ex, result, res, watch);
  }

  function deliverError(
    ex: Exchange,
    error: SidecacheError,
    res: ServerResponse,
    watch: ResponseWatch,
  ): void {
    ex.reason = error.reason;
    if (error instanceof ClientAbortedError || res.destroyed) {
      notify({ ex, status: 499, bytes: 0, error, replySource: null });
      return;
    }
    const reply = synthErrorReply(error, ex.id);
    // The rest of this connection cannot be trusted (unread body, slow or greedy client): close it.
    if (CLOSE_AFTER.has(error.code)) reply.headers.connection = 'close';
    deliver(ex, reply, res, watch, error);
  }

  function deliver(
    ex: Exchange,
    reply: Reply,
    res: ServerResponse,
    watch: ResponseWatch,
    error?: SidecacheError,
  ): void {
    if (ex.reason === undefined) ex.reason = 'origin_response';
    const replyHeaders = opts.responseHeaders ? opts.responseHeaders(ex, reply.headers) : reply.headers;
    const h2 = isHttp2(res);
    // HTTP/2 has no Connection header (draining closes the session instead) and no reason phrase.
    const headers = draining && !h2 ? { ...replyHeaders, connection: 'close' } : replyHeaders;
    try {
      if (h2) res.writeHead(reply.status, headers);
      else res.writeHead(reply.status, reply.statusText ?? STATUS_CODES[reply.status] ?? '', headers);
    } catch (err) {
      if (reply.body instanceof Readable) reply.body.destroy();
      const bad = toSidecacheError(err);
      ex.reason = 'upstream_protocol_error';
      res.destroy();
      notify({ ex, status: 502, bytes: 0, error: bad, replySource: reply.source, reply });
      return;
    }
    const body = reply.body;
    if (Buffer.isBuffer(body) && ex.method !== 'HEAD') {
      // Bytes already in memory (a cache hit): headers and body in one write, no stream machinery.
      res.end(body);
      watch.whenClosed((done) => {
        const failure = done ? error : new ClientAbortedError('client disconnected during the response');
        if (!done && failure) ex.reason = failure.reason;
        const bytes = done ? body.length : 0;
        const { status, source } = reply;
        // Whole literals, no spread: one object per end.
        notify(
          failure
            ? { ex, status, bytes, error: failure, replySource: source, reply }
            : { ex, status, bytes, replySource: source, reply },
        );
      });
      return;
    }
    if (!(body instanceof Readable) || ex.method === 'HEAD') {
      if (body instanceof Readable) body.destroy();
      res.end();
      notify({ ex, status: reply.status, bytes: 0, error, replySource: reply.source, reply });
      return;
    }
    streamBody(body, res, watch, (bytes, err) => {
      let failure = error;
      if (err) {
        failure =
          err instanceof SidecacheError
            ? err
            : new ClientAbortedError('client disconnected during the response');
        ex.reason = failure.reason;
      }
      notify({
        ex,
        status: reply.status,
        bytes,
        error: failure,
        replySource: reply.source,
        reply,
      });
    });
  }

  /**
   * The Exchange for what arrived: target, route and mode from how it arrived (one code path;
   * remembered per request target, target.ts).
   */
  function buildExchange(
    id: string,
    req: IncomingMessage,
    arrival: Arrival,
    body: Exchange['body'],
    signal: AbortSignal | ResponseWatch,
    startedAt: number,
    start: number,
    /** For requests that get a response (not CONNECT / Upgrade): interim responses go there. */
    interim?: InterimSource,
  ): Exchange {
    const rt = current();
    const to = targetOf(
      req.url ?? '/',
      req.headers.host,
      arrival.via === 'tunnel' ? arrival.authority : undefined,
      rt,
    );
    return createExchange({
      id,
      mode: to.mode,
      method: req.method ?? 'GET',
      target: to.url,
      origin: to.origin,
      route: to.route,
      headers: hygieneNow(rt)(req),
      body,
      client: clientOf(req),
      signal,
      timings: { startedAt, start, phases: {} },
      tunnel: arrival.via === 'tunnel' ? { authority: arrival.authority, intercepted: true } : undefined,
      interim,
    });
  }

  /** onRequest maps every error itself; reaching this is a bug, but never a crash. */
  const internalError = (err: unknown, res: ServerResponse): void => {
    const error = toSidecacheError(err);
    opts.onClientError?.(error.code, error.message);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const reply = synthErrorReply(error, nextId());
    res.writeHead(reply.status, reply.headers).end(reply.body);
  };

  const serve = (req: IncomingMessage, res: ServerResponse, arrival: Arrival): void => {
    try {
      onRequest(req, res, arrival);
    } catch (err) {
      internalError(err, res);
    }
  };

  const server = createServer(
    {
      keepAlive: true,
      keepAliveTimeout: 65_000,
      // Header size, and clients that trickle headers or body (slowloris): limits.ts.
      ...serverOptionsFor(limits),
    },
    (req, res) => serve(req, res, LISTENER),
  );

  const connectionLimits = limitConnections(server, limits, (address, open) =>
    opts.onClientError?.('SC_ERR_TOO_MANY_CONNECTIONS', `${address} has ${open} connections open`),
  );
  // Every client connection, whatever became of it (HTTP, tunnel, upgrade): the shutdown deadline
  // destroys what is left.
  const connections = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.on('drop', (data?: { remoteAddress?: string }) =>
    opts.onClientError?.(
      'SC_ERR_TOO_MANY_CONNECTIONS',
      `connection from ${data?.remoteAddress ?? '?'} dropped: limits.maxConnections reached`,
    ),
  );

  /** Writes `error` as a raw response on a socket no ServerResponse owns, closes it, tells observers. */
  const refuseOnSocket = (ex: Exchange, socket: Duplex, error: SidecacheError): void => {
    ex.reason = error.reason;
    const raw = synthRawResponse(error, ex.id);
    socket.end(raw.bytes);
    notify({ ex, status: error.status, bytes: raw.bodyBytes, error, replySource: 'synth' });
  };
  const refuseRaw = (error: SidecacheError) => (req: IncomingMessage, socket: Duplex) =>
    refuseOnSocket(
      unroutedExchange(nextId(), req, AbortSignal.abort(), Date.now(), performance.now()),
      socket,
      error,
    );
  /** Each CONNECT or Upgrade exchange ends once (tunnel/raw.ts: `notify` or `refuse`). */
  let openTunnels = 0;
  const rawContext: RawContext | null = opts.raw
    ? {
        parts: opts.raw,
        current,
        nextId,
        notify: (end: ExchangeEnd): void => {
          openTunnels--;
          notify(end);
        },
        buildExchange,
        isDraining: () => draining,
        closing: tunnelsClosing.signal,
        unroutedExchange,
        refuse(ex, socket, error) {
          openTunnels--;
          if (error.reason === 'client_disconnected' || socket.destroyed || !socket.writable) {
            ex.reason = error.reason;
            socket.destroy();
            notify({ ex, status: 499, bytes: 0, error, replySource: null });
            return;
          }
          refuseOnSocket(ex, socket, error);
        },
      }
    : null;
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, arrival: Arrival): void => {
    if (rawContext) {
      openTunnels++;
      serveUpgrade(rawContext, req, socket, head, arrival);
    } else
      refuseRaw(new MethodNotSupportedError('protocol upgrades (WebSocket) are not enabled'))(req, socket);
  };
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (rawContext) {
      openTunnels++;
      serveConnect(rawContext, req, socket, head);
    } else refuseRaw(new MethodNotSupportedError('CONNECT tunnels are not enabled'))(req, socket);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    onUpgrade(req, socket, head, LISTENER),
  );
  /** Sockets answered (or about to be) for a parse error. */
  const refusedSockets = new WeakSet<Socket>();
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? 'ERR';
    opts.onClientError?.(code, err.message);
    // Already refused (or to be, after the response in flight): Node reports each later chunk again.
    if (refusedSockets.has(socket)) return;
    if (!socket.writable || code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    refusedSockets.add(socket);
    const message = `${code}: ${err.message}`;
    const error =
      code === 'HPE_HEADER_OVERFLOW'
        ? new HeadersTooLargeError(message)
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new RequestTimeoutError(message)
          : new BadRequestError(message);
    const refuse = (): void => {
      if (socket.writable) socket.end(synthRawResponse(error, nextId()).bytes);
      else socket.destroy();
    };
    // A pipelined request before the bad one is still being answered: the 400 follows its response.
    // (An error inside that request's own body is answered at once: its response will not come.)
    const current = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (current && !current.writableFinished && current.req.complete) {
      current.once('finish', refuse);
      current.once('close', () => {
        if (!current.writableFinished) socket.destroy();
      });
    } else refuse();
  });

  return {
    server,
    inFlight: () => inFlight,
    startDraining() {
      draining = true;
      server.closeIdleConnections();
    },
    openTunnels: () => openTunnels,
    closeTunnels() {
      tunnelsClosing.abort();
    },
    destroyConnections() {
      const open = connections.size;
      for (const socket of connections) socket.destroy();
      connections.clear();
      return open;
    },
    serve,
    serveUpgrade: onUpgrade,
  };
}

/** An Exchange for a request that never got a target (bad request, no route). */
export function unroutedExchange(
  id: string,
  req: IncomingMessage,
  signal: AbortSignal | SignalSource,
  startedAt: number,
  start: number,
): Exchange {
  return createExchange({
    id,
    mode: 'route',
    method: req.method ?? 'GET',
    target: new URL(UNROUTED),
    origin: UNROUTED,
    route: null,
    headers: req.headers,
    body: null,
    client: {
      address: req.socket.remoteAddress ?? '',
      port: req.socket.remotePort ?? 0,
      protocol: 'http',
      httpVersion: req.httpVersion,
    },
    signal,
    timings: { startedAt, start, phases: {} },
  });
}

const UNROUTED = 'http://unrouted.invalid';

/**
 * Pipes a reply body to the client with backpressure and calls `done` exactly once with the bytes
 * written and the error, if any. (Not `stream.pipeline`: it costs an AbortController per call.) A
 * body that fails midway destroys the client connection, so a truncated response can never look
 * complete; a client that goes away destroys the body, which aborts the upstream request.
 */
function streamBody(
  body: Readable,
  res: ServerResponse,
  watch: ResponseWatch,
  done: (bytes: number, err?: unknown) => void,
): void {
  let bytes = 0;
  let finished = false;
  const finish = (err?: unknown): void => {
    if (finished) return;
    finished = true;
    body.off('data', onData);
    done(bytes, err);
  };
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    if (!res.write(chunk)) body.pause();
  };
  body.on('data', onData);
  res.on('drain', () => body.resume());
  body.once('end', () => {
    res.end();
  });
  body.once('error', (err) => {
    res.destroy();
    finish(err);
  });
  watch.whenClosed((finished) => {
    if (finished) {
      finish();
      return;
    }
    if (!body.destroyed) body.destroy();
    finish(new ClientAbortedError('client disconnected during the response'));
  });
}

/**
 * Whether a request has a body: HTTP/1.1 says so with Content-Length or Transfer-Encoding; an
 * HTTP/2 request (from an intercepted client) has one unless its HEADERS frame ended the stream.
 */
function requestHasBody(req: IncomingMessage): boolean {
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  if (req.httpVersionMajor === 2 && stream) return stream.endAfterHeaders !== true;
  return (
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
  );
}

function clientOf(req: IncomingMessage): Exchange['client'] {
  return {
    address: req.socket.remoteAddress ?? '',
    port: req.socket.remotePort ?? 0,
    protocol: 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http',
    httpVersion: req.httpVersion,
  };
}

/** A response on an HTTP/2 stream (node:http2's compatibility API). */
function isHttp2(res: ServerResponse): boolean {
  return (res as { stream?: unknown }).stream !== undefined;
}
