/**
 * The client's exchange with other request headers, for what the cache stage sends upstream
 * (forward() in stage.ts: our Accept-Encoding, validators removed or added). A class, so it has one
 * object shape and is made by plain field copies; `signal` reads through to the client's exchange,
 * so its AbortSignal is still made only if something asks for it (front-exchange.ts). upstream/
 * writes `originInfo` and `reason` here; forward() carries them back.
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

export class ExchangeWithHeaders implements Exchange {
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
  admission: Admission | undefined;
  cache: CacheInfo | undefined;
  originInfo: OriginInfo | undefined;
  reason: Reason | undefined;
  readonly #base: Exchange;

  constructor(base: Exchange, headers: IncomingHttpHeaders) {
    this.#base = base;
    this.id = base.id;
    this.mode = base.mode;
    this.method = base.method;
    this.target = base.target;
    this.origin = base.origin;
    this.route = base.route;
    this.headers = headers;
    this.body = base.body;
    this.client = base.client;
    this.timings = base.timings;
    this.tunnel = base.tunnel;
    this.interim = base.interim;
    this.memoKey = base.memoKey;
    this.admission = base.admission;
    this.cache = base.cache;
    this.originInfo = base.originInfo;
    this.reason = base.reason;
  }

  /** The client's exchange's signal (made on first read, there). */
  get signal(): AbortSignal {
    return this.#base.signal;
  }
}
