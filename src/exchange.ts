/**
 * The Exchange: the one per-request carrier. `front/` creates it; each stage writes only its own
 * field (`admission` by guard, `cache` by cache, `origin` by upstream). A Reply is a value whose
 * body is a stream; only `front/` writes it to the client.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { Route } from './config/runtime.js';
import type { SidecacheError } from './errors.js';
import type { TunnelEnd, TunnelReport } from './observers.js';
import type { Reason } from './reasons.js';

/** How the request reached sidecache. */
export type FrontMode = 'route' | 'forward' | 'tunnel' | 'intercept';

/** Timed phases of one exchange, in milliseconds (monotonic). */
export type Phase = 'dns' | 'connect' | 'tls' | 'upstream' | 'cache';

export interface Timings {
  /** Wall-clock start, ms since the epoch. */
  readonly startedAt: number;
  /** `performance.now()` at the start. */
  readonly start: number;
  /** Durations in ms of the phases that happened. */
  readonly phases: Partial<Record<Phase, number>>;
  /**
   * `performance.now()` when the last request to the origin was sent; set by tracing's hook
   * (origin-request-headers.ts) only, which places its spans by it.
   */
  upstreamStart?: number;
  /** `performance.now()` when the response was fully sent or the exchange failed. */
  end?: number;
}

export interface Admission {
  readonly decision: 'admit' | 'refuse';
  /** Why the guard admitted: the route it matched or the allow entry. */
  readonly by: string;
}

export interface OriginInfo {
  /** The origin the request was sent to, e.g. `https://api.github.com`. */
  readonly origin: string;
  /** Whether the request went out on a connection that had served earlier requests. */
  reusedConnection: boolean;
  /** Whether this exchange was retried once on a fresh connection. */
  retried: boolean;
  /** Bytes of response body received from the origin. */
  bodyBytes: number;
  /**
   * Set when the request was the first on a connection opened ahead of need (keep-warm): that
   * connection's measured DNS + TCP + TLS time, ms, which this exchange did not wait for.
   */
  preconnectedMs?: number;
  /**
   * The HTTP version spoken to the origin, as OpenTelemetry writes it (`1.1`, `2`): known once the
   * request went out on a connection (that connection's ALPN result).
   */
  httpVersion?: '1.1' | '2';
}

/** How the cache answered (docs/cache.md): also a metric label value. */
export type CacheOutcome = 'hit' | 'stale' | 'revalidated' | 'miss' | 'bypass' | 'coalesced';

/** Filled in by the cache stage (see cache/). */
export interface CacheInfo {
  readonly outcome: CacheOutcome;
  /**
   * Why: the bypass reason (`method`, `disabled`), `range` (passed on uncached), the kind of stale answer
   * (`stale-while-revalidate`, `stale-if-error`, `max-stale`, `unreachable`), `hit-for-miss`, or
   * why a response was not stored (`no-store`, `private`, `authorization`, `too-large`, …).
   */
  detail?: string;
  /**
   * Whether the response was stored. On a miss this is final only once the body has been fully
   * received (a body that fails or outgrows the limit turns it false). Undefined when the cache
   * did not consider storing.
   */
  stored?: boolean;
  /** Answers from the cache: upstream fetch time recorded with the entry minus time to serve, ms. */
  readonly savedMs?: number;
  /** Answers from the cache: body bytes not fetched from the origin. */
  readonly savedBytes?: number;
  /** Age sent with an answer from the cache, seconds. */
  readonly ageS?: number;
  /** Remaining freshness of the answer, seconds (negative when stale). */
  readonly ttlS?: number;
  /** Stored responses removed by this (unsafe) request. */
  readonly invalidated?: number;
}

/**
 * What is sent to the origin when it is not the client's request as it came (Varnish's `bereq`):
 * written by the cache stage (its own Accept-Encoding, validators removed or added), read by
 * upstream/. Absent: the client's method, path and headers.
 */
export interface OriginRequest {
  readonly method: string;
  /** Path and query, as sent on the request line. */
  readonly path: string;
  /** Request headers, lower-case keys, before upstream/ drops hop-by-hop ones and adds its own. */
  readonly headers: IncomingHttpHeaders;
}

