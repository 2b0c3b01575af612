/**
 * Metrics of refresh-ahead and upstream compression (issue 11), fed by what the cache stage
 * publishes on `sidecache:cache:*` (stage-metrics.ts subscribes): neither happens on one client
 * Exchange (refreshes run in the background; decoded sizes are known only when a body ends). The
 * stage never imports prom-client.
 */
import { Counter, type Registry } from 'prom-client';
import type { CacheObserver, RefreshAheadResult } from '../observers.js';

const RESULTS: readonly RefreshAheadResult[] = ['not_modified', 'replaced', 'not_stored', 'error'];

export type CacheWarmthObserver = Required<
  Pick<CacheObserver, 'onRefreshAhead' | 'onRefreshAheadDeferred' | 'onRefreshAheadHit' | 'onUpstreamCoding'>
>;

export function createCacheWarmthMetrics(registry: Registry): CacheWarmthObserver {
  const refreshes = new Counter({
    name: 'sidecache_refresh_ahead_total',
    help: 'Background revalidations of hot entries before expiry, by result (not_modified, replaced, not_stored, error).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  for (const result of RESULTS) refreshes.inc({ result }, 0);
  const deferred = new Counter({
    name: 'sidecache_refresh_ahead_deferred_total',
    help: 'Refresh-ahead revalidations not started because the concurrency cap was reached (a later hit retries).',
    registers: [registry],
  });
  const hits = new Counter({
    name: 'sidecache_refresh_ahead_hits_total',
    help: 'Fresh hits served after the copy that refresh-ahead replaced would have expired (no client waited).',
    registers: [registry],
  });
  const coded = new Counter({
    name: 'sidecache_upstream_compressed_bytes_total',
    help: 'Compressed body bytes received from origins, for responses whose decoded size is known.',
    registers: [registry],
  });
  const identity = new Counter({
    name: 'sidecache_upstream_identity_bytes_total',
    help: 'Decoded size of the bodies counted in sidecache_upstream_compressed_bytes_total.',
    registers: [registry],
  });
  return {
    onRefreshAhead(result) {
      refreshes.inc({ result });
    },
    onRefreshAheadDeferred() {
      deferred.inc();
    },
    onRefreshAheadHit() {
      hits.inc();
    },
    onUpstreamCoding(codedBytes, identityBytes) {
      coded.inc(codedBytes);
      identity.inc(identityBytes);
    },
  };
}
