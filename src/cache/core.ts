/**
 * What every state of the cache stage shares (the stage's files take it as their first argument,
 * as undici passes its options to each cache handler): the `CacheCore` (store, options, clock,
 * observer, coalescer, background work, what hits derive per entry), the per-exchange `Ctx`, and
 * the small steps every state uses: store access that never throws, freshness lifetimes as this
 * cache judges them, variant selection, sending a derived exchange upstream.
 *
 * Only this file and the states read the clock (`core.now`); the RFC modules take `now`.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Instance } from '../channels.js';
import type { CacheOutcome, Exchange, Next, Reply } from '../exchange.js';
import type { CacheObserver } from '../observers.js';
import { parseResponseDirectives, type RequestDirectives, type ResponseDirectives } from './cache-control.js';
import type { CacheStatusEntry, ForwardReason } from './cache-status.js';
import { publishCache } from './channels.js';
import { type Coalescer, createCoalescer, type FlightResult } from './coalesce.js';
import { type Coding, DecodedCopies, upstreamAcceptEncoding } from './compression.js';
import { freshnessLifetime, type Lifetime } from './freshness.js';
import type { HeaderSource } from './headers.js';
import { createHitMemo, type HitMemo } from './hit-memo.js';
import { credentialHash, varyMatches } from './key.js';
import { createMemoryStore } from './memory-store.js';
import { type CacheOptions, DEFAULT_ROUTE_POLICY, type RouteCachePolicy } from './options.js';
import { compilePathPolicies, type PathPolicy, selectPathPolicy } from './path-policy.js';
import {
  type CompiledRefreshAhead,
  compileRefreshAhead,
  createHitTracker,
  type HitTracker,
} from './refresh-ahead.js';
import type { CacheStore, StoredResponse } from './store.js';
import { policyView } from './targeted-cache-control.js';
import { CLIENT_VALIDATORS } from './validation.js';

export interface CacheDeps {
  /** Where responses live. Default: a memory store bounded by the options' sizes. */
  readonly store?: CacheStore;
  /** The clock, epoch ms. Default `Date.now`. */
  readonly now?: () => number;
  /** The policy of the exchange's route. Default: `policyByRoute({})` (defaults for every route). */
  readonly policyFor?: (ex: Exchange) => RouteCachePolicy;
  /** Default: every event published on its `sidecache:cache:*` channel (cache/channels.ts), for `instance`. */
  readonly observer?: CacheObserver;
  readonly instance?: Instance;
  /**
   * Secret for hashing credentials into keys (HMAC-SHA256). Without it keys use plain SHA-256;
   * give one when the store is shared (a low-entropy credential such as Basic auth could otherwise
   * be guessed from a key). Every instance sharing a store needs the same secret.
   */
  readonly credentialSecret?: string;
}

/** State shared by every exchange through one cache stage (nothing of it is in module scope). */
export interface CacheCore {
  readonly opts: CacheOptions;
  readonly now: () => number;
  readonly observer: CacheObserver;
  readonly store: CacheStore;
  readonly policyFor: (ex: Exchange) => RouteCachePolicy;
  readonly credentialSecret: string | undefined;
  readonly coalescer: Coalescer;
  /** Background refreshes by variant, so each stale variant is refreshed once at a time. */
  readonly refreshing: Map<string, Promise<void>>;
  /** Refresh-ahead: hits per stored response. */
  readonly hitTracker: HitTracker;
  /** Refresh-ahead revalidations in flight. */
  refreshingAhead: number;
  /** Our Accept-Encoding for origins, when upstream compression is on. */
  readonly askCoding: string | null;
  /** Stores in progress (a body completed, `put` not yet resolved). */
  readonly pending: Set<Promise<unknown>>;
  /** The store's synchronous `peekOnly`, when it has one (the hit memo needs it). */
  readonly peekOnly: ((key: string) => StoredResponse | undefined) | undefined;
  readonly memo: HitMemo | null;
  /** What hits derive per stored response (deliver.ts), held weakly by the entry. */
  readonly derivedByEntry: WeakMap<StoredResponse, Derived>;
  /** Decoded copies of hot coded entries: a quarter of the store's bytes, at most 64 MiB. */
  readonly decodedCopies: DecodedCopies;
  /** Replies decorate() could not decode for their client: coded and marked no-transform. */
  readonly mustNotDecode: WeakSet<Reply>;
  /** Primary keys this process stored a partial entry under (bounded; only saves store lookups). */
  readonly partKeys: Set<string>;
  /** Compiled `paths` overrides, per route policy object. */
  readonly pathPolicies: WeakMap<RouteCachePolicy, readonly PathPolicy[]>;
  /** Compiled `refreshAhead` of each policy object (null: off). */
  readonly refreshAheadPlans: WeakMap<RouteCachePolicy, CompiledRefreshAhead | null>;
}

