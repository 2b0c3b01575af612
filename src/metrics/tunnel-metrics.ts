/**
 * Metrics for CONNECT tunnels, upgraded connections and interception TLS, derived from what tunnel/
 * publishes on its `sidecache:tunnel:end` and `sidecache:tls:*` channels (stage-metrics.ts
 * subscribes; tunnel/ imports neither prom-client nor metrics/).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { HandshakeFailure, HandshakeRefusal, TunnelReport } from '../observers.js';

export interface TunnelMetrics {
  observeTunnel(report: TunnelReport): void;
  observeHandshakeFailure(kind: HandshakeFailure): void;
  observeLeafIssued(): void;
  observeHandshakeRefused(reason: HandshakeRefusal): void;
  /** The interception CA's notAfter, ms since the epoch. */
  setCaExpiry(notAfterMs: number): void;
}

export function createTunnelMetrics(registry: Registry): TunnelMetrics {
  const tunnels = new Counter({
    name: 'sidecache_tunnels_total',
    help: 'CONNECT tunnels and upgraded connections closed, by kind (tunnel, intercept, upgrade) and ending.',
    labelNames: ['kind', 'ending'] as const,
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'sidecache_tunnel_bytes_total',
    help: 'Bytes carried by tunnels and upgraded connections, by kind and direction (up: to the origin).',
    labelNames: ['kind', 'direction'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sidecache_tunnel_duration_seconds',
    help: 'How long tunnels and upgraded connections stayed open, by kind.',
    labelNames: ['kind'] as const,
    buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  });
  const handshakeFailures = new Counter({
    name: 'sidecache_client_tls_handshake_failures_total',
    help: 'Client TLS handshakes on intercepted tunnels that failed, by kind (cert-rejected, no-shared-cipher, reset, timeout, other).',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const leaves = new Counter({
    name: 'sidecache_tls_leaf_certificates_issued_total',
    help: 'Leaf certificates minted for intercepted hosts.',
    registers: [registry],
  });
  const refused = new Counter({
    name: 'sidecache_tls_handshakes_refused_total',
    help: 'Client TLS handshakes on intercepted tunnels that sidecache ended with an alert, by reason (sni_mismatch: the SNI named another host than the CONNECT).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const caExpiry = new Gauge({
    name: 'sidecache_ca_expiry_timestamp_seconds',
    help: "When the interception CA's certificate expires (notAfter), seconds since the epoch.",
    registers: [registry],
  });
  return {
    observeTunnel(report) {
      tunnels.inc({ kind: report.kind, ending: report.ending });
      if (report.bytesUp > 0) bytes.inc({ kind: report.kind, direction: 'up' }, report.bytesUp);
      if (report.bytesDown > 0) bytes.inc({ kind: report.kind, direction: 'down' }, report.bytesDown);
      duration.observe({ kind: report.kind }, report.durationMs / 1000);
    },
    observeHandshakeFailure(kind) {
      handshakeFailures.inc({ kind });
    },
    observeLeafIssued() {
      leaves.inc();
    },
    observeHandshakeRefused(reason) {
      refused.inc({ reason });
    },
    setCaExpiry(notAfterMs) {
      caExpiry.set(Math.floor(notAfterMs / 1000));
    },
  };
}
