/**
 * Metrics for keep-warm (upstream/warm.ts), derived from what it publishes on `sidecache:warm:*`
 * (stage-metrics.ts subscribes) and, at scrape time, from its state; warm.ts does not import
 * prom-client. Origins are route origins (from config), so the origin label stays bounded. Connect attempts themselves (opened, failed,
 * phase durations) are counted with every other connection by metrics.ts; the time a pre-opened
 * connection saved is credited by the saved-time ledger when a request uses it.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WarmObserver, WarmState } from '../observers.js';

export function createWarmMetrics(registry: Registry, read: () => WarmState): WarmObserver {
  const ahead = new Counter({
    name: 'sidecache_upstream_connections_ahead_total',
    help: 'Upstream connections opened ahead of need (keep-warm: warm start and minIdle), by origin.',
    labelNames: ['origin'] as const,
    registers: [registry],
  });
  const aheadUsed = new Counter({
    name: 'sidecache_upstream_connections_ahead_used_total',
    help: 'Connections opened ahead of need that a request then used (its handshake skipped), by origin.',
    labelNames: ['origin'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'sidecache_upstream_idle_connections',
    help: 'Open upstream connections ready for a request (kept warm, or free in the pool), by route origin.',
    labelNames: ['origin'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const o of read().origins) this.set({ origin: o.origin }, o.parked + o.free);
    },
  });
  const warmStart = new Gauge({
    name: 'sidecache_warm_start_duration_seconds',
    help: 'How long the warm start at start took (resolve and connect every route origin, bounded by upstream.warm.timeoutMs).',
    registers: [registry],
  });
  const warmReload = new Gauge({
    name: 'sidecache_warm_reload_duration_seconds',
    help: 'How long warming the new or changed route origins took after the last applied config reload.',
    registers: [registry],
  });
  new Gauge({
    name: 'sidecache_warming',
    help: '1 while a warm start is running, else 0.',
    registers: [registry],
    collect() {
      this.set(read().warming ? 1 : 0);
    },
  });
  return {
    onPreconnect(origin, ok) {
      if (ok) ahead.inc({ origin });
    },
    onTaken(origin) {
      aheadUsed.inc({ origin });
    },
    onWarmStart(result) {
      if (result.initial) {
        warmStart.set(result.durationMs / 1000);
      } else {
        warmReload.set(result.durationMs / 1000);
      }
    },
  };
}