/** Per-exchange state of the stage (Varnish's `req` side). */
export interface Ctx {
  readonly ex: Exchange;
  /**
   * The request headers the cache works with: the client's, with our Accept-Encoding when upstream
   * compression applies. Sent upstream, and used for keys and Vary (so every client shares the
   * coded variant); the client's own headers (`ex.headers`) decide what it is sent.
   */
  readonly headers: IncomingHttpHeaders;
  /** Whether `headers` carries our Accept-Encoding (decode for this client where needed). */
  readonly compress: boolean;
  readonly policy: RouteCachePolicy;
  readonly req: RequestDirectives;
  readonly key: string;
  /**
   * When the request's whole Cookie header is part of `key` (key.ts cookieFallbackKey): the key of
   * the same request without cookies, whose entries (fetched without cookies) may answer it too.
   */
  readonly cookieless: string | null;
  /** `performance.now()` when the stage saw the exchange. */
  readonly t0: number;
}

/** What a remembered hit needs of its Ctx to be served again (the rest is the new exchange's). */
export type MemoServingCtx = Pick<Ctx, 'compress' | 'policy' | 'req' | 'key'>;

/** How a response was obtained from the origin, for admit(). */
export interface Fetched {
  readonly reply: Reply;
  readonly fwd: ForwardReason;
  readonly requestTime: number;
  readonly responseTime: number;
  /** `performance.now()` when the origin request was sent. */
  readonly sentAt: number;
  readonly settle: ((r: FlightResult) => void) | null;
  readonly detail?: string;
}

/** How deliver() answers from a stored response. */
export interface DeliverHow {
  readonly outcome: CacheOutcome;
  readonly status: CacheStatusEntry;
  readonly detail?: string;
}

/**
 * What a hit needs from a stored response, worked out once per entry (entries are immutable:
 * a 304 refresh stores a new object) and per route policy: directives, lifetime, the age it
 * had when stored, the headers to send and the body as a Buffer view (no copy). Held weakly by
 * the entry (a bounded strong cache would keep entries the store evicted, bodies and all, alive
 * past `maxSizeBytes`), and small: the stored headers are sent as they are when their
 * Content-Length is right (a frozen copy per entry cost ~0.5 kB, each with its own hidden class).
 */
export interface Derived {
  readonly policy: RouteCachePolicy;
  readonly res: ResponseDirectives;
  readonly lifeMs: number;
  /** current_age at the response time (§4.2.3 corrected_initial_age), ms. */
  readonly initialAgeMs: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
  /** The stored content coding this stage decodes; null: every client gets the bytes as they are. */
  readonly coding: Coding | null;
  /** Fresh hits the whole pipeline served from it (the hit memo takes an entry's second). */
  pipelineHits: number;
  /** Every answer served from it (GET /cache shows it). */
  served: number;
  /**
   * What a plain hit sends before Age and Cache-Status, made on first use: as stored (identity,
   * or coded for a client that takes the coding: Vary: Accept-Encoding ensured), and the headers
   * of the decoded form (with its length, which never changes). With the last client
   * Accept-Encoding value seen and whether it takes the coding (clients of one entry mostly send
   * the same value), a hit neither copies headers twice nor parses Accept-Encoding each time.
   */
  asStored: PlainHit | null;
  decodedHeaders: OutgoingHttpHeaders | null;
  lastAcceptEncoding: string | undefined;
  lastTakesCoding: boolean | null;
}

