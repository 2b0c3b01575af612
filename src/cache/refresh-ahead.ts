/**
 * Refresh-ahead: a hot entry (requested at least `minHits` times within its freshness lifetime)
 * is revalidated in the background shortly before it expires, so hits stay fresh and no request
 * waits for the origin. The refresh is triggered by a fresh hit inside the refresh window, like
 * Caffeine's refreshAfterWrite: the request that triggers it carries the entry's credential (the
 * key includes its hash), and nothing is kept once the refresh ends. An entry whose credential
 * goes unused is therefore never refreshed; it simply expires.
 *
 * This module holds the pure rules (path patterns, the window) and the per-entry hit tracker the
 * stage keeps in its closure. The refresh itself is the stage's background refresh (the same code
 * as stale-while-revalidate: one in flight per variant, 304 merge, 200 replace).
 */
import { countBoundedLru } from './count-lru.js';
import type { RefreshAheadOptions } from './options.js';

export type { RefreshAheadResult } from '../observers.js';

export interface CompiledRefreshAhead {
  readonly options: RefreshAheadOptions;
  /** Whether `pathname` (an origin path) is hot. */
  matches(pathname: string): boolean;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** `/repos/*` → a RegExp where `*` matches any characters (slashes included), anchored. */
export function pathPattern(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map(escapeRegExp).join('.*')}$`);
}

export function compileRefreshAhead(options: RefreshAheadOptions): CompiledRefreshAhead {
  if (options.paths === true) return { options, matches: () => true };
  const patterns = options.paths.map(pathPattern);
  return { options, matches: (pathname) => patterns.some((p) => p.test(pathname)) };
}

/**
 * Whether an entry of `lifetimeMs` at `ageMs` is in its refresh window: still fresh, with at most
 * `beforeExpiryMs` (or `fraction` of the lifetime) left. Pure.
 */
export function inRefreshWindow(ageMs: number, lifetimeMs: number, options: RefreshAheadOptions): boolean {
  const leftMs = lifetimeMs - ageMs;
  if (leftMs <= 0 || lifetimeMs <= 0) return false;
  const windowMs = options.beforeExpiryMs ?? options.fraction * lifetimeMs;
  return leftMs <= windowMs;
}

interface Tracked {
  /** `responseTime` of the stored response counted (a refresh stores a new one: count restarts). */
  responseTime: number;
  hits: number;
  /**
   * Set on a response stored by refresh-ahead: when the response it replaced would have expired
   * (epoch ms). Hits from then on were served fresh thanks to refresh-ahead.
   */
  coversFrom?: number;
}

export interface HitTracker {
  /** Counts a fresh hit on the stored response `id` / `responseTime`; returns its hits so far. */
  hit(id: string, responseTime: number): number;
  /** Notes that refresh-ahead stored response `id` / `responseTime`, replacing one expiring at `expiredAt`. */
  refreshed(id: string, responseTime: number, expiredAt: number): void;
  /** Whether a hit at `now` on `id` / `responseTime` is fresh only thanks to refresh-ahead. */
  thanksToRefresh(id: string, responseTime: number, now: number): boolean;
}

/** A bounded tracker (least recently hit entries are forgotten first). */
export function createHitTracker(maxEntries = 10_000): HitTracker {
  const tracked = countBoundedLru<string, Tracked>(maxEntries);
  return {
    hit(id, responseTime) {
      const t = tracked.get(id);
      if (t === undefined || t.responseTime !== responseTime) {
        tracked.set(id, { responseTime, hits: 1 });
        return 1;
      }
      t.hits++;
      return t.hits;
    },
    refreshed(id, responseTime, expiredAt) {
      // The new response starts counting hits afresh: it must earn its next refresh.
      tracked.set(id, { responseTime, hits: 0, coversFrom: expiredAt });
    },
    thanksToRefresh(id, responseTime, now) {
      const t = tracked.peek(id);
      return (
        t !== undefined &&
        t.responseTime === responseTime &&
        t.coversFrom !== undefined &&
        now >= t.coversFrom
      );
    },
  };
}
