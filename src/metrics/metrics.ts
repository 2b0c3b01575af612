/**
 * metrics/: one prom-client registry per sidecache instance. Stages never import prom-client;
 * everything here is derived from finished Exchanges and from upstream connect events.
 * Label values are bounded: route names and origins come from config, never from raw URLs.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Runtime } from '../config/runtime.js';
import type { ExchangeEnd } from '../front/front-server.js';
import type { ConnectEvent } from '../upstream/pools.js';
import { type CacheMetrics, createCacheMetrics } from './cache-metrics.js';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface Metrics {
  readonly registry: Registry;
  /** Cache counters and gauges (cache-metrics.ts); its observeExchange is a front observer. */
  readonly cache: CacheMetrics;
  observeExchange(end: ExchangeEnd): void;
  observeConnect(event: ConnectEvent): void;
  /** Registers a gauge read at scrape time. */
  gaugeFrom(name: string, help: string, read: () => number): void;
}

export function createMetrics(runtime: Runtime): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const knownOrigins = new Set(runtime.routes.map((r) => r.origin));
  const originLabel = (origin: string): string => (knownOrigins.has(origin) ? origin : 'other');

  const requests = new Counter({
    name: 'sidecache_requests_total',
    help: 'Requests answered, by route, method, status class, cache outcome and ending reason.',
    labelNames: ['route', 'method', 'status_class', 'cache', 'reason'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sidecache_request_duration_seconds',
    help: 'Time from request received to response fully sent, by route.',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const responseBytes = new Counter({
    name: 'sidecache_response_body_bytes_total',
    help: 'Response body bytes sent to clients, by route.',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  const upstreamRequests = new Counter({
    name: 'sidecache_upstream_requests_total',
    help: 'Requests sent to origins, by origin and whether they reused a pooled connection.',
    labelNames: ['origin', 'connection'] as const,
    registers: [registry],
  });
  const upstreamDuration = new Histogram({
    name: 'sidecache_upstream_duration_seconds',
    help: 'Time from dispatch to the end of the origin response, by origin.',
    labelNames: ['origin'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const connections = new Counter({
    name: 'sidecache_upstream_connections_opened_total',
    help: 'Upstream connections opened (TCP, plus TLS for https origins), by origin.',
    labelNames: ['origin'] as const,
    registers: [registry],
  });
  const connectErrors = new Counter({
    name: 'sidecache_upstream_connect_errors_total',
    help: 'Upstream connection attempts that failed, by origin and error code.',
    labelNames: ['origin', 'code'] as const,
    registers: [registry],
  });
  const connectPhase = new Histogram({
    name: 'sidecache_upstream_connect_duration_seconds',
    help: 'Duration of each phase of opening an upstream connection (dns, tcp, tls), by origin.',
    labelNames: ['origin', 'phase'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  const cache = createCacheMetrics(registry);

  return {
    registry,
    cache,
    observeExchange({ ex, status, bytes }) {
      const route = ex.route?.name ?? (ex.admission?.decision === 'admit' ? 'forward' : 'none');
      const method = KNOWN_METHODS.has(ex.method) ? ex.method : 'OTHER';
      const statusClass = `${Math.floor(status / 100)}xx`;
      requests.inc({
        route,
        method,
        status_class: statusClass,
        cache: ex.cache?.outcome ?? 'none',
        reason: ex.reason ?? 'internal_error',
      });
      const end = ex.timings.end ?? ex.timings.start;
      duration.observe({ route }, (end - ex.timings.start) / 1000);
      if (bytes > 0) responseBytes.inc({ route }, bytes);
      const info = ex.originInfo;
      if (info) {
        const origin = originLabel(info.origin);
        upstreamRequests.inc({ origin, connection: info.reusedConnection ? 'reused' : 'new' });
        const up = ex.timings.phases.upstream;
        if (up !== undefined) upstreamDuration.observe({ origin }, up / 1000);
      }
    },
    observeConnect(event) {
      const origin = originLabel(event.origin);
      if (!event.ok) {
        connectErrors.inc({ origin, code: event.errorCode ?? 'UNKNOWN' });
        return;
      }
      connections.inc({ origin });
      if (event.dnsMs !== undefined) connectPhase.observe({ origin, phase: 'dns' }, event.dnsMs / 1000);
      if (event.connectMs !== undefined)
        connectPhase.observe({ origin, phase: 'tcp' }, event.connectMs / 1000);
      if (event.tlsMs !== undefined) connectPhase.observe({ origin, phase: 'tls' }, event.tlsMs / 1000);
    },
    gaugeFrom(name, help, read) {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    },
  };
}
