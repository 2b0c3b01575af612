/**
 * admit → store: whether an origin response may be stored (a Judgement: storability.ts over the
 * headers as this cache judges them), the one way a StoredResponse is made from an origin answer
 * (storedResponseFrom; after a 304, refreshed), and admit(), which stores a storable answer once
 * its body is complete, capturing it while it streams on to the client.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { CacheInfo, Reply } from '../exchange.js';
import { captureBody } from './body-capture.js';
import { parseResponseDirectives, type RequestDirectives, type ResponseDirectives } from './cache-control.js';
import { checkDecodable, storedCoding } from './compression.js';
import {
  type CacheCore,
  type Ctx,
  directivesOf,
  type Fetched,
  lifetimeFrom,
  lifetimeOf,
  markCacheTime,
  policyHeaders,
  storePut,
  track,
} from './core.js';
import { decorate, decorateOwn } from './deliver.js';
import { currentAgeMs, type Lifetime, retentionMs } from './freshness.js';
import { firstValue, type HeaderSource } from './headers.js';
import { variantKey, varyValues } from './key.js';
import type { RouteCachePolicy } from './options.js';
import {
  headersToStore,
  type NotStoredReason,
  notStoredDetail,
  type Storability,
  type StorabilityInput,
  type StoragePolicy,
  storability,
  varyFields,
} from './storability.js';
import type { StoredResponse } from './store.js';
import { updateHeaders } from './validation.js';

/** Not-stored reasons that depend on the response alone: worth a hit-for-miss marker. */
const RESPONSE_REASONS: ReadonlySet<NotStoredReason> = new Set([
  'status',
  'partial',
  'must-understand',
  'no-store',
  'private',
  'authorization',
  'set-cookie',
  'vary-star',
  'no-freshness',
  'too-large',
]);

/**
 * Cache-Status `detail` of a miss keyed by the request's cookies (nothing stored under them, and
 * no usable entry fetched without cookies): the response is stored for those cookies only.
 */
export const COOKIE_DETAIL = 'cookie';

/**
 * An origin answer's directives and whether it may be stored (`verdict`, made by the constructor). The freshness lifetime
 * is worked out only when asked for (`lifetime()`, once): storability needs it only for its last
 * rule, so an answer refused earlier (`no-store`, `private`, ...) never computes it. One object
 * per answer, itself storability()'s input: no closures.
 */
export class Judgement implements StorabilityInput {
  readonly method: string;
  readonly status: number;
  readonly req: RequestDirectives;
  readonly res: ResponseDirectives;
  readonly resHeaders: HeaderSource;
  readonly authorization: boolean;
  readonly policy: StoragePolicy;
  readonly times: { headers: HeaderSource; requestTime: number; responseTime: number };
  readonly verdict: Storability;
  readonly #core: CacheCore;
  readonly #routePolicy: RouteCachePolicy;
  #life: Lifetime | undefined;

  constructor(
    core: CacheCore,
    ctx: Ctx,
    method: string,
    reply: Reply,
    requestTime: number,
    responseTime: number,
  ) {
    const { policy } = ctx;
    const view = policyHeaders(core, reply.headers);
    this.#core = core;
    this.#routePolicy = policy;
    this.method = method;
    this.status = reply.status;
    this.req = ctx.req;
    this.res = parseResponseDirectives(view['cache-control']);
    this.resHeaders = view;
    this.authorization = ctx.ex.headers['authorization'] !== undefined;
    this.policy = {
      storePrivate: policy.storePrivate,
      storeSetCookie: policy.storeSetCookie,
      ttlOverride: policy.ttlMs !== null,
      ignoreNoStore: policy.ignoreNoStore,
    };
    this.times = { headers: view, requestTime, responseTime };
    this.#life = undefined;
    this.verdict = storability(this);
  }

  /** storability()'s view of the lifetime: read only by its last rule. */
  get lifetimeMs(): number {
    return this.lifetime().ms;
  }

  lifetime(): Lifetime {
    this.#life ??= lifetimeFrom(this.#core, this.status, this.times, this.res, this.#routePolicy);
    return this.#life;
  }
}