/** The headers and body a plain hit sends before Age and Cache-Status (deliver.ts plainHit). */
export interface PlainHit {
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
}

export function createCacheCore(opts: CacheOptions, deps: CacheDeps): CacheCore {
  const now = deps.now ?? Date.now;
  const observer = deps.observer ?? publishCache(deps.instance);
  const store: CacheStore =
    deps.store ??
    createMemoryStore({
      maxSizeBytes: Math.max(1, opts.maxSizeBytes),
      maxEntryBytes: opts.maxEntryBytes,
      now,
      ...(observer.onRemove ? { onRemove: observer.onRemove } : {}),
    });
  const peekOnly = store.peekOnly?.bind(store);
  const memo: HitMemo | null =
    opts.enabled && opts.hitMemoEntries > 0 && peekOnly !== undefined
      ? createHitMemo({
          maxEntries: opts.hitMemoEntries,
          peek: peekOnly,
          credentialHash: (headers, policy) => credentialHash(headers, policy, deps.credentialSecret),
          now,
        })
      : null;
  return {
    opts,
    now,
    observer,
    store,
    policyFor: deps.policyFor ?? (() => DEFAULT_ROUTE_POLICY),
    credentialSecret: deps.credentialSecret,
    coalescer: createCoalescer(now),
    refreshing: new Map(),
    hitTracker: createHitTracker(),
    refreshingAhead: 0,
    askCoding: opts.upstreamCompression ? upstreamAcceptEncoding(opts.upstreamCodings) : null,
    pending: new Set(),
    peekOnly,
    memo,
    derivedByEntry: new WeakMap(),
    decodedCopies: new DecodedCopies(Math.min(64 * 1024 * 1024, Math.floor(opts.maxSizeBytes / 4))),
    mustNotDecode: new WeakSet(),
    partKeys: new Set(),
    pathPolicies: new WeakMap(),
    refreshAheadPlans: new WeakMap(),
  };
}

/** The policy of a route for one path (its `paths` overrides compiled once per policy object). */
export function pathPolicy(core: CacheCore, route: RouteCachePolicy, pathname: string): RouteCachePolicy {
  if (route.paths.length === 0) return route;
  let compiled = core.pathPolicies.get(route);
  if (compiled === undefined) {
    compiled = compilePathPolicies(route);
    core.pathPolicies.set(route, compiled);
  }
  return selectPathPolicy(route, compiled, pathname);
}

/** A policy's compiled `refreshAhead` (null: off), compiled once per policy object. */
export function refreshAheadPlan(core: CacheCore, policy: RouteCachePolicy): CompiledRefreshAhead | null {
  if (policy.refreshAhead === null) return null;
  let plan = core.refreshAheadPlans.get(policy);
  if (plan === undefined) {
    plan = compileRefreshAhead(policy.refreshAhead);
    core.refreshAheadPlans.set(policy, plan);
  }
  return plan;
}

/** One stored variant's identity (background refreshes and refresh-ahead count by it). */
export const variantId = (e: StoredResponse): string => `${e.key}\u0002${e.variantKey}`;

/** Keeps `p` among the pending stores until it settles (idle() waits for them). */
export function track<T>(core: CacheCore, p: Promise<T>): Promise<T> {
  core.pending.add(p);
  p.finally(() => core.pending.delete(p)).catch(() => {});
  return p;
}

// ---------------------------------------------------------------- store access (never throws)

export async function storeGet(core: CacheCore, key: string): Promise<readonly StoredResponse[]> {
  try {
    return await core.store.get(key);
  } catch (err) {
    return storeGetFailed(core, err);
  }
}

