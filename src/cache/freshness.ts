/**
 * Freshness and age (RFC 9111 §4.2), and the decision whether a stored response can be reused
 * for a request (§4.2, §5.2.1, §5.2.2, RFC 5861). Pure: `now` is an argument; times are epoch ms.
 */
import { joinField, type RequestDirectives, type ResponseDirectives, splitList } from './cache-control.js';
import { firstValue, type HeaderSource } from './headers.js';
import { parseHttpDate } from './http-date.js';

/** Status codes that are heuristically cacheable (RFC 9110 §15.1). */
export const HEURISTICALLY_CACHEABLE: ReadonlySet<number> = new Set([
  200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501,
]);

/**
 * `Age` in seconds (§5.1): the first member of the field value; an invalid value (anything but a
 * non-negative integer) is ignored, i.e. 0.
 */
export function parseAgeSeconds(value: HeaderSource[string]): number {
  const first = splitList(joinField(value))[0];
  if (first === undefined || !/^\d+$/.test(first)) return 0;
  return Number(first);
}

/** When the stored response was requested and received, as the cache recorded it. */
export interface ResponseTimes {
  readonly headers: HeaderSource;
  /** Clock when the request that produced the response was sent. */
  readonly requestTime: number;
  /** Clock when the response headers were received. */
  readonly responseTime: number;
}

/** The `Date` of the response, or the response time when Date is absent or invalid (§4.2.3). */
export function dateValue(r: ResponseTimes): number {
  return parseHttpDate(firstValue(r.headers, 'date')) ?? r.responseTime;
}

/** current_age of §4.2.3, in ms. */
export function currentAgeMs(r: ResponseTimes, now: number): number {
  const ageValue = parseAgeSeconds(r.headers['age']) * 1000;
  const apparentAge = Math.max(0, r.responseTime - dateValue(r));
  const responseDelay = Math.max(0, r.responseTime - r.requestTime);
  const correctedAgeValue = ageValue + responseDelay;
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue);
  const residentTime = Math.max(0, now - r.responseTime);
  return correctedInitialAge + residentTime;
}

export interface LifetimeOptions {
  /** Fraction of (Date − Last-Modified) used as heuristic lifetime (§4.2.2). */
  readonly heuristicFraction: number;
  readonly maxHeuristicTtlMs: number;
  /** Route override of the lifetime the origin gives, or null. */
  readonly ttlOverrideMs: number | null;
}

export type LifetimeSource = 'ttl-override' | 's-maxage' | 'max-age' | 'expires' | 'heuristic' | 'none';

export interface Lifetime {
  readonly ms: number;
  readonly source: LifetimeSource;
}

/** Freshness lifetime for a shared cache (§4.2.1), with heuristic freshness (§4.2.2). */
export function freshnessLifetime(
  status: number,
  r: ResponseTimes,
  cc: ResponseDirectives,
  opts: LifetimeOptions,
): Lifetime {
  // A route's own lifetime replaces the origin's, for statuses that may be cached without one.
  if (opts.ttlOverrideMs !== null && HEURISTICALLY_CACHEABLE.has(status)) {
    return { ms: opts.ttlOverrideMs, source: 'ttl-override' };
  }
  if (cc.sMaxAge !== undefined) return { ms: cc.sMaxAge * 1000, source: 's-maxage' };
  if (cc.maxAge !== undefined) return { ms: cc.maxAge * 1000, source: 'max-age' };
  const expires = r.headers['expires'];
  if (expires !== undefined) {
    // An invalid Expires (including "0") is a time in the past (§5.3).
    const at = parseHttpDate(firstValue(r.headers, 'expires'));
    if (at === undefined) return { ms: 0, source: 'expires' };
    return { ms: Math.max(0, at - dateValue(r)), source: 'expires' };
  }
  if (HEURISTICALLY_CACHEABLE.has(status) || cc.public) {
    const lastModified = parseHttpDate(firstValue(r.headers, 'last-modified'));
    if (lastModified !== undefined) {
      const span = Math.max(0, dateValue(r) - lastModified);
      return {
        ms: Math.min(Math.floor(span * opts.heuristicFraction), opts.maxHeuristicTtlMs),
        source: 'heuristic',
      };
    }
  }
  return { ms: 0, source: 'none' };
}

/** Whether the response carries explicit freshness (§3 "has explicit expiration"). */
export function hasExplicitFreshness(cc: ResponseDirectives, headers: HeaderSource): boolean {
  return cc.sMaxAge !== undefined || cc.maxAge !== undefined || headers['expires'] !== undefined;
}

export type RevalidateWhy =
  | 'stale'
  | 'request-no-cache'
  | 'response-no-cache'
  | 'force-revalidate'
  | 'request-max-age'
  | 'request-min-fresh';

