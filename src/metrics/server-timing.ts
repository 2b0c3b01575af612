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

/** Told each metric of an exchange in order (eachMetric): a list of them, or the header value. */
interface MetricSink {
  add(name: ServerTimingMetric['name'], dur: number, desc?: string): void;
}

/** The one walk of an exchange's timeline: which metrics it has, in order, measured up to `now`. */
function eachMetric(ex: Exchange, now: number, sink: MetricSink): void {
  const p = ex.timings.phases;
  const setup = (p.dns ?? 0) + (p.connect ?? 0) + (p.tls ?? 0);
  if (p.cache !== undefined) {
    // On a miss or a revalidation the cache phase encloses the origin request: take it out.
    const own = ex.originInfo !== undefined ? p.cache - (p.upstream ?? 0) : p.cache;
    sink.add('cache', Math.max(0, own), ex.cache ? ex.cache.outcome || undefined : undefined);
  }
  if (ex.originInfo !== undefined) {
    if (p.dns !== undefined) sink.add('dns', p.dns);
    if (ex.originInfo.reusedConnection && p.connect === undefined) sink.add('connect', 0, 'reused');
    else if (p.connect !== undefined) sink.add('connect', p.connect, 'new');
    if (p.tls !== undefined) sink.add('tls', p.tls);
    if (p.upstream !== undefined) sink.add('upstream', Math.max(0, p.upstream - setup));
  }
  sink.add('total', Math.max(0, now - ex.timings.start), 'to headers');
}

/** The metrics of one exchange, measured up to `now` (a `performance.now()` value). */
export function serverTimingMetrics(ex: Exchange, now: number): ServerTimingMetric[] {
  const out: ServerTimingMetric[] = [];
  eachMetric(ex, now, {
    add: (name, dur, desc) => out.push(desc === undefined ? { name, dur } : { name, dur, desc }),
  });
  return out;
}

/**
 * Builds the header value straight from the walk, with no metric objects: the first metric's
 * `name;dur=`, each later one's `, name;dur=` and each `;desc="…"` are strings made once, so a
 * metric costs its formatted duration and two joins (this runs on every response).
 */
class ValueSink implements MetricSink {
  value = '';
  add(name: ServerTimingMetric['name'], dur: number, desc?: string): void {
    const lead = this.value === '' ? FIRST[name] : `${this.value}${LATER[name]}`;
    this.value =
      desc === undefined ? `${lead}${formatDuration(dur)}` : `${lead}${formatDuration(dur)}${descPart(desc)}`;
  }
}

const NAMES = ['cache', 'dns', 'connect', 'tls', 'upstream', 'total'] as const;
const FIRST = Object.fromEntries(NAMES.map((n) => [n, `${n};dur=`])) as Record<
  (typeof NAMES)[number],
  string
>;
const LATER = Object.fromEntries(NAMES.map((n) => [n, `, ${n};dur=`])) as Record<
  (typeof NAMES)[number],
  string
>;

/** `;desc="…"` per description (cache outcomes, `new`, `reused`, `to headers`: a handful). */
const DESC_PARTS = new Map<string, string>();
const MAX_DESC_PARTS = 64;

function descPart(desc: string): string {
  let part = DESC_PARTS.get(desc);
  if (part === undefined) {
    part = `;desc="${NEEDS_ESCAPE.test(desc) ? desc.replace(/["\\]/g, '\\$&') : desc}"`;
    if (DESC_PARTS.size < MAX_DESC_PARTS) DESC_PARTS.set(desc, part);
  }
  return part;
}

/** The Server-Timing value of one exchange, measured up to `now`. */
export function serverTimingValue(ex: Exchange, now: number): string {
  const sink = new ValueSink();
  eachMetric(ex, now, sink);
  return sink.value;
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
  const sink = new ValueSink();
  for (const m of metrics) sink.add(m.name, m.dur, m.desc);
  return sink.value;
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
    appendHeader(headers, 'server-timing', serverTimingValue(ex, clock()));
    return headers;
  };
}