/** A get that failed: reported, and read as nothing stored. */
export function storeGetFailed(core: CacheCore, err: unknown): readonly StoredResponse[] {
  core.observer.onStoreError?.(err, 'get');
  return [];
}

export async function storePut(core: CacheCore, entry: StoredResponse): Promise<boolean> {
  try {
    return await core.store.put(entry);
  } catch (err) {
    core.observer.onStoreError?.(err, 'put');
    return false;
  }
}

export async function storeDeletePrefix(core: CacheCore, prefix: string): Promise<number> {
  try {
    return await core.store.deletePrefix(prefix);
  } catch (err) {
    core.observer.onStoreError?.(err, 'delete');
    return 0;
  }
}

// ------------------------------------------------------------------------- pure-ish helpers

/** Response headers as this cache judges them: a targeted field (RFC 9213) over Cache-Control. */
export function policyHeaders(core: CacheCore, headers: HeaderSource): HeaderSource {
  const targets = core.opts.targetedFields;
  return targets.length === 0 ? headers : policyView(headers, targets).headers;
}

export function directivesOf(core: CacheCore, headers: HeaderSource): ResponseDirectives {
  return parseResponseDirectives(policyHeaders(core, headers)['cache-control']);
}

export function lifetimeOf(
  core: CacheCore,
  status: number,
  times: StoredResponse | { headers: HeaderSource; requestTime: number; responseTime: number },
  policy: RouteCachePolicy,
): Lifetime {
  const headers = policyHeaders(core, times.headers);
  const res = parseResponseDirectives(headers['cache-control']);
  return lifetimeFrom(core, status, { ...times, headers }, res, policy);
}

/** The freshness lifetime from headers as this cache judges them and their parsed directives. */
export function lifetimeFrom(
  core: CacheCore,
  status: number,
  times: { headers: HeaderSource; requestTime: number; responseTime: number },
  res: ResponseDirectives,
  policy: RouteCachePolicy,
): Lifetime {
  return freshnessLifetime(status, times, res, {
    heuristicFraction: core.opts.heuristicFraction,
    maxHeuristicTtlMs: core.opts.maxHeuristicTtlMs,
    ttlOverrideMs: policy.ttlMs,
  });
}

/** The newest stored variant that matches the request's Vary fields. */
export function select(
  variants: readonly StoredResponse[],
  headers: IncomingHttpHeaders,
): StoredResponse | undefined {
  let best: StoredResponse | undefined;
  for (const v of variants) {
    if (!varyMatches(v, headers)) continue;
    if (best === undefined || v.responseTime > best.responseTime) best = v;
  }
  return best;
}

/** The client's request headers for a fetch that fills the cache: no validators, no Range. */
export function withoutClientValidators(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = Object.assign({}, headers);
  for (const h of CLIENT_VALIDATORS) delete out[h];
  delete out['range'];
  delete out['if-range'];
  return out;
}

/** A GET with Range: answered from a stored 200 when one can be reused, else passed on as it is. */
export function isRange(ex: Exchange): boolean {
  return ex.method === 'GET' && ex.headers['range'] !== undefined;
}

/**
 * Sends the exchange to the origin with `headers` (our Accept-Encoding, validators removed or
 * added): the cache writes them as `ex.originRequest`, which upstream/ sends instead of the
 * client's request; with the client's own headers, the client's request goes as it came.
 */
export function forward(
  ctx: Pick<Ctx, 'ex' | 'headers'>,
  next: Next,
  headers: IncomingHttpHeaders = ctx.headers,
): Reply | Promise<Reply> {
  const { ex } = ctx;
  ex.originRequest =
    headers === ex.headers
      ? undefined
      : { method: ex.method, path: ex.target.pathname + ex.target.search, headers };
  return next(ex);
}

/** Records the cache phase (ms since the stage started on this exchange) and returns it. */
export function markCacheTime(ctx: Ctx): number {
  const ms = performance.now() - ctx.t0;
  ctx.ex.timings.phases.cache = ms;
  return ms;
}
