/**
 * The cache stage: an RFC 9111 shared cache between guard/ and upstream/.
 *
 * Lifecycle, as named states (docs/cache.md draws it):
 *   recv     → pass (bypass: disabled, method) | unsafe (pass + invalidate) | lookup
 *   lookup   → hit | stale (serve; refresh in background for stale-while-revalidate)
 *              | revalidate | miss | synth 504 (only-if-cached)
 *   revalidate → 304: update stored headers, deliver | full response: admit | error: stale-if-error
 *   miss     → coalesce (leader fetches; followers wait, then read the store) | fetch (hit-for-miss)
 *   admit    → store when storable and complete (body captured while it streams) | pass it on
 *   deliver  → a Reply from a stored response, with Age and Cache-Status (206/416 for a Range
 *              on a stored 200; a Range that cannot be served from the store is passed on as is)
 *
 * Only this stage reads the clock (`deps.now`, default `Date.now`); the RFC modules take `now`.
 *
 * Two extensions keep hits warm and small (issue 11):
 *   refresh-ahead (refresh-ahead.ts): a fresh hit on a hot entry near its expiry starts the same
 *     background refresh as stale-while-revalidate, bounded by `refreshAheadConcurrency`;
 *   upstream compression (compression.ts): GET/HEAD go upstream with `Accept-Encoding: br, gzip`
 *     (`ctx.headers`, also used for keys and Vary), coded bodies are stored as they came (after a
 *     decode check), and every reply leaves through decorate(), which decodes for clients that do
 *     not accept the coding.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Route } from '../config/runtime.js';
import type { CacheInfo, Exchange, Next, Reply, Stage } from '../exchange.js';
import { admit, judge, storedResponseFrom } from './admit.js';
import { captureBody, discard, readBody } from './body-capture.js';
import { joinField, parseRequestDirectives } from './cache-control.js';
import type { ForwardReason } from './cache-status.js';
import {
  type CacheDeps,
  type Ctx,
  createCacheCore,
  type Derived,
  type Fetched,
  forward,
  isRange,
  lifetimeOf,
  type MemoServingCtx,
  markCacheTime,
  pathPolicy,
  refreshAheadPlan,
  select,
  storeDeletePrefix,
  storeGet,
  storePut,
  track,
  withoutClientValidators,
} from './core.js';
import {
  decorate,
  deliver,
  derive,
  onlyIfCachedMiss,
  PLAIN_HIT,
  reuseDecision,
  untransformed,
} from './deliver.js';
import { currentAgeMs } from './freshness.js';
import { firstValue } from './headers.js';
import type { HitMemo, MemoDecision } from './hit-memo.js';
import { invalidatedUrls, SAFE_METHODS } from './invalidation.js';
import { cacheUrl, cookieFallbackKey, credentialHash, primaryKey, urlKeyPrefix } from './key.js';
import { miss } from './miss.js';
import { hasNoTransform } from './no-transform.js';
import {
  type CacheOptions,
  DEFAULT_ROUTE_POLICY,
  parseCacheOptions,
  parseRouteCachePolicy,
  type RouteCachePolicy,
  type RouteCachePolicyInput,
} from './options.js';
import {
  bodyFits,
  completeHeaders,
  completionRange,
  isComplete,
  mergeParts,
  type Part,
  parseContentRange,
  replyFromPart,
  type Span,
  storablePart,
  validatorsMatch,
} from './partial.js';
import { refreshAhead, refreshInBackground } from './refresh.js';
import { revalidate } from './revalidate.js';
import type { CacheStore, StoredResponse, StoreStats } from './store.js';
import { CLIENT_VALIDATORS } from './validation.js';

export type { CacheObserver } from '../observers.js';
export type { CacheDeps } from './core.js';

export interface CacheStats extends StoreStats {
  /** Keys with a coalescing leader in flight. */
  readonly inFlight: number;
  /** Background refreshes in flight (stale-while-revalidate and refresh-ahead). */
  readonly refreshing: number;
  /** Refresh-ahead revalidations in flight. */
  readonly refreshingAhead: number;
  /** Bytes of decoded copies of coded entries (compression.ts DecodedCopies), outside `bytes`. */
  readonly decodedBytes: number;
}

