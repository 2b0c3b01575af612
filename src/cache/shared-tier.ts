/**
 * Builds the cache's store from `cache:` when `cache.redis.url` or `cache.memcached.servers` is
 * set: the memory store as L1 (unless `l1: false`) in front of Redis or memcached as L2
 * (tiered-store.ts; with memcached, L1 copies live at most `memcached.l1TtlMs`). It also owns what the
 * rest of the instance needs from the shared tier: readiness (`required`), and errors counted and
 * logged at most once per interval (Redis down must not flood the log), always with the URL's
 * credentials redacted.
 *
 * Each client is loaded only for its own kind: a memcached tier does not load ioredis and its
 * dependencies (measured at idle: 1.5 MB less heap, and idle RSS back to that of no tier), nor a
 * Redis tier memjs.
 */

import type { Instance } from '../channels.js';
import type { SharedTierObserver, SharedTierOp } from '../observers.js';
import { publishCache, publishSharedTier } from './channels.js';
import { createMemoryStore } from './memory-store.js';
import type { CacheOptions } from './options.js';
import type { EvictionInfo } from './store.js';
import { createTieredStore, pendingL2BytesFor, type TieredStore } from './tiered-store.js';

type MemcachedModule = typeof import('./memcached-store.js');
type RedisModule = typeof import('./redis-store.js');

export interface SharedTierDeps {
  readonly now?: () => number;
  /** For the L1 memory store (evictions); default: published on `sidecache:cache:remove`. */
  readonly onRemove?: (info: EvictionInfo) => void;
  /** Default: every event published on its `sidecache:shared-tier:*` channel, for `instance`. */
  readonly observer?: SharedTierObserver;
  readonly instance?: Instance;
  /** A warning line; called at most once per `logIntervalMs`. */
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
  readonly logIntervalMs?: number;
}

export interface SharedTier {
  readonly store: TieredStore;
  /** The URL without credentials (Redis), or the memcached servers joined by commas. */
  readonly url: string;
  readonly kind: 'redis' | 'memcached';
  /** For /readyz: not ready only when Redis is `required` and unreachable. */
  ready(): { ready: boolean; why: string };
  close(): Promise<void>;
}

/** The shared tier of `cache`, or null when neither Redis nor memcached is configured. */
export async function createSharedTier(
  cache: CacheOptions,
  deps: SharedTierDeps,
): Promise<SharedTier | null> {
  const redis = cache.redis;
  const memcached = cache.memcached;
  if (redis.url === null && memcached.servers.length === 0) return null;
  const kind = redis.url !== null ? 'redis' : 'memcached';
  // One client module, loaded for its kind only (the file comment); `redis` null means memcached.
  const modules: { redis: RedisModule; memcached: null } | { redis: null; memcached: MemcachedModule } =
    kind === 'redis'
      ? { redis: await import('./redis-store.js'), memcached: null }
      : { redis: null, memcached: await import('./memcached-store.js') };
  const url =
    modules.redis !== null ? modules.redis.redactRedisUrl(redis.url as string) : memcached.servers.join(',');
  const password = redis.url !== null ? safePassword(redis.url) : '';
  const now = deps.now ?? Date.now;
  const interval = deps.logIntervalMs ?? 10_000;
  let lastLog = Number.NEGATIVE_INFINITY;
  const counts = new Map<SharedTierOp, number>();
  const observer = deps.observer ?? publishSharedTier(deps.instance);
  const onRemove = deps.onRemove ?? publishCache(deps.instance).onRemove;
  const onWriteDropped = (bytes: number): void => observer.onWriteDropped?.(bytes);

  function onError(op: SharedTierOp, err: unknown): void {
    observer.onError?.(op, err);
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const t = now();
    if (t - lastLog < interval) return;
    lastLog = t;
    const errors = Object.fromEntries(counts);
    counts.clear();
    let message = err instanceof Error ? err.message : String(err);
    if (password !== '') message = message.split(password).join('***');
    deps.warn(
      { [kind]: url, errors, error: message },
      `cache: ${kind === 'redis' ? 'Redis' : 'memcached'} tier failing; serving from memory and origins`,
    );
  }

  // What the tier holds in this process comes out of the cache's budget, so that L1 and it together
  // stay in `cache.maxSizeBytes`: the writes in flight (encoded copies waiting for L2) and, for
  // memcached, which cannot list keys, the keys this process wrote (for prefix purges).
  const pendingBytes = pendingL2BytesFor(cache.maxSizeBytes);
  const trackedBytes = modules.memcached?.trackedBytesFor(cache.maxSizeBytes) ?? 0;
  const l1Bytes = Math.max(1, cache.maxSizeBytes - pendingBytes - trackedBytes);
  const l1 = (kind === 'redis' ? redis.l1 : memcached.l1)
    ? createMemoryStore({
        maxSizeBytes: l1Bytes,
        maxEntryBytes: Math.min(cache.maxEntryBytes, l1Bytes),
        now,
        onRemove,
      })
    : null;

  if (modules.redis === null) {
    const l2 = modules.memcached.createMemcachedStore({
      servers: memcached.servers,
      keyPrefix: memcached.keyPrefix,
      maxEntryBytes: Math.min(memcached.maxEntryBytes, cache.maxEntryBytes),
      commandTimeoutMs: memcached.commandTimeoutMs,
      connectTimeoutMs: memcached.connectTimeoutMs,
      lockTtlMs: memcached.lockTtlMs,
      maxTrackedBytes: trackedBytes,
      now,
      observer: { ...observer, onError },
    });
    const store = createTieredStore({
      l1,
      l2,
      l1TtlMs: memcached.l1TtlMs,
      now,
      maxPendingL2Bytes: pendingBytes,
      onWriteDropped,
    });
    return {
      store,
      url,
      kind,
      ready: () => ({ ready: true, why: 'listening' }),
      close: () => store.close(),
    };
  }

  const l2 = modules.redis.createRedisStore({
    url: redis.url as string,
    cluster: redis.cluster,
    keyPrefix: redis.keyPrefix,
    maxEntryBytes: Math.min(redis.maxEntryBytes, cache.maxEntryBytes),
    commandTimeoutMs: redis.commandTimeoutMs,
    connectTimeoutMs: redis.connectTimeoutMs,
    lockTtlMs: redis.lockTtlMs,
    now,
    observer: { ...observer, onError },
  });
  const store = createTieredStore({ l1, l2, maxPendingL2Bytes: pendingBytes, onWriteDropped });
  return {
    store,
    url,
    kind,
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
