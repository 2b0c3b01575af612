/**
 * The terminal stage: sends the Exchange to its origin over the origin's warm pool and returns a
 * Reply as soon as the response headers arrive; the body streams with backpressure (the origin
 * socket is paused while the client is slow). Hop-by-hop headers are dropped both ways; Via and
 * X-Forwarded-* are added (origin-request-headers.ts). An idempotent, bodiless request whose
 * reused pooled socket turns out dead before any response byte is retried once, on a fresh
 * connection.
 */
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { ClientAbortedError, SidecacheError } from '../errors.js';
import type { Exchange, Next, Reply } from '../exchange.js';
import { appendHeader, endToEndRawHeaders } from '../hop-by-hop.js';
import { type AbortWatch, createAbortWatch, type Watched } from './abort-watch.js';
import { classifyUpstreamError, isDeadSocketError } from './classify-error.js';
import { type OriginHeaderOptions, originRequestHeaders } from './origin-request-headers.js';
import type { ConnectionRecord, SocketClaimer, UpstreamPools } from './pools.js';

export interface OriginFetchOptions {
  /** Settings for origins that no route names (forward proxy through the allow list). */
  readonly defaults: UpstreamConfig;
  /** The Via value this instance adds (e.g. `1.1 sidecache`), or null for none. */
  readonly via: string | null;
  readonly forwardedHeaders: boolean;
  /** See OriginHeaderOptions (origin-request-headers.ts); absent when tracing is off. */
  readonly traceContext?: OriginHeaderOptions['traceContext'];
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Request headers undici refuses or that must not be forwarded as they are. */
const DROP_REQUEST = new Set(['host', 'expect']);
/** The body of a complete, empty response (shared: nobody writes to a zero-length buffer). */
const EMPTY_BODY = Buffer.alloc(0);
/** How often requests still waiting for a head start listening for the client leaving (abort-watch.ts). */
const ABORT_SWEEP_MS = 50;
const noop = (): void => {};
const NO_BODY_STATUS = (status: number): boolean => status === 204 || status === 304 || status < 200;

/** What every request of one fetcher shares (one object, so a handler holds one reference). */
interface Shared {
  readonly pools: UpstreamPools;
  readonly watch: AbortWatch;
  readonly via: string | null;
}

export function createOriginFetch(pools: UpstreamPools, opts: OriginFetchOptions): Next {
  const shared: Shared = { pools, watch: createAbortWatch(ABORT_SWEEP_MS), via: opts.via };
  // Not async: one promise per request, settled by the handler (a retry included), no await chain.
  return function fetchOrigin(ex: Exchange): Promise<Reply> {
    let handler: OriginResponse;
    try {
      const settings = ex.route?.upstream ?? opts.defaults;
      const pool = pools.poolFor(ex.origin, settings);
      const headers = originRequestHeaders(ex, DROP_REQUEST, opts);
      // httpVersion from the start (set once the connection is known): one object shape.
      const info: OriginInfoMutable = {
        origin: ex.origin,
        reusedConnection: false,
        retried: false,
        bodyBytes: 0,
        httpVersion: undefined,
      };
      ex.originInfo = info;
      handler = new OriginResponse(shared, pool, ex, headers, info, settings.retryDeadSocket);
    } catch (err) {
      return Promise.reject(err instanceof SidecacheError ? err : classifyUpstreamError(err, ex.origin));
    }
    return new Promise<Reply>((resolve, reject) => handler.send(resolve, reject));
  };
}

interface OriginInfoMutable {
  origin: string;
  reusedConnection: boolean;
  retried: boolean;
  bodyBytes: number;
  preconnectedMs?: number;
  httpVersion?: '1.1' | '2';
}

/**
 * Responses whose head arrived in this turn, decided together in one microtask (one microtask and
 * no closure per response): by then undici has handed over everything in the socket read that
 * carried each head.
 */
let undecided: OriginResponse[] = [];

function decideUndecided(): void {
  const batch = undecided;
  undecided = [];
  let failure: unknown = null;
  for (let i = 0; i < batch.length; i++) {
    try {
      (batch[i] as OriginResponse).decide();
    } catch (err) {
      // One response's bug must not leave the others of the batch waiting forever.
      failure ??= err;
    }
  }
  if (failure !== null) throw failure;
}

/** The dispatch handler methods undici's Client calls (its own, older handler interface). */
interface ClientHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: unknown): void;
  onError(err: Error): void;
}

