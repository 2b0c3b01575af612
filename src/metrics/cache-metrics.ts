/**
 * Cache metrics, derived like the rest of metrics/ from finished Exchanges (`ex.cache`), plus the
 * two signals one Exchange cannot carry: store size (read from the stage's `stats()` at scrape
 * time) and evictions (`sidecache:cache:remove`, through stage-metrics.ts). The cache stage never
 * imports prom-client.
 * Saved time and avoided upstream requests are the saved-time ledger's (saved-time.ts), not counted here.
 */

import { Counter, Gauge, type Registry } from 'prom-client';
import type { ExchangeEnd } from '../exchange.js';
import { type CountCell, DeferredCounts } from './deferred-counts.js';
import { routeLabel } from './route-label.js';

/** What the cache stage offers to be watched (a subset of `CacheStage`). */
export interface WatchedCache {
  stats(): Promise<{ readonly entries: number; readonly bytes: number; readonly decodedBytes?: number }>;
  /** The hit memo, when on (cache/hit-memo.ts). */
  readonly memo?: { readonly size: number; readonly recalls: number } | null;
}

export interface CacheMetrics {
  observeExchange(end: ExchangeEnd): void;
  /** For the cache stage's `observer.onRemove`: counts evictions (entries removed to make room). */
  onRemove(info: { readonly reason: string }): void;
  /** Reports the cache's entries and bytes at every scrape. */
  watch(cache: WatchedCache): void;
}

export function createCacheMetrics(registry: Registry): CacheMetrics {
  /** Summed per request, handed to prom-client at scrape (deferred-counts.ts). */
  const lookupCounts = new DeferredCounts<'route' | 'result'>();
  /** Route label → result → cell: two lookups by strings that are not built per request. */
  const lookupCells = new Map<string, Map<string, CountCell>>();
  new Counter({
    name: 'sidecache_cache_lookups_total',
    help: 'Requests seen by the cache, by route and result (hit, stale, revalidated, miss, coalesced, bypass).',
    labelNames: ['route', 'result'] as const,
    registers: [registry],
    collect() {
      lookupCounts.flush(this);
    },
  });
  const evictions = new Counter({
    name: 'sidecache_cache_evictions_total',
    help: 'Stored responses evicted to make room (least recently used first).',
    registers: [registry],
  });
  let watched: WatchedCache | null = null;
  const readStats = async (): Promise<{ entries: number; bytes: number; decodedBytes?: number } | null> =>
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

  new Gauge({
    name: 'sidecache_cache_decoded_copies_bytes',
    help: 'Bytes of decoded copies of coded entries kept for clients that do not take the coding (outside sidecache_cache_size_bytes).',
    registers: [registry],
    async collect() {
      const s = await readStats();
      if (s) this.set(s.decodedBytes ?? 0);
    },
  });

  new Gauge({
    name: 'sidecache_cache_hit_memo_entries',
    help: 'Fresh hits remembered by request line (cache.hitMemoEntries).',
    registers: [registry],
    collect() {
      this.set(watched?.memo?.size ?? 0);
    },
  });
  let recallsSeen = 0;
  new Counter({
    name: 'sidecache_cache_hit_memo_recalls_total',
    help: 'Cache hits answered from the hit memo (also counted in sidecache_cache_lookups_total as hits).',
    registers: [registry],
    collect() {
      const now = watched?.memo?.recalls ?? 0;
      if (now > recallsSeen) this.inc(now - recallsSeen);
      recallsSeen = now;
    },
  });

  return {
    observeExchange({ ex }) {
      const info = ex.cache;
      if (info === undefined) return;
      const route = routeLabel(ex);
      let byOutcome = lookupCells.get(route);
      if (byOutcome === undefined) {
        byOutcome = new Map();
        lookupCells.set(route, byOutcome);
      }
      let cell = byOutcome.get(info.outcome);
      if (cell === undefined) {
        cell = lookupCounts.cell(`${route}\0${info.outcome}`, { route, result: info.outcome });
        byOutcome.set(info.outcome, cell);
      }
      cell.pending++;
    },
    onRemove(info) {
      if (info.reason === 'evict') evictions.inc();
    },
    watch(cache) {
      watched = cache;
    },
  };
}
