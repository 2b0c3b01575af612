/**
 * metrics/: one prom-client registry per sidecache instance. Stages never import prom-client;
 * everything here is derived from finished Exchanges and from what the stages publish on their
 * diagnostics channels (stage-metrics.ts: upstream connects, DNS lookups, keep-warm, ...). Saved
 * time is computed by the ledger in saved-time.ts. Label values are bounded: route names and origins come from config, never from
 * raw URLs; anything else becomes `other` (origins) or `forward` (routes).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Instance } from '../channels.js';
import type { Runtime } from '../config/runtime.js';
import type { Exchange, ExchangeEnd } from '../exchange.js';
import type { ConnectEvent, WarmState } from '../observers.js';
import { SIDECACHE_VERSION } from '../version.js';
import {
  createSavedTimeLedger,
  type DnsLookupEvent,
  SAVED_KINDS,
  type SavedKind,
  type SavedTimeLedger,
  upstreamAvoided,
} from './saved-time.js';

export type { DnsLookupEvent } from './saved-time.js';

import { type CacheMetrics, createCacheMetrics } from './cache-metrics.js';
import { type CountCell, DeferredCounts } from './deferred-counts.js';
import { FastHistogram, type HistogramSeries } from './fast-histogram.js';
import { routeLabel } from './route-label.js';
import { listenToStages } from './stage-metrics.js';

/** One route label's per-request series (createMetrics' `routeCells`). */
interface OriginCells {
  readonly reused: CountCell;
  readonly fresh: CountCell;
  readonly duration: HistogramSeries;
}

interface RouteCells {
  readonly route: string;
  readonly duration: HistogramSeries;
  readonly responseBytes: CountCell;
  readonly savedConnection: CountCell;
  readonly savedCache: CountCell;
  readonly savedBytes: CountCell;
  readonly avoided: CountCell;
  /** notStored series of this route, by reason. */
  readonly notStored: Map<string, CountCell>;
  lastRequest: {
    readonly method: string;
    readonly statusClass: string;
    readonly cacheOutcome: string;
    readonly reason: string;
    readonly cell: CountCell;
  } | null;
}

/** `1xx` … `5xx` by status / 100, without building the string per request. */
const STATUS_CLASSES: readonly string[] = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const DNS_RESULTS: ReadonlySet<string> = new Set([
  'hit',
  'miss',
  'stale',
  'negative',
  'error',
  'prefetch',
  'static',
]);
/** A label value taken from a small closed set elsewhere (cache detail, DNS mode): checked anyway. */
const TOKEN = /^[a-z][a-z0-9_-]{0,31}$/;

export interface Metrics {
  readonly registry: Registry;
  /** The saved-time ledger (the status page and tests read the per-origin connection cost). */
  readonly savedTime: SavedTimeLedger;
  /** Cache counters and gauges (cache-metrics.ts); its observeExchange is a front observer. */
  readonly cache: CacheMetrics;
  observeExchange(end: ExchangeEnd): void;
  observeConnect(event: ConnectEvent): void;
  /** One DNS lookup through the DNS cache (plug in as the DNS module's `onLookup`). */
  observeDnsLookup(event: DnsLookupEvent): void;
  /** Registers a gauge read at scrape time. */
  gaugeFrom(name: string, help: string, read: () => number): void;
  /** After a config reload: the new routes' origins and names become label values too. */
  adoptRoutes(routes: Runtime['routes']): void;
  /** Keep-warm's state, read at scrape time. */
  watchWarm(read: () => WarmState): void;
  /** Stops listening to the stages' channels (the instance closed). */
  close(): void;
}

/**
 * The metrics of one instance. With `instance`, they listen to what its stages publish
 * (stage-metrics.ts); without, only what is handed to the methods counts (tests).
 */
