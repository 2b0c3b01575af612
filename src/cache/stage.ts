/**
 * The cache stage: an RFC 9111 shared cache between guard/ and upstream/. This file is recv (what
 * the stage works with, the hit memo first, pass, unsafe methods) and the stage's outside (purges,
 * stats, inspect); each later state has its own file, all sharing one `CacheCore` (core.ts)
 * passed to each as `(core, ctx, ...)`:
 *
 *   recv     → pass (bypass: disabled, method) | unsafe (pass + invalidate) | lookup
 *   lookup   (lookup.ts) → hit | stale (serve; refresh in background for stale-while-revalidate)
 *              | revalidate | miss | partial | synth 504 (only-if-cached)
 *   revalidate (revalidate.ts) → 304: update stored headers, deliver | full response: admit
 *              | error: stale-if-error
 *   refresh  (refresh.ts) → stale-while-revalidate and refresh-ahead in the background
 *   miss     (miss.ts) → coalesce (leader fetches; followers wait, then read the store)
 *              | fetch (hit-for-miss)
 *   admit    (admit.ts) → store when storable and complete (body captured while it streams)
 *              | pass it on
 *   partial  (partial-stage.ts) → a Range the store holds no 200 for: from a stored part, or
 *              passed on and its 206 kept as a part; a stored part completed with a Range
 *   deliver  (deliver.ts) → a Reply from a stored response, with Age and Cache-Status (206/416
 *              for a Range on a stored 200); every reply leaves through decorate()
 *
 * Only the stage reads the clock (`deps.now`, default `Date.now`); the RFC modules take `now`.
 *
 * Two extensions keep hits warm and small (issue 11):
 *   refresh-ahead (refresh-ahead.ts, refresh.ts): a fresh hit on a hot entry near its expiry
 *     starts the same background refresh as stale-while-revalidate, bounded by
 *     `refreshAheadConcurrency`;
 *   upstream compression (compression.ts): GET/HEAD go upstream with `Accept-Encoding: br, gzip`
 *     (`ctx.headers`, also used for keys and Vary), coded bodies are stored as they came (after a
 *     decode check), and every reply leaves through decorate(), which decodes for clients that do
 *     not accept the coding.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Route } from '../config/runtime.js';
import type { Exchange, Next, Reply, Stage } from '../exchange.js';
import { parseRequestDirectives } from './cache-control.js';
import {
  type CacheCore,
  type CacheDeps,
  type Ctx,
  createCacheCore,
  forward,
  lifetimeOf,
  type MemoServingCtx,
  pathPolicy,
  storeDeletePrefix,
} from './core.js';
import { decorate, deliver, PLAIN_HIT, untransformed } from './deliver.js';
import { currentAgeMs } from './freshness.js';
import type { HitMemo, MemoDecision } from './hit-memo.js';
import { invalidatedUrls, SAFE_METHODS } from './invalidation.js';
import { cacheUrl, cookieFallbackKey, primaryKey, urlKeyPrefix } from './key.js';
import { lookup } from './lookup.js';
import { hasNoTransform } from './no-transform.js';
import {
  type CacheOptions,
  DEFAULT_ROUTE_POLICY,
  parseCacheOptions,
  parseRouteCachePolicy,
  type RouteCachePolicy,
  type RouteCachePolicyInput,
} from './options.js';
import type { CacheStore, StoredResponse, StoreStats } from './store.js';

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
  /** The hit memo's figures (hit-memo.ts); null when off or the store has no `peekOnly`. */
  readonly memo: Pick<HitMemo, 'size' | 'recalls'> | null;
}

