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
import type { Tracing, TracingDeps } from './tracing.js';

export { type Tracing, type TracingDeps, tracesUrl } from './tracing.js';

/** Tracing for the config at start, or null when it is off (nothing loaded). */
export async function startTracing(deps: TracingDeps): Promise<Tracing | null> {
  const settings = deps.ref.current().config.tracing;
  if (settings.endpoint === null) return null;
  const { createOtelTracing } = await import('./otel.js');
  return createOtelTracing(settings, deps);
}
