/**
 * Metrics of the cache's shared tier on Redis or memcached (cache/redis-store.ts,
 * memcached-store.ts), fed by what they publish on `sidecache:shared-tier:*` (stage-metrics.ts
 * subscribes): the cache module never imports prom-client.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { SharedTierObserver } from '../observers.js';

export function createSharedTierMetrics(registry: Registry): SharedTierObserver {
  const lookups = new Counter({
    name: 'sidecache_cache_l2_lookups_total',
    help: 'Lookups in the Redis tier after an in-process miss, by result (hit, miss, error).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'sidecache_cache_l2_errors_total',
    help: 'Redis tier failures, by operation (get, put, delete, lock, publish, connection, decode).',
    labelNames: ['op'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sidecache_cache_l2_duration_seconds',
    help: 'Duration of successful Redis tier commands, by operation (get, put, delete).',
    labelNames: ['op'] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const lockWaits = new Counter({
    name: 'sidecache_cache_l2_lock_waits_total',
    help: "Misses that waited for another replica's fill, by how the wait ended (released, timeout, error).",
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const lockWaitSeconds = new Counter({
    name: 'sidecache_cache_l2_lock_wait_seconds_total',
    help: "Time misses spent waiting for another replica's fill.",
    registers: [registry],
  });
  const writesDropped = new Counter({
    name: 'sidecache_cache_l2_writes_dropped_total',
    help: 'Writes to the shared tier left out (the entry stays in memory) because the writes in flight held their byte budget.',
    registers: [registry],
  });
  return {
    onLookup(result) {
      lookups.inc({ result });
    },
    onCommand(op, seconds) {
      duration.observe({ op }, seconds);
    },
    onError(op) {
      errors.inc({ op });
    },
    onLockWait(result, seconds) {
      lockWaits.inc({ result });
      lockWaitSeconds.inc(seconds);
    },
    onWriteDropped() {
      writesDropped.inc();
    },
  };
}