/** The Content-Length an answer declares, when it is a plain number. */
export function declaredLength(headers: HeaderSource): number | undefined {
  const value = firstValue(headers, 'content-length');
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * Whether a complete origin body may be stored as far as its coding goes: a body in a coding we
 * decode must decode cleanly (a corrupt one is never stored); its decoded size is reported.
 */
export async function decodable(core: CacheCore, headers: HeaderSource, body: Uint8Array): Promise<boolean> {
  const coding = storedCoding(headers);
  if (coding === null || body.byteLength === 0) return true;
  const identity = await checkDecodable(body, coding, core.opts.maxEntryBytes * 64 + 64 * 1024 * 1024);
  if (identity === null) return false;
  core.observer.onUpstreamCoding?.(body.byteLength, identity);
  return true;
}

/**
 * The StoredResponse for an origin answer (`head`: its status and the headers to keep) with a
 * complete body: under `key`, as the variant of `requestHeaders` on the answer's Vary fields,
 * kept past its freshness `lifeMs` for as long as it may still be served stale. `times.sentAt`
 * gives the fetch time it saves each hit (measured now, when the body is complete).
 */
export function storedResponseFrom(
  core: CacheCore,
  key: string,
  requestHeaders: IncomingHttpHeaders,
  head: Pick<Reply, 'status' | 'statusText' | 'headers'>,
  body: Uint8Array,
  res: ResponseDirectives,
  lifeMs: number,
  times: Pick<Fetched, 'requestTime' | 'responseTime' | 'sentAt'>,
): StoredResponse {
  const vary = varyFields(head.headers);
  const values = varyValues(vary, requestHeaders);
  return {
    key,
    variantKey: variantKey(vary, values),
    vary,
    varyValues: values,
    status: head.status,
    statusText: head.statusText ?? '',
    headers: headersToStore(head.headers, res),
    body,
    requestTime: times.requestTime,
    responseTime: times.responseTime,
    fetchMs: performance.now() - times.sentAt,
    deleteAt: times.responseTime + retentionMs(lifeMs, res, core.opts.staleRetentionMs),
  };
}

/** The stored response after a 304 from the origin (§3.2, §4.3.4). */
export function refreshed(
  core: CacheCore,
  ctx: Ctx,
  entry: StoredResponse,
  notModified: HeaderSource,
  requestTime: number,
  responseTime: number,
): StoredResponse {
  const headers = updateHeaders(entry.headers, notModified);
  const updated = { ...entry, headers, requestTime, responseTime };
  const res = directivesOf(core, headers);
  const life = lifetimeOf(core, entry.status, updated, ctx.policy);
  return { ...updated, deleteAt: responseTime + retentionMs(life.ms, res, core.opts.staleRetentionMs) };
}

/**
 * Decides whether an origin response is stored; captures its body while it streams on. Not an
 * async function: an answer refused from its head (no-store, ...) is decorated and returned at
 * once; only a storable answer without a body waits for its store.
 */
export function admit(core: CacheCore, ctx: Ctx, f: Fetched): Reply | Promise<Reply> {
  const { opts, coalescer } = core;
  const { ex, key } = ctx;
  const { reply } = f;
  const judged = new Judgement(core, ctx, ex.method, reply, f.requestTime, f.responseTime);
  const { res, times, verdict } = judged;
  let notStored: NotStoredReason | null = verdict.storable ? null : verdict.reason;
  let expectedBytes: number | undefined;
  if (notStored === null) {
    expectedBytes = declaredLength(reply.headers);
    if (expectedBytes !== undefined && expectedBytes > opts.maxEntryBytes) notStored = 'too-large';
  }
  if (notStored !== null) {
    // Not storable (decided from the head alone): the body passes as it came, never captured.
    f.settle?.('not-stored');
    if (RESPONSE_REASONS.has(notStored)) coalescer.markHitForMiss(key, notStored, opts.hitForMissTtlMs);
    ex.cache = { outcome: 'miss', stored: false, detail: f.detail ?? notStored };
    markCacheTime(ctx);
    const status = { fwd: f.fwd, fwdStatus: reply.status, detail: notStoredDetail(notStored) };
    // upstream/ made this head for this answer alone, and nothing stores it: decorated in place.
    return reply.source === 'origin'
      ? decorateOwn(core, ctx, reply, status)
      : decorate(core, ctx, reply, status);
  }
  coalescer.clearHitForMiss(key);
  const storedDetail = f.detail ?? (ctx.cookieless === null ? undefined : COOKIE_DETAIL);
  const info: CacheInfo = storedDetail
    ? { outcome: 'miss', stored: true, detail: storedDetail }
    : { outcome: 'miss', stored: true };
  ex.cache = info;
  markCacheTime(ctx);
  const life = judged.lifetime();
  const ttlS = Math.floor((life.ms - currentAgeMs(times, core.now())) / 1000);
  const finish = (ok: boolean): void => {
    info.stored = ok;
    if (!ok && info.detail !== 'undecodable') info.detail = 'store-refused';
    f.settle?.(ok ? 'stored' : 'not-stored');
  };
  /** Stores a complete body once its coding checks out. */
  const put = async (body: Uint8Array): Promise<boolean> => {
    if (!(await decodable(core, reply.headers, body))) {
      info.detail = 'undecodable';
      return false;
    }
    return storePut(core, storedResponseFrom(core, key, ctx.headers, reply, body, res, life.ms, f));
  };
  // Cache-Status says `stored` only when the store is done before the head goes out (no body);
  // otherwise the outcome is known later, and only the log and metrics (ex.cache) carry it.
  const decorated = (body: Readable | Buffer | null, stored = false): Reply =>
    decorate(
      core,
      ctx,
      { ...reply, body },
      storedDetail === COOKIE_DETAIL
        ? { fwd: f.fwd, fwdStatus: reply.status, stored, ttlS, detail: COOKIE_DETAIL }
        : { fwd: f.fwd, fwdStatus: reply.status, stored, ttlS },
      undefined,
      true,
    );
  if (reply.body === null) {
    return track(core, put(new Uint8Array(0))).then((ok) => {
      finish(ok);
      return decorated(null, info.stored);
    });
  }
  if (Buffer.isBuffer(reply.body)) {
    // A body upstream/ already had whole: the client need not wait for the store (as when streamed).
    track(core, put(reply.body).then(finish));
    return decorated(reply.body);
  }
  const body = captureBody(reply.body, opts.maxEntryBytes, expectedBytes, {
    onComplete: (buf) => {
      track(core, put(buf).then(finish));
    },
    onOverflow: () => {
      info.stored = false;
      info.detail = 'too-large';
      coalescer.markHitForMiss(key, 'too-large', opts.hitForMissTtlMs);
      f.settle?.('not-stored');
    },
    onFail: () => {
      info.stored = false;
      info.detail = 'incomplete';
      f.settle?.('failed');
    },
  });
  return decorated(body);
}