export function createMetrics(runtime: Runtime, instance?: Instance): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client's gauges named *_total break the convention that _total marks a counter (promtool
  // check metrics rejects them); sum(nodejs_active_handles) and friends give the same numbers.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ])
    registry.removeSingleMetric(name);
  new Gauge({
    name: 'sidecache_build_info',
    help: 'Always 1; the labels say which sidecache version runs on which Node.js version.',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  }).set({ version: SIDECACHE_VERSION, node: process.versions.node }, 1);
  // Origins stay known after a reload removes their route: label values never go away mid-run.
  const knownOrigins = new Set<string>();
  const originLabel = (origin: string): string => (knownOrigins.has(origin) ? origin : 'other');
  /** Host name → the first route whose origin has it (for DNS savings, which know only a host). */
  const routeByHostname = new Map<string, string>();
  const adoptRoutes = (routes: Runtime['routes']): void => {
    for (const r of routes) {
      knownOrigins.add(r.origin);
      const host = new URL(r.origin).hostname.toLowerCase();
      if (!routeByHostname.has(host)) routeByHostname.set(host, r.name);
    }
  };
  adoptRoutes(runtime.routes);
  const ledger = createSavedTimeLedger();

  // Per-request increments are summed here and handed to prom-client at scrape (deferred-counts.ts).
  const requestCounts = new DeferredCounts<'route' | 'method' | 'status_class' | 'cache' | 'reason'>();
  const responseByteCounts = new DeferredCounts<'route'>();
  const upstreamRequestCounts = new DeferredCounts<'origin' | 'connection'>();
  const savedCounts = new DeferredCounts<'kind' | 'route'>();
  const savedByteCounts = new DeferredCounts<'route'>();
  const avoidedCounts = new DeferredCounts<'route'>();
  const notStoredCounts = new DeferredCounts<'route' | 'reason'>();
  new Counter({
    name: 'sidecache_requests_total',
    help: 'Requests answered, by route, method, status class, cache outcome and ending reason.',
    labelNames: ['route', 'method', 'status_class', 'cache', 'reason'] as const,
    registers: [registry],
    collect() {
      requestCounts.flush(this);
    },
  });
  // Per-request histograms: FastHistogram (same exposition, a fraction of prom-client's cost).
  const duration = new FastHistogram({
    name: 'sidecache_request_duration_seconds',
    help: 'Time from request received to response fully sent, by route.',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Counter({
    name: 'sidecache_response_body_bytes_total',
    help: 'Response body bytes sent to clients, by route.',
    labelNames: ['route'] as const,
    registers: [registry],
    collect() {
      responseByteCounts.flush(this);
    },
  });
  new Counter({
    name: 'sidecache_upstream_requests_total',
    help: 'Requests sent to origins, by origin and whether they reused a pooled connection.',
    labelNames: ['origin', 'connection'] as const,
    registers: [registry],
    collect() {
      upstreamRequestCounts.flush(this);
    },
  });
  const upstreamDuration = new FastHistogram({
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

  const saved = new Counter({
    name: 'sidecache_saved_seconds_total',
    help: 'Time saved for clients, by kind (dns, connection, cache) and route, from measured durations.',
    labelNames: ['kind', 'route'] as const,
    registers: [registry],
    collect() {
      savedCounts.flush(this);
    },
  });
  new Counter({
    name: 'sidecache_saved_body_bytes_total',
    help: 'Response body bytes not fetched from origins because the cache answered, by route.',
    labelNames: ['route'] as const,
    registers: [registry],
    collect() {
      savedByteCounts.flush(this);
    },
  });
  const avoided = new Counter({
    name: 'sidecache_upstream_requests_avoided_total',
    help: 'Exchanges answered without any upstream request (cache hit, stale, coalesced), by route.',
    labelNames: ['route'] as const,
    registers: [registry],
    collect() {
      avoidedCounts.flush(this);
    },
  });
  new Counter({
    name: 'sidecache_cache_responses_not_stored_total',
    help: 'Origin responses the cache did not store, by route and why (no-store, private, ...).',
    labelNames: ['route', 'reason'] as const,
    registers: [registry],
    collect() {
      notStoredCounts.flush(this);
    },
  });
  const dnsLookups = new Counter({
    name: 'sidecache_dns_lookups_total',
    help: 'DNS lookups through the DNS cache, by result (hit, miss, stale, negative, error, ...).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const dnsDuration = new Histogram({
    name: 'sidecache_dns_lookup_duration_seconds',
    help: 'Duration of DNS lookups through the DNS cache, by resolver mode.',
    labelNames: ['mode'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // Zero series up front, so rates and the report see every kind before it first happens.
  for (const r of runtime.routes) {
    for (const kind of SAVED_KINDS) saved.inc({ kind, route: r.name }, 0);
    avoided.inc({ route: r.name }, 0);
  }

  // DNS savings know only a host name; everything else is credited through the route's cells.
  const creditSaved = (kind: SavedKind, route: string, ms: number): void => {
    if (ms > 0) savedCounts.add(`${kind}\0${route}`, { kind, route }, ms / 1000);
  };

  /**
   * The cells of one route label's per-request series, found once per exchange by that label (a
   * string Map lookup) instead of building a key per series and per request.
   */
  const cellsByRoute = new Map<string, RouteCells>();
  const routeCells = (route: string): RouteCells => {
    let cells = cellsByRoute.get(route);
    if (cells === undefined) {
      cells = {
        route,
        duration: duration.series(route, { route }),
        responseBytes: responseByteCounts.cell(route, { route }),
        savedConnection: savedCounts.cell(`connection\0${route}`, { kind: 'connection', route }),
        savedCache: savedCounts.cell(`cache\0${route}`, { kind: 'cache', route }),
        savedBytes: savedByteCounts.cell(route, { route }),
        avoided: avoidedCounts.cell(route, { route }),
        notStored: new Map(),
        lastRequest: null,
      };
      cellsByRoute.set(route, cells);
    }
    return cells;
  };
  /** The requests_total cell of an exchange: the route's last one when the other labels match. */
  const requestCell = (cells: RouteCells, ex: Exchange, status: number): CountCell => {
    const method = KNOWN_METHODS.has(ex.method) ? ex.method : 'OTHER';
    const statusClass = STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`;
    const cacheOutcome = ex.cache?.outcome ?? 'none';
    const reason = ex.reason ?? 'internal_error';
    const last = cells.lastRequest;
    if (
      last !== null &&
      last.method === method &&
      last.statusClass === statusClass &&
      last.cacheOutcome === cacheOutcome &&
      last.reason === reason
    )
      return last.cell;
    const route = cells.route;
    const cell = requestCounts.cell(`${route}\0${method}\0${statusClass}\0${cacheOutcome}\0${reason}`, {
      route,
      method,
      status_class: statusClass,
      cache: cacheOutcome,
      reason,
    });
    cells.lastRequest = { method, statusClass, cacheOutcome, reason, cell };
    return cell;
  };

  /** The per-origin upstream series, found by the origin label (no key or label object per request). */
  const cellsByOrigin = new Map<string, OriginCells>();
  const originCells = (origin: string): OriginCells => {
    let cells = cellsByOrigin.get(origin);
    if (cells === undefined) {
      cells = {
        reused: upstreamRequestCounts.cell(`${origin}\0reused`, { origin, connection: 'reused' }),
        fresh: upstreamRequestCounts.cell(`${origin}\0new`, { origin, connection: 'new' }),
        duration: upstreamDuration.series(origin, { origin }),
      };
      cellsByOrigin.set(origin, cells);
    }
    return cells;
  };
  const notStoredCell = (cells: RouteCells, reason: string): CountCell => {
    let cell = cells.notStored.get(reason);
    if (cell === undefined) {
      const route = cells.route;
      cell = notStoredCounts.cell(`${route}\0${reason}`, { route, reason });
      cells.notStored.set(reason, cell);
    }
    return cell;
  };

  const cache = createCacheMetrics(registry);

  const metrics: Metrics = {
    registry,
    savedTime: ledger,
    cache,
    adoptRoutes(routes) {
      adoptRoutes(routes);
      for (const r of routes) {
        for (const kind of SAVED_KINDS) saved.inc({ kind, route: r.name }, 0);
        avoided.inc({ route: r.name }, 0);
      }
    },
    observeExchange({ ex, status, bytes }) {
      const cells = routeCells(routeLabel(ex));
      requestCell(cells, ex, status).pending++;
      const end = ex.timings.end ?? ex.timings.start;
      cells.duration.observe((end - ex.timings.start) / 1000);
      if (bytes > 0) cells.responseBytes.pending += bytes;
      const info = ex.originInfo;
      if (info) {
        const upstream = originCells(originLabel(info.origin));
        (info.reusedConnection ? upstream.reused : upstream.fresh).pending++;
        const up = ex.timings.phases.upstream;
        if (up !== undefined) upstream.duration.observe(up / 1000);
      }
      const savings = ledger.exchangeSavings(ex);
      if (savings.connection !== undefined) cells.savedConnection.pending += savings.connection / 1000;
      if (savings.cache !== undefined) cells.savedCache.pending += savings.cache / 1000;
      const cache = ex.cache;
      if (cache?.savedBytes !== undefined && cache.savedBytes > 0)
        cells.savedBytes.pending += cache.savedBytes;
      if (upstreamAvoided(ex)) cells.avoided.pending++;
      if (cache?.outcome === 'miss' && cache.stored === false) {
        const reason = cache.detail !== undefined && TOKEN.test(cache.detail) ? cache.detail : 'other';
        notStoredCell(cells, reason).pending++;
      }
    },
    observeConnect(event) {
      ledger.recordConnect(event);
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
    observeDnsLookup(event) {
      const result = DNS_RESULTS.has(event.result) ? event.result : 'other';
      dnsLookups.inc({ result });
      const mode = TOKEN.test(event.mode) ? event.mode : 'other';
      if (Number.isFinite(event.durationMs) && event.durationMs >= 0)
        dnsDuration.observe({ mode }, event.durationMs / 1000);
      const route = routeByHostname.get(event.host.toLowerCase().replace(/\.$/, '')) ?? 'forward';
      creditSaved('dns', route, ledger.dnsSavingsMs(event));
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
    watchWarm(read) {
      stages?.watchWarm(read);
    },
    close() {
      stages?.close();
    },
  };
  const stages =
    instance === undefined
      ? null
      : listenToStages(instance, runtime.config, registry, {
          observeConnect: metrics.observeConnect,
          observeDnsLookup: metrics.observeDnsLookup,
          onRemove: cache.onRemove,
        });
  return metrics;
}
