/**
 * What tracing is to the rest of sidecache: the `Tracing` handle, what it is built from, and the
 * traces URL. Shared by index.ts (which decides whether to load tracing) and otel.ts (the lazily
 * loaded implementation), so otel.ts does not import index.ts, which loads it.
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

/** The OTLP/HTTP traces URL for an endpoint: `/v1/traces` added unless it is already there. */
export function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (!url.pathname.endsWith('/v1/traces')) {
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/traces`;
  }
  return url.href;
}