export interface InspectedEntry {
  readonly entry: StoredResponse;
  /** Answers served from it in this process (hits, stale answers, coalesced followers). */
  readonly hits: number;
  readonly ageMs: number;
  /** Freshness left, ms (negative: stale by that much). */
  readonly ttlMs: number;
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

export function createCacheStage(options: unknown, deps: CacheDeps = {}): CacheStage {
  const opts = parseCacheOptions(options);
  const core = createCacheCore(opts, deps);
  const { policyFor, credentialSecret } = core;

  const { store, memo, refreshing, pending } = core;

  /** A hit the memo recalled: served in this tick, by the same deliver as any hit. */
  function serveRecalled(ex: Exchange, decision: MemoDecision): Reply {
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
  }

  /** recv: the hit memo first (no promise when it answers), then the lookup. */
  const stage: Stage = (next) => {
    const decide = lookupStage(next);
    if (memo === null) return decide;
    return (ex) => {
      const memoKey = memo.keyOf(ex);
      const recalled = memoKey === null ? null : memo.recall(memoKey, ex);
      return recalled === null ? decide(ex) : serveRecalled(ex, recalled);
    };
  };

  /** Not async: bypass(), unsafe() and lookup() each make the one promise of the exchange's stay here. */
  const lookupStage: Stage = (next) => (ex) => {
    const t0 = performance.now();
    const routePolicy = opts.enabled ? pathPolicy(core, policyFor(ex), ex.target.pathname) : DISABLED_POLICY;
    const { headers, compress } = workingHeaders(core, ex, opts.enabled ? routePolicy : policyFor(ex));
    const base = { ex, headers, compress, policy: routePolicy, t0 };
    if (!routePolicy.enabled) return bypass(core, base, next, 'disabled');
    if (!SAFE_METHODS.has(ex.method)) return unsafe(core, base, next);
    if (ex.method !== 'GET' && ex.method !== 'HEAD') return bypass(core, base, next, 'method');
    const req = parseRequestDirectives(ex.headers['cache-control'], ex.headers['pragma']);
    let key = primaryKey(ex.target, headers, routePolicy, credentialSecret);
    let cookieless = cookieFallbackKey(ex.target, headers, routePolicy, credentialSecret);
    // Another route to this origin caches differently: entries are kept per policy (runtime.ts).
    const tag = ex.route?.cacheKeyTag;
    if (tag !== undefined) {
      key = `${key}\n${tag}`;
      if (cookieless !== null) cookieless = `${cookieless}\n${tag}`;
    }
    const ctx: Ctx = { ex, headers, compress, policy: routePolicy, t0, req, key, cookieless };
    return lookup(core, ctx, next);
  };

  const memoStats =
    memo === null
      ? null
      : {
          get size() {
            return memo.size;
          },
          get recalls() {
            return memo.recalls;
          },
        };

  return Object.assign(stage, {
    store,
    options: opts,
    memo: memoStats,
    purgeUrl(url: string | URL, policy: RouteCachePolicy = DEFAULT_ROUTE_POLICY): Promise<number> {
      return purgeUrlWith(core, typeof url === 'string' ? new URL(url) : url, policy);
    },
    purgePrefix(prefix: string): Promise<number> {
      return storeDeletePrefix(core, prefix);
    },
    *inspect(policyOf: (entry: StoredResponse) => RouteCachePolicy): Iterable<InspectedEntry> {
      const t = core.now();
      for (const entry of store.list?.() ?? []) {
        const url = entry.key.slice(0, entry.key.indexOf('\n'));
        const policy = pathPolicy(core, policyOf(entry), new URL(url).pathname);
        const ageMs = currentAgeMs(entry, t);
        const lifeMs = lifetimeOf(core, entry.status, entry, policy).ms;
        yield { entry, hits: core.derivedByEntry.get(entry)?.served ?? 0, ageMs, ttlMs: lifeMs - ageMs };
      }
    },
    purgeRoute(route: Pick<Route, 'origin' | 'basePath'>): Promise<number> {
      return storeDeletePrefix(core, `${route.origin}${route.basePath}/`);
    },
    async stats(): Promise<CacheStats> {
      const s = await store.stats();
      return {
        ...s,
        inFlight: core.coalescer.inFlight,
        refreshing: refreshing.size,
        refreshingAhead: core.refreshingAhead,
        decodedBytes: core.decodedCopies.bytes,
      };
    },
    async idle(): Promise<void> {
      while (refreshing.size > 0 || pending.size > 0) {
        await Promise.allSettled([...refreshing.values(), ...pending]);
      }
    },
  });
}

// ------------------------------------------------------------------------------------- recv

/**
 * The request headers to work with (see Ctx.headers): ours for Accept-Encoding on a GET or HEAD
 * without Range (a range of a coded body is another thing) when compression is on, unless the
 * client asked for `no-transform` (RFC 9110 §7.7): then it gets what the origin sends it.
 */
function workingHeaders(
  core: CacheCore,
  ex: Exchange,
  policy: RouteCachePolicy,
): Pick<Ctx, 'headers' | 'compress'> {
  const { askCoding } = core;
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

// ------------------------------------------------------------------------------- pass/unsafe

async function bypass(
  core: CacheCore,
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

async function purgeUrlWith(core: CacheCore, url: URL, policy: RouteCachePolicy): Promise<number> {
  const forms = new Set([cacheUrl(url, policy), cacheUrl(url, DEFAULT_ROUTE_POLICY)]);
  let n = 0;
  for (const form of forms) n += await storeDeletePrefix(core, urlKeyPrefix(form));
  return n;
}

/** An unsafe method: forwarded, and a non-error answer invalidates what is stored (§4.4). */
async function unsafe(
  core: CacheCore,
  ctx: Omit<Ctx, 'req' | 'key' | 'cookieless'>,
  next: Next,
): Promise<Reply> {
  const { ex } = ctx;
  ex.cache = { outcome: 'bypass', detail: 'method' };
  const reply = await forward(ctx, next, ex.headers);
  let invalidated = 0;
  for (const url of invalidatedUrls(ex.method, ex.target, reply.status, reply.headers)) {
    invalidated += await purgeUrlWith(core, url, ctx.policy);
  }
  ex.cache = { outcome: 'bypass', detail: 'method', invalidated };
  return decorate(core, ctx as Ctx, reply, {
    fwd: 'bypass',
    fwdStatus: reply.status,
    detail: invalidated > 0 ? 'invalidated' : 'method',
  });
}