/** The stage, plus what the admin listener and metrics need. */
export interface CacheStage extends Stage {
  readonly store: CacheStore;
  readonly options: CacheOptions;
  /** Deletes every stored response (every credential and variant) of one URL. */
  purgeUrl(url: string | URL, policy?: RouteCachePolicy): Promise<number>;
  /** Deletes every stored response whose URL starts with `prefix` (e.g. `https://api.x.com/v1/`). */
  purgePrefix(prefix: string): Promise<number>;
  /** Deletes every stored response under a route's origin and base path. */
  purgeRoute(route: Pick<Route, 'origin' | 'basePath'>): Promise<number>;
  stats(): Promise<CacheStats>;
  /** Resolves once background refreshes and pending stores have finished (tests, shutdown). */
  idle(): Promise<void>;
  /**
   * The responses held in this process's memory (none when the store cannot list them), each
   * with the times it was served, its age and its remaining freshness under `policyOf(entry)`
   * (the policy of the route its URL belongs to). For admin `GET /cache` (admin/cache-list.ts).
   */
  inspect(policyOf: (entry: StoredResponse) => RouteCachePolicy): Iterable<InspectedEntry>;
  /** The hit memo (hit-memo.ts) and how to serve what it recalls; null when off or the store has no `peekOnly`. */
  readonly memo: MemoServing | null;
}

export interface InspectedEntry {
  readonly entry: StoredResponse;
  /** Answers served from it in this process (hits, stale answers, coalesced followers). */
  readonly hits: number;
  readonly ageMs: number;
  /** Freshness left, ms (negative: stale by that much). */
  readonly ttlMs: number;
}

/** front/ asks the memo before it resolves a request; a recalled decision is served here. */
export interface MemoServing extends Pick<HitMemo, 'keyOf' | 'recall' | 'size' | 'recalls'> {
  /** The reply for an exchange built from a recalled decision (the same deliver as any hit). */
  serve(ex: Exchange, decision: MemoDecision): Reply;
}

/**
 * A `policyFor` that looks a route's policy up by route name; exchanges without a route, or with
 * a route not listed, get the defaults. Validates every policy now (ConfigError names the route).
 */
export function policyByRoute(
  policies: Readonly<Record<string, RouteCachePolicyInput>> | ReadonlyMap<string, RouteCachePolicyInput>,
): (ex: Exchange) => RouteCachePolicy {
  const entries = policies instanceof Map ? [...policies.entries()] : Object.entries(policies);
  const parsed = new Map<string, RouteCachePolicy>();
  for (const [name, p] of entries) parsed.set(name, parseRouteCachePolicy(p, `routes.${name}.cache`));
  return (ex) => (ex.route ? parsed.get(ex.route.name) : undefined) ?? DEFAULT_ROUTE_POLICY;
}

const DISABLED_POLICY: RouteCachePolicy = Object.freeze({ ...DEFAULT_ROUTE_POLICY, enabled: false });

/** The request fields a remembered hit depends on when it varies on nothing and has no key fields. */
const ACCEPT_ENCODING_ONLY: readonly string[] = Object.freeze(['accept-encoding']);