/**
 * One origin request and its response, as undici's dispatch handler: one object per request, no
 * closure per request (it is also the abort listener, `handleEvent`, that abort-watch.ts
 * subscribes when needed, and the pools' socket claimer). It settles the request's one promise,
 * itself or through the one retry it sends.
 *
 * It speaks the handler interface undici's Client calls itself (onConnect, onHeaders, onData,
 * onComplete, onError), which hands over the head as the parser's raw fields: undici 7 wraps a
 * handler of its newer interface (onRequestStart, ...) in an adapter and a controller object per
 * request, and turns every head and every trailer section into a headers object first; here the
 * raw head becomes the end-to-end headers in one pass (endToEndRawHeaders). Backpressure is the
 * boolean onHeaders and onData return, and `resume`.
 */
class OriginResponse implements ClientHandler, Watched, SocketClaimer {
  readonly ex: Exchange;
  readonly #shared: Shared;
  readonly #pool: Dispatcher;
  readonly #headers: Record<string, string | string[]>;
  readonly #info: OriginInfoMutable;
  readonly #retryDeadSocket: boolean;
  #started = 0;
  /** Its slot in the abort watch while it waits for the head (-1: not watched). */
  #watchSlot = -1;
  #resolve: (reply: Reply) => void = noop;
  #reject: (err: unknown) => void = noop;
  /** undici's abort for this request (onConnect), and whether it was called. */
  #abort: ((err?: Error) => void) | null = null;
  #aborted = false;
  /** undici's resume for this request's socket (onHeaders), and whether we asked it to pause. */
  #resume: (() => void) | null = null;
  #paused = false;
  /** The promise is resolved or rejected (or handed to a retry). */
  #settled = false;
  /** The origin ended the body cleanly, or failed. */
  #ended = false;
  #failed = false;
  /**
   * The final response's head, once it arrived (headers non-null); the Reply is decided in a
   * microtask after it. Fields, not an object: nothing per response beyond the Reply itself.
   */
  #status = 0;
  #statusText = '';
  #head: Record<string, string | string[]> | null = null;
  #bodyless = false;
  /** Body chunks that arrived before the Reply was decided (same socket read as the head): the first, then the rest. */
  #first: Buffer | null = null;
  #early: Buffer[] | null = null;
  /** An origin failure after the head but before the Reply was decided. */
  #failure: Error | null = null;
  #body: Readable | null = null;

  constructor(
    shared: Shared,
    pool: Dispatcher,
    ex: Exchange,
    headers: Record<string, string | string[]>,
    info: OriginInfoMutable,
    retryDeadSocket: boolean,
  ) {
    this.ex = ex;
    this.#shared = shared;
    this.#pool = pool;
    this.#headers = headers;
    this.#info = info;
    this.#retryDeadSocket = retryDeadSocket;
  }

  /** Sends the request; `resolve` gets the Reply once the head is in, `reject` a typed error. */
  send(resolve: (reply: Reply) => void, reject: (err: unknown) => void): void {
    this.#resolve = resolve;
    this.#reject = reject;
    const ex = this.ex;
    const out = ex.originRequest;
    this.#started = performance.now();
    try {
      this.#pool.dispatch(
        {
          origin: ex.origin,
          path: out?.path ?? ex.target.pathname + ex.target.search,
          method: (out?.method ?? ex.method) as Dispatcher.HttpMethod,
          headers: this.#headers,
          body: ex.body,
          signal: undefined,
        } as Dispatcher.DispatchOptions,
        this,
      );
    } catch (err) {
      if (this.#settled) return;
      this.#settled = true;
      reject(err instanceof SidecacheError ? err : classifyUpstreamError(err, ex.origin));
      return;
    }
    // A client already gone, or leaving while the origin is slow, is noticed by the watch.
    this.#watchSlot = this.#shared.watch.note(this);
  }