export type ReuseDecision =
  | { readonly kind: 'fresh' }
  /** Stale, and the request's max-stale allows it (§5.2.1.2). */
  | { readonly kind: 'stale'; readonly why: 'max-stale' }
  /** Stale within the response's stale-while-revalidate window (RFC 5861 §3). */
  | { readonly kind: 'stale-while-revalidate' }
  | { readonly kind: 'revalidate'; readonly why: RevalidateWhy };

export interface ReuseInput {
  readonly ageMs: number;
  readonly lifetimeMs: number;
  readonly req: RequestDirectives;
  readonly res: ResponseDirectives;
  /** The route asks to validate every reuse. */
  readonly forceRevalidate: boolean;
}

/**
 * Whether a stored response satisfies a request without contacting the origin.
 *
 * Shared-cache reading: must-revalidate and proxy-revalidate forbid any stale reuse. s-maxage
 * implies proxy-revalidate (§5.2.2.10), which voids the client's max-stale; an explicit
 * `stale-while-revalidate` in the same response is read as the origin's own permission and kept.
 */
export function decideReuse(i: ReuseInput): ReuseDecision {
  if (i.res.noCache === true) return { kind: 'revalidate', why: 'response-no-cache' };
  if (i.req.noCache) return { kind: 'revalidate', why: 'request-no-cache' };
  if (i.forceRevalidate) return { kind: 'revalidate', why: 'force-revalidate' };
  if (i.req.maxAge !== undefined && i.ageMs > i.req.maxAge * 1000) {
    return { kind: 'revalidate', why: 'request-max-age' };
  }
  const remainingMs = i.lifetimeMs - i.ageMs;
  if (remainingMs > 0) {
    if (i.req.minFresh !== undefined && remainingMs < i.req.minFresh * 1000) {
      return { kind: 'revalidate', why: 'request-min-fresh' };
    }
    return { kind: 'fresh' };
  }
  if (i.res.mustRevalidate || i.res.proxyRevalidate) return { kind: 'revalidate', why: 'stale' };
  const stalenessMs = -remainingMs;
  if (i.req.maxStale !== undefined && i.res.sMaxAge === undefined && stalenessMs <= i.req.maxStale * 1000) {
    return { kind: 'stale', why: 'max-stale' };
  }
  if (i.res.staleWhileRevalidate !== undefined && stalenessMs <= i.res.staleWhileRevalidate * 1000) {
    return { kind: 'stale-while-revalidate' };
  }
  return { kind: 'revalidate', why: 'stale' };
}

export interface StaleOnErrorInput {
  readonly ageMs: number;
  readonly lifetimeMs: number;
  readonly req: RequestDirectives;
  readonly res: ResponseDirectives;
  /** The origin could not be reached at all (no response), as opposed to answering 5xx. */
  readonly unreachable: boolean;
  /** Default stale-if-error window when neither side gives one. */
  readonly staleIfErrorMs: number;
  /** Serve any retained stale response when the origin is unreachable (§4.2.4 "disconnected"). */
  readonly serveStaleIfUnreachable: boolean;
}

export type StaleOnError = 'stale-if-error' | 'unreachable' | null;

/**
 * Whether a stale stored response may answer when the origin fails (RFC 5861 §4, RFC 9111
 * §4.2.4). Never with no-cache, must-revalidate or proxy-revalidate (§4.2.4); with s-maxage only
 * when the response or request gives an explicit stale-if-error.
 */
export function staleOnError(i: StaleOnErrorInput): StaleOnError {
  if (i.res.noCache === true || i.res.mustRevalidate || i.res.proxyRevalidate) return null;
  const stalenessMs = Math.max(0, i.ageMs - i.lifetimeMs);
  const explicit = Math.max((i.res.staleIfError ?? -1) * 1000, (i.req.staleIfError ?? -1) * 1000);
  if (explicit >= 0 && stalenessMs <= explicit) return 'stale-if-error';
  if (i.res.sMaxAge !== undefined) return null;
  if (i.staleIfErrorMs > 0 && stalenessMs <= i.staleIfErrorMs) return 'stale-if-error';
  if (i.unreachable && i.serveStaleIfUnreachable) return 'unreachable';
  return null;
}

/**
 * How long past its freshness a stored response is kept: long enough to revalidate it, serve it
 * stale-while-revalidate, or stale-if-error.
 */
export function retentionMs(lifetimeMs: number, res: ResponseDirectives, staleRetentionMs: number): number {
  return (
    lifetimeMs +
    Math.max(staleRetentionMs, (res.staleWhileRevalidate ?? 0) * 1000, (res.staleIfError ?? 0) * 1000)
  );
}
