/**
 * The Exchange front/ makes for each request: a class, so every exchange has one object shape
 * (the fields stages fill in later exist from the start), and so the abort signal can be made only
 * when something asks for it. Most exchanges (cache hits, fast origin answers) never read it, and
 * making an AbortSignal cost about as much as the rest of building the exchange.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Route } from '../config/runtime.js';
import type {
  Admission,
  CacheInfo,
  ClientInfo,
  Exchange,
  FrontMode,
  MemoKey,
  OriginInfo,
  Timings,
  TunnelContext,
} from '../exchange.js';
import type { Reason } from '../reasons.js';

/**
 * "The client went away": an AbortController made on first use. When `abort()` came first, the
 * signal handed out later is already aborted, as it would have been.
 */
export class ClientGone {
  #controller: AbortController | null = null;
  #gone = false;

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#gone) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#gone;
  }

  abort(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#controller?.abort();
  }
}

export interface FrontExchangeInit {
  readonly id: string;
  readonly mode: FrontMode;
  readonly method: string;
  readonly target: URL;
  readonly route: Route | null;
  readonly headers: IncomingHttpHeaders;
  readonly body: Readable | null;
  readonly client: ClientInfo;
  /** A signal, or the ClientGone whose signal is made on first read. */
  readonly signal: AbortSignal | ClientGone;
  readonly timings: Timings;
  readonly tunnel: TunnelContext | undefined;
  readonly interim: Exchange['interim'];
  readonly memoKey?: MemoKey | undefined;
}

export class FrontExchange implements Exchange {
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
  readonly interim: Exchange['interim'];
  readonly memoKey: MemoKey | undefined;
  admission: Admission | undefined = undefined;
  cache: CacheInfo | undefined = undefined;
  originInfo: OriginInfo | undefined = undefined;
  reason: Reason | undefined = undefined;
  readonly #signal: AbortSignal | ClientGone;

  constructor(init: FrontExchangeInit) {
    this.id = init.id;
    this.mode = init.mode;
    this.method = init.method;
    this.target = init.target;
    this.origin = init.target.origin;
    this.route = init.route;
    this.headers = init.headers;
    this.body = init.body;
    this.client = init.client;
    this.timings = init.timings;
    this.tunnel = init.tunnel;
    this.interim = init.interim;
    this.memoKey = init.memoKey;
    this.#signal = init.signal;
  }

  /**
   * Aborted when the client goes away. A getter on the prototype: a copy made with `{ ...ex }`
   * does not get it, so such copies must name `signal: ex.signal` themselves.
   */
  get signal(): AbortSignal {
    const s = this.#signal;
    return s instanceof ClientGone ? s.signal : s;
  }
}
