/**
 * Builds the cache's store from `cache:` when `cache.redis.url` is set: the memory store as L1
 * (unless `redis.l1: false`) in front of Redis as L2 (tiered-store.ts). It also owns what the
 * rest of the instance needs from the shared tier: readiness (`required`), and errors counted and
 * logged at most once per interval (Redis down must not flood the log), always with the URL's
 * credentials redacted.
 */

import { createMemoryStore } from './memory-store.js';
import type { CacheOptions } from './options.js';
import {
  createRedisStore,
  redactRedisUrl,
  type SharedTierObserver,
  type SharedTierOp,
} from './redis-store.js';
import type { EvictionInfo } from './store.js';
import { createTieredStore, type TieredStore } from './tiered-store.js';

export interface SharedTierDeps {
  readonly now?: () => number;
  /** For the L1 memory store (evictions). */
  readonly onRemove?: (info: EvictionInfo) => void;
  /** Metrics. */
  readonly observer?: SharedTierObserver;
  /** A warning line; called at most once per `logIntervalMs`. */
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
  readonly logIntervalMs?: number;
}

export interface SharedTier {
  readonly store: TieredStore;
  /** The URL without credentials. */
  readonly url: string;
  /** For /readyz: not ready only when Redis is `required` and unreachable. */
  ready(): { ready: boolean; why: string };
  close(): Promise<void>;
}

/** The shared tier of `cache`, or null when `cache.redis.url` is not set. */
export function createSharedTier(cache: CacheOptions, deps: SharedTierDeps): SharedTier | null {
  const redis = cache.redis;
  if (redis.url === null) return null;
  const url = redactRedisUrl(redis.url);
  const password = safePassword(redis.url);
  const now = deps.now ?? Date.now;
  const interval = deps.logIntervalMs ?? 10_000;
  let lastLog = Number.NEGATIVE_INFINITY;
  const counts = new Map<SharedTierOp, number>();

  function onError(op: SharedTierOp, err: unknown): void {
    deps.observer?.onError?.(op, err);
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const t = now();
    if (t - lastLog < interval) return;
    lastLog = t;
    const errors = Object.fromEntries(counts);
    counts.clear();
    let message = err instanceof Error ? err.message : String(err);
    if (password !== '') message = message.split(password).join('***');
    deps.warn(
      { redis: url, errors, error: message },
      'cache: Redis tier failing; serving from memory and origins',
    );
  }

  const l2 = createRedisStore({
    url: redis.url,
    cluster: redis.cluster,
    keyPrefix: redis.keyPrefix,
    maxEntryBytes: Math.min(redis.maxEntryBytes, cache.maxEntryBytes),
    commandTimeoutMs: redis.commandTimeoutMs,
    connectTimeoutMs: redis.connectTimeoutMs,
    lockTtlMs: redis.lockTtlMs,
    now,
    observer: { ...deps.observer, onError },
  });
  const l1 = redis.l1
    ? createMemoryStore({
        maxSizeBytes: Math.max(1, cache.maxSizeBytes),
        maxEntryBytes: cache.maxEntryBytes,
        now,
        ...(deps.onRemove ? { onRemove: deps.onRemove } : {}),
      })
    : null;
  const store = createTieredStore({ l1, l2 });
  return {
    store,
    url,
    ready() {
      if (!redis.required || l2.connected) return { ready: true, why: 'listening' };
      return { ready: false, why: 'redis unavailable' };
    },
    close: () => store.close(),
  };
}

function safePassword(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}