export function createCacheStage(options: unknown, deps: CacheDeps = {}): CacheStage {
  const opts = parseCacheOptions(options);
  const core = createCacheCore(opts, deps);
  const { now, store, policyFor, coalescer, refreshing, askCoding, pending } = core;
  const { peekOnly, memo, derivedByEntry, decodedCopies, partKeys } = core;
  /**
   * After a plain fresh hit: remember the decision (hit-memo.ts) when the exchange is one the memo
   * may answer (front/ set `memoKey`) and the guard admitted, the response is the only
   * variant stored under its key, and nothing else happens on a hit of this policy (refresh-ahead).
   */
  function rememberHit(ctx: Ctx, entry: StoredResponse, d: Derived): void {
    const { ex } = ctx;
    const at = ex.memoKey;
    if (memo === null || at === undefined || ex.admission?.decision !== 'admit') return;
    // Only an entry hit again: with many keys hit once each, remembering every hit is pure cost
    // (the entries sweep at 100k keys: ~10 µs per hit).
    if (++d.pipelineHits < 2) return;
    if (refreshAheadPlan(core, ctx.policy) !== null || peekOnly?.(ctx.key) !== entry) return;
    // A coded no-transform entry may need the origin for some clients (untransformed): never memoised.
    if (d.coding !== null && hasNoTransform(entry.headers['cache-control'])) return;
    const fields =
      entry.vary.length === 0 && ctx.policy.keyHeaders.length === 0
        ? ACCEPT_ENCODING_ONLY
        : [...new Set(['accept-encoding', ...entry.vary, ...ctx.policy.keyHeaders])];
    memo.remember(at.key, {
      runtime: at.runtime,
      mode: ex.mode,
      route: ex.route,
      target: ex.target,
      origin: ex.origin,
      admission: ex.admission,
      storeKey: ctx.key,
      entry: new WeakRef(entry),
      freshUntil: entry.responseTime + d.lifeMs - d.initialAgeMs,
      fields,
      values: fields.map((f) => {
        const v = ex.headers[f];
        return v === undefined ? undefined : joinField(v);
      }),
      credential: credentialHash(ctx.headers, ctx.policy, deps.credentialSecret),
      keyPolicy: ctx.policy,
      serving: {
        compress: ctx.compress,
        policy: ctx.policy,
        req: ctx.req,
        key: ctx.key,
      } satisfies MemoServingCtx,
    });
  }

  // -------------------------------------------------------------------------------- lookup/hit

  async function reuse(ctx: Ctx, next: Next, entry: StoredResponse): Promise<Reply> {
    const { d, derived, ageMs } = reuseDecision(core, ctx, entry);
    switch (d.kind) {
      case 'fresh': {
        const reply = deliver(core, ctx, entry, PLAIN_HIT);
        refreshAhead(core, ctx, next, entry, ageMs, derived.lifeMs);
        rememberHit(ctx, entry, derived);
        return reply;
      }
      case 'stale':
        return deliver(core, ctx, entry, {
          outcome: 'stale',
          detail: d.why,
          status: { hit: true, detail: d.why },
        });
      case 'stale-while-revalidate':
        // only-if-cached asks the cache not to contact the origin (§5.2.1.7), even in the background.
        if (!ctx.req.onlyIfCached) refreshInBackground(core, ctx, next, entry);
        return deliver(core, ctx, entry, {
          outcome: 'stale',
          detail: 'stale-while-revalidate',
          status: { hit: true, detail: 'stale-while-revalidate' },
        });
      case 'revalidate':
        if (ctx.req.onlyIfCached) return onlyIfCachedMiss(core, ctx);
        if (ctx.ex.method === 'HEAD') return miss(core, ctx, next, 'stale');
        if (isRange(ctx.ex)) return passRange(ctx, next, 'stale');
        return revalidate(core, ctx, next, entry, d.why);
      default: {
        const never: never = d;
        throw new Error(`unknown reuse decision ${String(never)}`);
      }
    }
  }

  /**
   * A request with cookies, answered from an entry fetched without cookies (Ctx.cookieless): only
   * when that needs no origin (fresh, or stale the request accepts). A revalidation or background
   * refresh would send this request's cookies and store the answer where callers without them
   * read: such a request misses instead, under its own key. Neither refresh-ahead nor the hit memo
   * applies (both act for the entry's own key).
   */
  function reuseCookieless(ctx: Ctx, entry: StoredResponse): Reply | null {
    const { d } = reuseDecision(core, ctx, entry);
    switch (d.kind) {
      case 'fresh':
        return deliver(core, ctx, entry, PLAIN_HIT);
      case 'stale':
        return deliver(core, ctx, entry, {
          outcome: 'stale',
          detail: d.why,
          status: { hit: true, detail: d.why },
        });
      case 'stale-while-revalidate':
      case 'revalidate':
        return null;
      default: {
        const never: never = d;
        throw new Error(`unknown reuse decision ${String(never)}`);
      }
    }
  }

  async function lookup(ctx: Ctx, next: Next): Promise<Reply> {
    const variants = await storeGet(core, ctx.key);
    const entry = select(variants, ctx.headers);
    if (entry !== undefined) return reuse(ctx, next, entry);
    if (ctx.cookieless !== null) {
      const shared = select(await storeGet(core, ctx.cookieless), ctx.headers);
      const reply = shared === undefined ? null : reuseCookieless(ctx, shared);
      if (reply !== null) return reply;
    }
    if (ctx.req.onlyIfCached) return onlyIfCachedMiss(core, ctx);
    const fwd = variants.length > 0 ? 'vary-miss' : 'uri-miss';
    if (isRange(ctx.ex)) return passRange(ctx, next, fwd);
    if (ctx.ex.method === 'GET' && partKeys.has(ctx.key)) {
      const completed = await completePart(ctx, next, fwd);
      if (completed !== null) return completed;
    }
    return miss(core, ctx, next, fwd);
  }

  // ---------------------------------------------------------------------- partial content

  /** The store key of a primary key's partial entries (partial.ts); under the URL's prefix. */
  const partKeyOf = (key: string): string => `${key}\u0001part`;
  const PART_KEYS_MAX = 10_000;

  /** The stored part matching the request (its own headers: parts are fetched without ours). */
  async function storedPart(ctx: Ctx): Promise<{ entry: StoredResponse; part: Part } | null> {
    if (!partKeys.has(ctx.key)) return null;
    const entry = select(await storeGet(core, partKeyOf(ctx.key)), ctx.ex.headers);
    if (entry === undefined) return null;
    const span = parseContentRange(entry.headers['content-range']);
    if (span === null || !bodyFits(span, entry.body)) return null;
    return { entry, part: { span, body: entry.body } };
  }

  /**
   * Stores a 206 that arrived whole (`span` checked against it): combined with the stored part
   * when they are one representation; a complete result is stored as the full 200 instead.
   */
  async function storePart(ctx: Ctx, f: Fetched, span: Span, body: Uint8Array): Promise<boolean> {
    if (!bodyFits(span, body)) return false;
    const { reply } = f;
    let part: Part = { span, body };
    const prior = await storedPart(ctx);
    if (prior !== null && validatorsMatch(prior.entry.headers, reply.headers)) {
      part = mergeParts(prior.part, part) ?? part;
    }
    const complete = isComplete(part.span);
    const headers = completeHeaders(reply.headers, part.span.last - part.span.first + 1);
    if (!complete)
      headers['content-range'] = `bytes ${part.span.first}-${part.span.last}/${part.span.length}`;
    const { res, lifetime } = judge(
      core,
      ctx,
      'GET',
      { ...reply, status: 200 },
      f.requestTime,
      f.responseTime,
    );
    const head = complete
      ? { status: 200, statusText: 'OK', headers }
      : { status: 206, statusText: 'Partial Content', headers };
    const key = complete ? ctx.key : partKeyOf(ctx.key);
    // Parts are fetched without our headers: the variant is of the client's own request.
    const entry = storedResponseFrom(core, key, ctx.ex.headers, head, part.body, res, lifetime().ms, f);
    const ok = await storePut(core, entry);
    if (ok && complete) await storeDeletePrefix(core, partKeyOf(ctx.key));
    if (ok && !complete) {
      if (partKeys.size >= PART_KEYS_MAX) partKeys.delete(partKeys.values().next().value as string);
      partKeys.add(ctx.key);
    }
    return ok;
  }

  /**
   * The span of an origin 206 to a GET that may be stored as a part (partial.ts storablePart), when
   * the response is storable as a 200 would be; else null.
   */
  function partToStore(ctx: Ctx, f: Fetched): Span | null {
    const { reply } = f;
    if (reply.status !== 206 || ctx.ex.method !== 'GET' || reply.body === null) return null;
    const { verdict } = judge(core, ctx, 'GET', { ...reply, status: 200 }, f.requestTime, f.responseTime);
    return verdict.storable ? storablePart(reply.headers, opts.maxEntryBytes) : null;
  }

  /**
   * A Range request the store holds no full response for: answered from a fresh stored part that
   * covers it, else sent to the origin as it is; a 206 answer is stored as a part (storePart).
   */
  async function passRange(ctx: Ctx, next: Next, fwd: ForwardReason): Promise<Reply> {
    const { ex } = ctx;
    const stored = CLIENT_VALIDATORS.some((h) => ex.headers[h] !== undefined) ? null : await storedPart(ctx);
    if (stored !== null && reuseDecision(core, ctx, stored.entry).d.kind === 'fresh') {
      const r = replyFromPart(ex.headers, stored.entry.headers, stored.part);
      if (r !== null) {
        const ageMs = currentAgeMs(stored.entry, now());
        const ttlS = Math.floor((derive(core, stored.entry, ctx.policy).lifeMs - ageMs) / 1000);
        markCacheTime(ctx);
        ex.cache = { outcome: 'hit', savedMs: stored.entry.fetchMs, savedBytes: r.body.byteLength, ttlS };
        ex.reason = 'cache_hit';
        const reply: Reply = { status: 206, statusText: 'Partial Content', ...r, source: 'cache' };
        return decorate(core, ctx, reply, { hit: true, ttlS, detail: 'partial' }, Math.floor(ageMs / 1000));
      }
    }
    ex.cache = { outcome: 'miss', stored: false, detail: 'range' };
    markCacheTime(ctx);
    const requestTime = now();
    const sentAt = performance.now();
    const reply = await next(ex);
    const f: Fetched = { reply, fwd, requestTime, responseTime: now(), sentAt, settle: null };
    const span = partToStore(ctx, f);
    if (span === null || reply.body === null) {
      return decorate(core, ctx, reply, { fwd, fwdStatus: reply.status, detail: 'range' });
    }
    const info: CacheInfo = { outcome: 'miss', stored: false, detail: 'partial' };
    ex.cache = info;
    const keep = (buf: Uint8Array) => {
      track(core, storePart(ctx, f, span, buf)).then((ok) => {
        info.stored = ok;
      });
    };
    let body: Readable | Buffer;
    if (Buffer.isBuffer(reply.body)) {
      keep(reply.body);
      body = reply.body;
    } else {
      // No expected length: a body that does not fit its Content-Range reaches the client as the
      // origin sent it, and is not stored (storePart checks it).
      body = captureBody(reply.body, opts.maxEntryBytes, undefined, {
        onComplete: keep,
        onOverflow: () => {},
        onFail: () => {},
      });
    }
    return decorate(core, ctx, { ...reply, body }, { fwd, fwdStatus: reply.status, detail: 'partial' });
  }

  /**
   * A GET without Range where a part starting at byte 0 is stored: asks the origin for the rest
   * (`Range: bytes=N-`, with `If-Range` when the part has a strong ETag). A 206 that combines with
   * the part into the whole representation, or a 200, is admitted as the full response; anything
   * else is drained and null returned (the caller fetches the whole response as usual).
   */
  async function completePart(ctx: Ctx, next: Next, fwd: ForwardReason): Promise<Reply | null> {
    const stored = await storedPart(ctx);
    const range = stored === null ? null : completionRange(stored.part.span);
    if (stored === null || range === null) return null;
    const own: IncomingHttpHeaders = withoutClientValidators(ctx.ex.headers);
    const headers: IncomingHttpHeaders = Object.assign({}, own, { range });
    const etag = firstValue(stored.entry.headers, 'etag');
    if (etag !== undefined && !etag.trim().startsWith('W/')) headers['if-range'] = etag.trim();
    // The answer is to the client's own request headers: stored and matched by those (not ours).
    const c: Ctx = { ...ctx, headers: own, compress: false };
    markCacheTime(ctx);
    const requestTime = now();
    const sentAt = performance.now();
    const reply = await forward(c, next, headers);
    const responseTime = now();
    if (reply.status === 200) {
      return admit(core, c, {
        reply,
        fwd,
        requestTime,
        responseTime,
        sentAt,
        settle: null,
        detail: 'partial',
      });
    }
    const f: Fetched = { reply, fwd, requestTime, responseTime, sentAt, settle: null };
    const span = partToStore(c, f);
    if (span === null || !validatorsMatch(stored.entry.headers, reply.headers) || reply.body === null) {
      discard(reply.body);
      return null;
    }
    let body: Buffer | null = null;
    try {
      body = Buffer.isBuffer(reply.body)
        ? reply.body
        : await readBody(reply.body, opts.maxEntryBytes, undefined);
    } catch {
      return null; // the origin failed mid-body: fetched whole instead
    }
    const merged = body === null || !bodyFits(span, body) ? null : mergeParts(stored.part, { span, body });
    if (merged === null || !isComplete(merged.span)) return null;
    const whole: Reply = {
      status: 200,
      statusText: 'OK',
      headers: completeHeaders(reply.headers, merged.span.length),
      body: Buffer.from(merged.body.buffer, merged.body.byteOffset, merged.body.byteLength),
      source: 'origin',
    };
    track(core, storeDeletePrefix(core, partKeyOf(ctx.key)));
    return admit(core, c, {
      reply: whole,
      fwd,
      requestTime,
      responseTime,
      sentAt,
      settle: null,
      detail: 'partial',
    });
  }

  // ------------------------------------------------------------------------------- pass/unsafe

  async function bypass(
    ctx: Omit<Ctx, 'req' | 'key' | 'cookieless'>,
    next: Next,
    detail: string,
  ): Promise<Reply> {
    ctx.ex.cache = { outcome: 'bypass', detail };
    const reply = await forward(ctx as Ctx, next);
    return untransformed(
      core,
      ctx as Ctx,
      next,
      decorate(core, ctx as Ctx, reply, { fwd: 'bypass', fwdStatus: reply.status, detail }),
    );
  }

  async function purgeUrlWith(url: URL, policy: RouteCachePolicy): Promise<number> {
    const forms = new Set([cacheUrl(url, policy), cacheUrl(url, DEFAULT_ROUTE_POLICY)]);
    let n = 0;
    for (const form of forms) n += await storeDeletePrefix(core, urlKeyPrefix(form));
    return n;
  }

  /** An unsafe method: forwarded, and a non-error answer invalidates what is stored (§4.4). */
  async function unsafe(ctx: Omit<Ctx, 'req' | 'key' | 'cookieless'>, next: Next): Promise<Reply> {
    const { ex } = ctx;
    ex.cache = { outcome: 'bypass', detail: 'method' };
    const reply = await next(ex);
    let invalidated = 0;
    for (const url of invalidatedUrls(ex.method, ex.target, reply.status, reply.headers)) {
      invalidated += await purgeUrlWith(url, ctx.policy);
    }
    ex.cache = { outcome: 'bypass', detail: 'method', invalidated };
    return decorate(core, ctx as Ctx, reply, {
      fwd: 'bypass',
      fwdStatus: reply.status,
      detail: invalidated > 0 ? 'invalidated' : 'method',
    });
  }

  // ------------------------------------------------------------------------------------- recv

  /**
   * The request headers to work with (see Ctx.headers): ours for Accept-Encoding on a GET or HEAD
   * without Range (a range of a coded body is another thing) when compression is on, unless the
   * client asked for `no-transform` (RFC 9110 §7.7): then it gets what the origin sends it.
   */
  function workingHeaders(ex: Exchange, policy: RouteCachePolicy): Pick<Ctx, 'headers' | 'compress'> {
    if (
      askCoding === null ||
      !policy.upstreamCompression ||
      (ex.method !== 'GET' && ex.method !== 'HEAD') ||
      ex.headers['range'] !== undefined ||
      hasNoTransform(ex.headers['cache-control'])
    ) {
      return { headers: ex.headers, compress: false };
    }
    // Object.assign, not a spread: adding a key to a spread copy costs ~2 µs on Node 20 (V8 11.3).
    const headers: IncomingHttpHeaders = Object.assign({}, ex.headers);
    headers['accept-encoding'] = askCoding;
    return { headers, compress: true };
  }

  const stage: Stage = (next) => async (ex) => {
    const t0 = performance.now();
    const routePolicy = opts.enabled ? pathPolicy(core, policyFor(ex), ex.target.pathname) : DISABLED_POLICY;
    const { headers, compress } = workingHeaders(ex, opts.enabled ? routePolicy : policyFor(ex));
    const base = { ex, headers, compress, policy: routePolicy, t0 };
    if (!routePolicy.enabled) return bypass(base, next, 'disabled');
    if (!SAFE_METHODS.has(ex.method)) return unsafe(base, next);
    if (ex.method !== 'GET' && ex.method !== 'HEAD') return bypass(base, next, 'method');
    const req = parseRequestDirectives(ex.headers['cache-control'], ex.headers['pragma']);
    let key = primaryKey(ex.target, headers, routePolicy, deps.credentialSecret);
    let cookieless = cookieFallbackKey(ex.target, headers, routePolicy, deps.credentialSecret);
    // Another route to this origin caches differently: entries are kept per policy (runtime.ts).
    const tag = ex.route?.cacheKeyTag;
    if (tag !== undefined) {
      key = `${key}\n${tag}`;
      if (cookieless !== null) cookieless = `${cookieless}\n${tag}`;
    }
    const ctx: Ctx = { ex, headers, compress, policy: routePolicy, t0, req, key, cookieless };
    return untransformed(core, ctx, next, await lookup(ctx, next));
  };

  const memoServing: MemoServing | null =
    memo === null
      ? null
      : {
          keyOf: memo.keyOf,
          recall: memo.recall,
          get size() {
            return memo.size;
          },
          get recalls() {
            return memo.recalls;
          },
          serve(ex, decision) {
            const entry = decision.entry.deref();
            // recall() checked it a moment ago, in the same tick.
            if (entry === undefined) throw new Error('hit memo: the recalled response is gone');
            const at = decision.serving as MemoServingCtx;
            const ctx: Ctx = {
              ex,
              headers: ex.headers,
              compress: at.compress,
              policy: at.policy,
              req: at.req,
              key: at.key,
              cookieless: null,
              t0: performance.now(),
            };
            return deliver(core, ctx, entry, PLAIN_HIT);
          },
        };

  return Object.assign(stage, {
    store,
    options: opts,
    memo: memoServing,
    purgeUrl(url: string | URL, policy: RouteCachePolicy = DEFAULT_ROUTE_POLICY): Promise<number> {
      return purgeUrlWith(typeof url === 'string' ? new URL(url) : url, policy);
    },
    purgePrefix(prefix: string): Promise<number> {
      return storeDeletePrefix(core, prefix);
    },
    *inspect(policyOf: (entry: StoredResponse) => RouteCachePolicy): Iterable<InspectedEntry> {
      const t = now();
      for (const entry of store.list?.() ?? []) {
        const url = entry.key.slice(0, entry.key.indexOf('\n'));
        const policy = pathPolicy(core, policyOf(entry), new URL(url).pathname);
        const ageMs = currentAgeMs(entry, t);
        const lifeMs = lifetimeOf(core, entry.status, entry, policy).ms;
        yield { entry, hits: derivedByEntry.get(entry)?.served ?? 0, ageMs, ttlMs: lifeMs - ageMs };
      }
    },
    purgeRoute(route: Pick<Route, 'origin' | 'basePath'>): Promise<number> {
      return storeDeletePrefix(core, `${route.origin}${route.basePath}/`);
    },
    async stats(): Promise<CacheStats> {
      const s = await store.stats();
      return {
        ...s,
        inFlight: coalescer.inFlight,
        refreshing: refreshing.size,
        refreshingAhead: core.refreshingAhead,
        decodedBytes: decodedCopies.bytes,
      };
    },
    async idle(): Promise<void> {
      while (refreshing.size > 0 || pending.size > 0) {
        await Promise.allSettled([...refreshing.values(), ...pending]);
      }
    },
  });
}
