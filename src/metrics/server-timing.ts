/**
 * The `Server-Timing` response header (W3C Server Timing), computed in one place from the
 * Exchange's timeline and added by front/ just before it writes the response head.
 *
 * Because the head is sent before the body streams, every duration ends at most at "headers
 * ready": the metrics are consecutive, non-overlapping slices of the time until the head is sent,
 * so they add up to at most `total`:
 *
 *   cache;dur=…;desc="hit"        time in the cache stage itself (lookup, deciding, serving from
 *                                 the store), not counting the origin request it made, if any
 *   dns;dur=…                     name lookup for a new upstream connection
 *   connect;dur=…;desc="new"      TCP connect of a new upstream connection (dur=0, desc="reused"
 *                                 when the request went out on a pooled connection)
 *   tls;dur=…                     TLS handshake of a new upstream connection
 *   upstream;dur=…                from the connection being ready to the origin's response headers
 *                                 (the origin's think time plus one round trip)
 *   total;dur=…;desc="to headers" from the request arriving to this head being sent
 *
 * Durations are in ms with 1–3 decimals. Absent phases are left out. Per route it can be switched
 * off (`routes[].observability.serverTiming: false`; `observability.serverTiming` is the default).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Runtime } from '../config/runtime.js';
import type { Exchange } from '../exchange.js';
import { appendHeader } from '../hop-by-hop.js';

export interface ServerTimingMetric {
  readonly name: 'cache' | 'dns' | 'connect' | 'tls' | 'upstream' | 'total';
  /** Milliseconds. */
  readonly dur: number;
  readonly desc?: string;
}

/** The metrics of one exchange, measured up to `now` (a `performance.now()` value). */
export function serverTimingMetrics(ex: Exchange, now: number): ServerTimingMetric[] {
  const p = ex.timings.phases;
  const out: ServerTimingMetric[] = [];
  const setup = (p.dns ?? 0) + (p.connect ?? 0) + (p.tls ?? 0);
  if (p.cache !== undefined) {
    // On a miss or a revalidation the cache phase encloses the origin request: take it out.
    const own = ex.originInfo !== undefined ? p.cache - (p.upstream ?? 0) : p.cache;
    const desc = ex.cache ? ex.cache.outcome : undefined;
    out.push(
      desc ? { name: 'cache', dur: Math.max(0, own), desc } : { name: 'cache', dur: Math.max(0, own) },
    );
  }
  if (ex.originInfo !== undefined) {
    if (p.dns !== undefined) out.push({ name: 'dns', dur: p.dns });
    if (ex.originInfo.reusedConnection && p.connect === undefined) {
      out.push({ name: 'connect', dur: 0, desc: 'reused' });
    } else if (p.connect !== undefined) {
      out.push({ name: 'connect', dur: p.connect, desc: 'new' });
    }
    if (p.tls !== undefined) out.push({ name: 'tls', dur: p.tls });
    if (p.upstream !== undefined) out.push({ name: 'upstream', dur: Math.max(0, p.upstream - setup) });
  }
  out.push({ name: 'total', dur: Math.max(0, now - ex.timings.start), desc: 'to headers' });
  return out;
}

/** `1.5` → `1.5`, `2` → `2.0`, `0.12345` → `0.123`: 1 to 3 decimals. */
export function formatDuration(ms: number): string {
  // Integer arithmetic only: this runs several times per response, and converting a double to a
  // string costs far more than converting two small integers.
  const micros = Math.round(ms * 1000);
  const whole = Math.trunc(micros / 1000);
  let frac = micros - whole * 1000;
  if (frac === 0) return `${whole}.0`;
  if (frac > 0) {
    // Trailing zeros dropped by arithmetic, not by slicing a string per zero.
    if (frac % 100 === 0) return `${whole}.${frac / 100}`;
    if (frac % 10 === 0) return frac < 100 ? `${whole}.0${frac / 10}` : `${whole}.${frac / 10}`;
    return frac < 10 ? `${whole}.00${frac}` : frac < 100 ? `${whole}.0${frac}` : `${whole}.${frac}`;
  }
  let digits = frac < 10 ? `00${frac}` : frac < 100 ? `0${frac}` : `${frac}`;
  while (frac % 10 === 0) {
    frac /= 10;
    digits = digits.slice(0, -1);
  }
  return `${whole}.${digits}`;
}

export function formatServerTiming(metrics: readonly ServerTimingMetric[]): string {
  let out = '';
  for (const m of metrics) {
    if (out !== '') out += ', ';
    out += `${m.name};dur=${formatDuration(m.dur)}`;
    if (m.desc !== undefined)
      out += `;desc="${NEEDS_ESCAPE.test(m.desc) ? m.desc.replace(/["\\]/g, '\\$&') : m.desc}"`;
  }
  return out;
}

const NEEDS_ESCAPE = /["\\]/;

/**
 * The hook front/ calls with the response headers right before writing the head: returns them
 * with our Server-Timing appended (after any the origin sent), unless the route switched it off.
 * `headers` is the reply's own object (every Reply is built with headers of its own: stored ones
 * are copied by the cache stage before Age and Cache-Status go in), so it is changed in place: a
 * copy per response cost more than formatting the value.
 */
export type ResponseHeadersHook = (ex: Exchange, headers: OutgoingHttpHeaders) => OutgoingHttpHeaders;

export function createServerTiming(
  runtime: Pick<Runtime, 'config'>,
  clock: () => number = () => performance.now(),
): ResponseHeadersHook {
  const byDefault = runtime.config.observability.serverTiming;
  const byRoute = new Map<string, boolean>();
  for (const r of runtime.config.routes) byRoute.set(r.name, r.observability.serverTiming ?? byDefault);
  return (ex, headers) => {
    const enabled = ex.route ? (byRoute.get(ex.route.name) ?? byDefault) : byDefault;
    if (!enabled) return headers;
    const ours = formatServerTiming(serverTimingMetrics(ex, clock()));
    appendHeader(headers, 'server-timing', ours);
    return headers;
  };
}