export interface ClientInfo {
  readonly address: string;
  readonly port: number;
  /** `http` or `https`: the scheme the client used to reach sidecache. */
  readonly protocol: 'http' | 'https';
  /**
   * The HTTP version of the client's request as Node reports it (`req.httpVersion`: `1.1`, `1.0`,
   * `2.0`), a string Node already made. Absent on exchanges not built from a client request.
   */
  readonly httpVersion?: string;
}

export interface TunnelContext {
  readonly authority: string;
  readonly intercepted: boolean;
}

export interface Exchange {
  readonly id: string;
  readonly mode: FrontMode;
  /** The request method, upper-case. */
  readonly method: string;
  /** The URL the request is for at the origin (after route rewriting). */
  readonly target: URL;
  /** The origin of `target`, e.g. `https://api.github.com` (no trailing slash). */
  readonly origin: string;
  /** The matched route, or null for a forward request admitted by the allow list. */
  readonly route: Route | null;
  /** Client request headers, lower-case keys, as received (hop-by-hop headers included). */
  readonly headers: IncomingHttpHeaders;
  /** The request body, or null when the request has none. */
  readonly body: Readable | null;
  readonly client: ClientInfo;
  /** Aborted when the client goes away; stages pass it to anything they wait on. */
  readonly signal: AbortSignal;
  readonly timings: Timings;
  /**
   * Set when the request came through a CONNECT tunnel: the CONNECT authority (`host:port`) and
   * whether sidecache decrypted it (mode `intercept`). Context travels here, never on the socket.
   */
  readonly tunnel?: TunnelContext;
  /**
   * Set by front/: relays an interim (1xx) response from the origin to the client before the final
   * one (`front/interim.ts`); upstream/ calls it. Absent when the client must not get one, and on
   * exchanges nobody waits for (background refreshes).
   */
  readonly interim?: (status: number, headers: Record<string, string | string[]>) => void;
  admission?: Admission;
  cache?: CacheInfo;
  /** Set by the cache stage when it sends the origin something else than the client's request. */
  originRequest?: OriginRequest | undefined;
  originInfo?: OriginInfo;
  reason?: Reason;
  /**
   * Set by the policy advisor's stage (src/advisor/) on a request whose answer it compares:
   * upstream/ hands it each chunk of the origin's response body as it arrives, in the body's own
   * path (no stream of its own).
   */
  bodyTap?: BodyTap | undefined;
}

/** Sees the origin's response body, chunk by chunk, as upstream/ receives it. */
export interface BodyTap {
  update(chunk: Buffer): void;
}

/** Whatever holds an exchange's AbortSignal and makes it on first read (front/'s ResponseWatch, or another exchange). */
export interface SignalSource {
  readonly signal: AbortSignal;
}

/** Whatever makes an exchange's interim relay on first read (front/'s ResponseWatch). */
export interface InterimSource {
  readonly interim: Exchange['interim'];
}

export interface ExchangeInit {
  readonly id: string;
  readonly mode: FrontMode;
  readonly method: string;
  readonly target: URL;
  /** `target.origin` when absent (reading it costs a URL getter). */
  readonly origin?: string;
  readonly route: Route | null;
  readonly headers: IncomingHttpHeaders;
  readonly body: Readable | null;
  readonly client: ClientInfo;
  /** The signal, or where to read it from when first asked for. */
  readonly signal: AbortSignal | SignalSource;
  readonly timings: Timings;
  readonly tunnel?: TunnelContext | undefined;
  /** The relay, or where to read it from when first asked for (most exchanges never do). */
  readonly interim?: Exchange['interim'] | InterimSource;
}

/**
 * The one way to make an Exchange: for every arrival (routed, unrouted, CONNECT, Upgrade,
 * intercepted) and for the cache stage's background refreshes.
 */
export function createExchange(init: ExchangeInit): Exchange {
  return new ExchangeRecord(init);
}

/**
 * The Exchange as a class: every exchange has one object shape (the fields stages fill in later
 * exist from the start), and the abort signal is read from its source only when something asks
 * for it. Most exchanges (cache hits, fast origin answers) never read it, and making an
 * AbortSignal cost about as much as the rest of building the exchange.
 */