  /** No longer waiting for the head: the watch lets go of it (and of the exchange) now. */
  #unwatch(): void {
    if (this.#watchSlot === -1) return;
    this.#shared.watch.forget(this, this.#watchSlot);
    this.#watchSlot = -1;
  }

  /**
   * An idempotent, bodiless request whose reused pooled socket turned out dead before any
   * response byte: sent once more, on a fresh connection, settling the same promise.
   */
  #retried(err: Error): boolean {
    const ex = this.ex;
    const info = this.#info;
    if (
      !this.#retryDeadSocket ||
      info.retried ||
      !info.reusedConnection ||
      ex.body !== null ||
      !IDEMPOTENT.has(ex.originRequest?.method ?? ex.method) ||
      ex.signal.aborted ||
      !isDeadSocketError(err)
    ) {
      return false;
    }
    info.retried = true;
    info.reusedConnection = false;
    const again = new OriginResponse(this.#shared, this.#pool, ex, this.#headers, info, true);
    again.send(this.#resolve, this.#reject);
    // Tracing noted when the first attempt went out (its traceContext hook); the span is the retry's.
    if (ex.timings.upstreamStart !== undefined) ex.timings.upstreamStart = again.#started;
    return true;
  }

  get waiting(): boolean {
    return !this.#settled && this.#head === null && !this.#ended && !this.#failed;
  }

  /** The client went away (the exchange's abort signal). */
  handleEvent(): void {
    if (this.#settled || this.#ended || this.#failed) return;
    this.#unwatch();
    const reason = new ClientAbortedError('client disconnected');
    this.#settled = true;
    this.#abortOrigin(reason);
    this.#reject(reason);
  }

  #abortOrigin(reason: Error): void {
    const abort = this.#abort;
    if (abort !== null && !this.#aborted) {
      this.#aborted = true;
      abort(reason);
    }
  }

  /** Reads more of the origin's body (the client took what it had). */
  #resumeOrigin(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#settled) {
      // The client left before undici started the request.
      this.#abortOrigin(new ClientAbortedError('client disconnected'));
      return;
    }
    this.#shared.pools.claimNextSocket(this);
  }

  /** The connection this request went out on (pools.ts, right after onRequestStart). */
  socketClaimed(record: ConnectionRecord): void {
    const ex = this.ex;
    const info = this.#info;
    // New for this exchange only if it was opened after the exchange began; a connection the
    // pool opened earlier (warm, or for a request another connection then served) was waiting.
    const reused = record.requests > 1 || record.startedAt < ex.timings.start;
    info.reusedConnection = reused;
    info.httpVersion = record.httpVersion;
    if (record.preconnected && record.requests === 1) {
      // The first request on a connection keep-warm opened: it skipped that whole handshake.
      info.preconnectedMs = (record.dnsMs ?? 0) + record.connectMs + (record.tlsMs ?? 0);
    } else if (info.preconnectedMs !== undefined) {
      delete info.preconnectedMs;
    }
    if (!reused) {
      const phases = ex.timings.phases as Record<string, number>;
      if (record.dnsMs !== undefined) phases.dns = (phases.dns ?? 0) + record.dnsMs;
      phases.connect = (phases.connect ?? 0) + record.connectMs;
      if (record.tlsMs !== undefined) phases.tls = (phases.tls ?? 0) + record.tlsMs;
    }
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusMessage: string): boolean {
    const ex = this.ex;
    this.#resume = resume;
    // undici reports interim (1xx) responses here too: relayed, never taken as the response.
    if (statusCode < 200) {
      ex.interim?.(statusCode, endToEndRawHeaders(rawHeaders));
      return true;
    }
    if (this.#settled || this.#head !== null) return !this.#paused;
    this.#unwatch();
    const headers = endToEndRawHeaders(rawHeaders);
    const via = this.#shared.via;
    if (via !== null) appendHeader(headers, 'via', via);
    this.#bodyless = (ex.originRequest?.method ?? ex.method) === 'HEAD' || NO_BODY_STATUS(statusCode);
    this.#status = statusCode;
    this.#statusText = statusMessage ?? '';
    this.#head = headers;
    ex.timings.phases.upstream = performance.now() - this.#started;
    if (undecided.push(this) === 1) queueMicrotask(decideUndecided);
    return !this.#paused;
  }

  /**
   * Runs in a microtask after the head (decideUndecided): by then undici has handed over
   * everything in the socket read that carried the head. A body that is already complete becomes
   * a Buffer (front/ writes head and body at once, no stream); otherwise the body streams,
   * starting with what came.
   */
  decide(): void {
    const headers = this.#head;
    if (this.#settled || headers === null) return; // the client went away meanwhile (rejected)
    this.#settled = true;
    let replyBody: Readable | Buffer | null = null;
    if (!this.#bodyless) {
      const first = this.#first;
      const early = this.#early;
      this.#first = null;
      this.#early = null;
      if (this.#ended && this.#failure === null) {
        replyBody = first === null ? EMPTY_BODY : early === null ? first : Buffer.concat([first, ...early]);
      } else {
        const body = this.#streamedBody();
        if (first !== null && !body.push(first)) this.#paused = true;
        if (early !== null) for (const chunk of early) if (!body.push(chunk)) this.#paused = true;
        // Mid-body failure: the client must see a truncated, errored stream, never a clean end.
        if (this.#failure !== null) body.destroy(classifyUpstreamError(this.#failure, this.ex.origin));
        replyBody = body;
      }
    }
    // Whole literals, no conditional spread: a spread literal costs ~2 µs on Node 20 (V8 11.3).
    const status = this.#status;
    this.#resolve(
      this.#statusText
        ? { status, statusText: this.#statusText, headers, body: replyBody, source: 'origin' }
        : { status, headers, body: replyBody, source: 'origin' },
    );
  }

  #streamedBody(): Readable {
    const body = new Readable({
      highWaterMark: 64 * 1024,
      read: () => this.#resumeOrigin(),
      destroy: (err, callback) => {
        if (!this.#ended) this.#abortOrigin(err ?? new ClientAbortedError('response body abandoned'));
        callback(err);
      },
    });
    this.#body = body;
    return body;
  }

  onData(chunk: Buffer): boolean {
    this.#info.bodyBytes += chunk.length;
    this.ex.bodyTap?.update(chunk);
    const body = this.#body;
    if (body !== null) {
      if (!body.push(chunk)) this.#paused = true;
    } else if (!this.#bodyless && !this.#settled) {
      if (this.#first === null) this.#first = chunk;
      else if (this.#early === null) this.#early = [chunk];
      else this.#early.push(chunk);
    }
    return !this.#paused;
  }

  onComplete(): void {
    this.#ended = true;
    this.#unwatch();
    this.ex.timings.phases.upstream = performance.now() - this.#started;
    this.#body?.push(null);
  }

  onError(err: Error): void {
    this.#failed = true;
    this.#unwatch();
    if (!this.#settled && this.#head === null) {
      this.#settled = true;
      // The retry fails like any first attempt: a typed error (502 upstream_reset, ...), not a 500.
      if (!this.#retried(err))
        this.#reject(err instanceof SidecacheError ? err : classifyUpstreamError(err, this.ex.origin));
      return;
    }
    if (this.#body !== null) this.#body.destroy(classifyUpstreamError(err, this.ex.origin));
    else if (!this.#settled) this.#failure = err;
  }
}
