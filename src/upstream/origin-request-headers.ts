/**
 * The request headers sent to an origin, built in one place for pooled requests (fetch-origin.ts)
 * and upgrades (upgrade-relay.ts): the end-to-end headers of the origin request (`ex.originRequest`,
 * else the client's) (front/ already removed what
 * must not reach an origin, untrusted forwarding headers included) plus sidecache's Via and its
 * own forwarding hop (forwarded.ts).
 */
import type { Exchange } from '../exchange.js';
import { addForwardingHeaders } from '../forwarded.js';
import { appendHeader, endToEndHeaders } from '../hop-by-hop.js';

export interface OriginHeaderOptions {
  /** The Via value this instance adds (e.g. `1.1 sidecache`), or null for none. */
  readonly via: string | null;
  /** `proxy.forwardedHeaders`: add X-Forwarded-For and X-Forwarded-Proto. */
  readonly forwardedHeaders: boolean;
  /**
   * Tracing's last word on the trace context sent upstream (tracing/): removes the client's
   * traceparent and tracestate, or puts in sidecache's, and notes when the request goes out
   * (`timings.upstreamStart`). Absent when tracing is off: then this module's check for it is all
   * the request path does for tracing.
   */
  readonly traceContext?: ((ex: Exchange, headers: Record<string, string | string[]>) => void) | undefined;
}

export function originRequestHeaders(
  ex: Exchange,
  drop: ReadonlySet<string>,
  opts: OriginHeaderOptions,
): Record<string, string | string[]> {
  const headers = endToEndHeaders((ex.originRequest ?? ex).headers, drop);
  if (opts.via !== null) appendHeader(headers, 'via', opts.via);
  if (opts.forwardedHeaders) addForwardingHeaders(headers, ex.client);
  if (opts.traceContext !== undefined) opts.traceContext(ex, headers);
  return headers;
}