class ExchangeRecord implements Exchange {
  readonly id: string;
  readonly mode: FrontMode;
  readonly method: string;
  readonly target: URL;
  readonly origin: string;
  readonly route: Route | null;
  readonly headers: IncomingHttpHeaders;
  readonly body: Readable | null;
  readonly client: ClientInfo;
  readonly timings: Timings;
  readonly tunnel: TunnelContext | undefined;
  admission: Admission | undefined = undefined;
  cache: CacheInfo | undefined = undefined;
  originRequest: OriginRequest | undefined = undefined;
  originInfo: OriginInfo | undefined = undefined;
  reason: Reason | undefined = undefined;
  bodyTap: BodyTap | undefined = undefined;
  readonly #signal: AbortSignal | SignalSource;
  #interim: Exchange['interim'] | InterimSource;

  constructor(init: ExchangeInit) {
    this.id = init.id;
    this.mode = init.mode;
    this.method = init.method;
    this.target = init.target;
    this.origin = init.origin ?? init.target.origin;
    this.route = init.route;
    this.headers = init.headers;
    this.body = init.body;
    this.client = init.client;
    this.timings = init.timings;
    this.tunnel = init.tunnel;
    this.#interim = init.interim;
    this.#signal = init.signal;
  }

  /**
   * Aborted when the client goes away. A getter on the prototype: a copy made with `{ ...ex }`
   * does not get it, so such copies must name `signal: ex.signal` themselves.
   */
  get signal(): AbortSignal {
    const s = this.#signal;
    return s instanceof AbortSignal ? s : s.signal;
  }

  /** The interim relay, made by its source on first read (a hit never reads it). */
  get interim(): Exchange['interim'] {
    const i = this.#interim;
    if (i === undefined || typeof i === 'function') return i;
    const relay = i.interim;
    this.#interim = relay;
    return relay;
  }
}

export type ReplySource = 'origin' | 'cache' | 'synth';

export interface Reply {
  readonly status: number;
  readonly statusText?: string;
  /** Response headers, lower-case keys, hop-by-hop headers already removed. */
  readonly headers: OutgoingHttpHeaders;
  /** A stream, or (for bodies already in memory, e.g. cache hits) the bytes, written in one go. */
  readonly body: Readable | Buffer | null;
  readonly source: ReplySource;
}

/**
 * One step of the pipeline for one exchange: a Reply when it is made without I/O (a remembered
 * hit), else a promise of one. A refusal may be thrown or a rejected promise.
 */
export type Next = (ex: Exchange) => Reply | Promise<Reply>;
export type Stage = (next: Next) => Next;

/** How a request reached front/: on the proxy listener, or decrypted from an intercepted tunnel. */
export type Arrival = { readonly via: 'listener' } | { readonly via: 'tunnel'; readonly authority: string };

/** How an exchange ended, told by front/ to its observers (access log, metrics, tracing). */
export interface ExchangeEnd {
  readonly ex: Exchange;
  readonly status: number;
  /** Body bytes written to the client. */
  readonly bytes: number;
  /** Set when the exchange failed (before or during the response). */
  readonly error?: SidecacheError;
  readonly replySource: Reply['source'] | null;
  /** The reply front/ wrote (its head, at least), when the pipeline answered with one. */
  readonly reply?: Reply;
}

export type ExchangeObserver = (end: ExchangeEnd) => void;

/** What the origin did with an Upgrade request (upstream/upgrade-relay.ts). */
export type UpgradeOutcome =
  | {
      readonly kind: 'upgraded';
      readonly status: number;
      readonly statusText: string | undefined;
      readonly headers: Record<string, string | string[]>;
      readonly originSocket: Duplex;
      /** Bytes the origin sent right after its 101 head. */
      readonly originHead: Buffer;
    }
  | { readonly kind: 'answered'; readonly reply: Reply };

/** What CONNECT and Upgrade exchanges need from guard/, tunnel/ and upstream/ (wired in tunnel/setup.ts). */
export interface RawParts {
  /** The guard for exchanges that do not run the pipeline: resolves when admitted, throws if refused. */
  admit: Next;
  /** Whether a CONNECT to `host`:`port` is decrypted (`intercept`) rather than tunnelled as-is. */
  intercepts(host: string, port: number): boolean;
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
  /** Sends an admitted Upgrade request, with the request body read before it (or null), to its origin. */
  upgrade(ex: Exchange, req: IncomingMessage, body: Buffer | null): Promise<UpgradeOutcome>;
  readonly idleTimeoutMs: number;
  onTunnelEnd?(report: TunnelReport): void;
}
