/**
 * Metrics for configuration reloads (SIGHUP, `POST /reload`): how many were applied or rejected,
 * and when the running config was last loaded successfully (at start, then at each applied reload),
 * like Prometheus's own `prometheus_config_last_reload_success_timestamp_seconds`. Fed by
 * `sidecache:config:reload` (reloader.ts publishes, stage-metrics.ts subscribes).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReloadResult } from '../observers.js';

export interface ReloadMetrics {
  observeReload(result: ReloadResult, atMs: number): void;
}

export function createReloadMetrics(registry: Registry, startedAtMs: number): ReloadMetrics {
  const reloads = new Counter({
    name: 'sidecache_config_reloads_total',
    help: 'Configuration reloads (SIGHUP, POST /reload), by result (ok, rejected).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: 'sidecache_config_last_reload_success_timestamp_seconds',
    help: 'Unix time the running configuration was loaded (at start, then at each applied reload).',
    registers: [registry],
  });
  reloads.inc({ result: 'ok' }, 0);
  reloads.inc({ result: 'rejected' }, 0);
  lastSuccess.set(startedAtMs / 1000);
  return {
    observeReload(result, atMs) {
      reloads.inc({ result });
      if (result === 'ok') lastSuccess.set(atMs / 1000);
    },
  };
}
