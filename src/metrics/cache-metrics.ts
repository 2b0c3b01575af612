/**
 * Cache metrics, derived like the rest of metrics/ from finished Exchanges (`ex.cache`), plus the
 * two signals one Exchange cannot carry: store size (read from the stage's `stats()` at scrape
 * time) and evictions (the stage's `onRemove` observer). The cache stage never imports prom-client.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ExchangeEnd } from '../front/front-server.js';

/** What the cache stage offers to be watched (a subset of `CacheStage`). */
export interface WatchedCache {
  stats(): Promise<{ readonly entries: number; readonly bytes: number }>;
}

export interface CacheMetrics {
  observeExchange(end: ExchangeEnd): void;
  /** For the cache stage's `observer.onRemove`: counts evictions (entries removed to make room). */
  onRemove(info: { readonly reason: string }): void;
  /** Reports the cache's entries and bytes at every scrape. */
  watch(cache: WatchedCache): void;
}

/** Saved time is one ledger (DESIGN.md); reuse it when another part of metrics/ registered it. */
function savedSecondsCounter(registry: Registry): Counter<'kind' | 'route'> {
  const existing = registry.getSingleMetric('sidecache_saved_seconds_total');
  if (existing) return existing as Counter<'kind' | 'route'>;
  return new Counter({
    name: 'sidecache_saved_seconds_total',
    help: 'Time saved for clients, by kind (cache: recorded origin fetch time minus time to serve) and route.',
    labelNames: ['kind', 'route'] as const,
    registers: [registry],
  });
}

export function createCacheMetrics(registry: Registry): CacheMetrics {
  const lookups = new Counter({
    name: 'sidecache_cache_lookups_total',
    help: 'Requests seen by the cache, by route and result (hit, stale, revalidated, miss, coalesced, bypass).',
    labelNames: ['route', 'result'] as const,
    registers: [registry],
  });
  const avoided = new Counter({
    name: 'sidecache_upstream_requests_avoided_total',
    help: 'Responses served from the cache without any request to the origin, by route.',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  const evictions = new Counter({
    name: 'sidecache_cache_evictions_total',
    help: 'Stored responses evicted to make room (least recently used first).',
    registers: [registry],
  });
  const saved = savedSecondsCounter(registry);
  let watched: WatchedCache | null = null;
  const readStats = async (): Promise<{ entries: number; bytes: number } | null> =>
    watched ? watched.stats() : null;
  new Gauge({
    name: 'sidecache_cache_entries',
    help: 'Stored responses (variants) held by the cache now.',
    registers: [registry],
    async collect() {
      const s = await readStats();
      if (s) this.set(s.entries);
    },
  });
  new Gauge({
    name: 'sidecache_cache_size_bytes',
    help: 'Bytes held by the cache now (bodies, headers and keys).',
    registers: [registry],
    async collect() {
      const s = await readStats();
      if (s) this.set(s.bytes);
    },
  });

  return {
    observeExchange({ ex, replySource }) {
      const info = ex.cache;
      if (info === undefined) return;
      const route = ex.route?.name ?? (ex.admission?.decision === 'admit' ? 'forward' : 'none');
      lookups.inc({ route, result: info.outcome });
      if (replySource !== 'cache') return;
      if (info.savedMs !== undefined && info.savedMs > 0)
        saved.inc({ kind: 'cache', route }, info.savedMs / 1000);
      if (ex.originInfo === undefined) avoided.inc({ route });
    },
    onRemove(info) {
      if (info.reason === 'evict') evictions.inc();
    },
    watch(cache) {
      watched = cache;
    },
  };
}
