/**
 * Tracing: every exchange as an OpenTelemetry span tree (docs/observability.md, "Traces"). Off
 * unless `tracing.endpoint` (or OTEL_EXPORTER_OTLP_ENDPOINT) is set; then the OpenTelemetry
 * packages are loaded (otel.ts, a dynamic import) and nothing before that: with tracing off the
 * process neither loads them nor does any per-request work for tracing.
 *
 * Spans are made when the exchange ends, from what the Exchange already measured (the timeline
 * Server-Timing is computed from), by an exchange observer: the request path itself only calls
 * `traceContext` when it builds the headers for an origin (to remove or replace traceparent).
 */
import type { Registry } from 'prom-client';
import type { RuntimeRef } from '../config/runtime-ref.js';
import type { Exchange, ExchangeObserver } from '../exchange.js';
import type { Logger } from '../log.js';
import type { SavedKind } from '../metrics/saved-time.js';

export interface Tracing {
  /** The front observer that turns a finished exchange into spans. */
  readonly observe: ExchangeObserver;
  /** For origin-request-headers.ts: the trace context sent upstream (removed, or sidecache's). */
  readonly traceContext: (ex: Exchange, headers: Record<string, string | string[]>) => void;
  /** Exports what is queued, for at most `timeoutMs`, and stops. */
  close(timeoutMs: number): Promise<void>;
}

export interface TracingDeps {
  readonly ref: RuntimeRef;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Time saved by one finished exchange, by kind (the saved-time ledger). */
  readonly savings: (ex: Exchange) => Partial<Record<SavedKind, number>>;
}

/** Tracing for the config at start, or null when it is off (nothing loaded). */
export async function startTracing(deps: TracingDeps): Promise<Tracing | null> {
  const settings = deps.ref.current().config.tracing;
  if (settings.endpoint === null) return null;
  const { createOtelTracing } = await import('./otel.js');
  return createOtelTracing(settings, deps);
}

/** The OTLP/HTTP traces URL for an endpoint: `/v1/traces` added unless it is already there. */
export function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (!url.pathname.endsWith('/v1/traces')) {
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/traces`;
  }
  return url.href;
}
