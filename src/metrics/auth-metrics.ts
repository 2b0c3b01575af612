/**
 * Metrics for proxy authentication's back-off against guessing (guard/auth-throttle.ts), fed by
 * what it publishes on `sidecache:auth:*` (stage-metrics.ts subscribes).
 */
import { Counter, type Registry } from 'prom-client';

export interface AuthMetrics {
  /** A wrong credential; `blockedMs` > 0 when it started a back-off for its client address. */
  onFailure(blockedMs: number): void;
  /** An attempt refused (429) because its address is held back. */
  onThrottled(): void;
}

export function createAuthMetrics(registry: Registry): AuthMetrics {
  const failures = new Counter({
    name: 'sidecache_proxy_auth_failures_total',
    help: 'Proxy-Authorization credentials refused as wrong or malformed.',
    registers: [registry],
  });
  const backoffs = new Counter({
    name: 'sidecache_proxy_auth_backoffs_total',
    help: 'Back-offs started for a client address after repeated wrong proxy credentials.',
    registers: [registry],
  });
  const throttled = new Counter({
    name: 'sidecache_proxy_auth_throttled_total',
    help: 'Requests refused with 429 because their client address is held back after wrong credentials.',
    registers: [registry],
  });
  return {
    onFailure(blockedMs) {
      failures.inc();
      if (blockedMs > 0) backoffs.inc();
    },
    onThrottled: () => throttled.inc(),
  };
}
