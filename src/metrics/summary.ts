/**
 * What `sidecache report`, the status page and `/status.json` show: a summary computed from one
 * scrape of /metrics (parsed by prom-text.ts), plus a few small advice rules. Pure: no I/O.
 *
 * Definitions:
 * - cache lookups: requests whose cache outcome is hit, stale, coalesced, revalidated or miss
 *   (bypass and `none`, i.e. never looked up, are left out);
 * - hits: lookups answered with a stored response (hit, stale, coalesced, revalidated);
 * - reuse ratio of an origin: requests sent on a reused pooled connection / all requests sent.
 */
import { type MetricFamily, samplesOf, sumBy, sumOf } from './prom-text.js';
import { SAVED_KINDS, type SavedKind } from './saved-time.js';

const HIT_OUTCOMES = ['hit', 'stale', 'coalesced', 'revalidated'] as const;
const LOOKUP_OUTCOMES = [...HIT_OUTCOMES, 'miss'] as const;

export type SavedByKind = Record<SavedKind, number> & { total: number };

export interface RouteSummary {
  readonly route: string;
  readonly requests: number;
  readonly lookups: number;
  readonly hits: number;
  /** hits / lookups, or null without lookups. */
  readonly hitRatio: number | null;
  readonly avoided: number;
  readonly savedSeconds: SavedByKind;
  /** Why origin responses on this route were not stored, most frequent first. */
  readonly notStored: readonly { reason: string; count: number }[];
}

export interface OriginSummary {
  readonly origin: string;
  readonly requests: number;
  readonly reusedRequests: number;
  /** reusedRequests / requests, or null without requests. */
  readonly reuseRatio: number | null;
  readonly connectionsOpened: number;
  readonly connectErrors: number;
  /** Mean time from dispatch to the end of the origin response, seconds; null without data. */
  readonly meanUpstreamSeconds: number | null;
  /** Mean TLS handshake of new connections, seconds; null without TLS connections. */
  readonly meanTlsSeconds: number | null;
  /** Keep-warm: open connections ready for a request now (null: not a kept-warm origin). */
  readonly idleConnections: number | null;
  /** Connections opened ahead of need, and how many of them a request then used. */
  readonly openedAhead: number;
  readonly usedAhead: number;
}

export interface WarmSummary {
  /** How long the warm start at start took, seconds; null when none ran (no routes, or off). */
  readonly startSeconds: number | null;
  /** After an applied config reload: how long warming its new or changed origins took, seconds. */
  readonly lastReloadSeconds: number | null;
  readonly warming: boolean;
  readonly idleConnections: number;
  readonly openedAhead: number;
  readonly usedAhead: number;
}

export interface Summary {
  /** Seconds since the process started (from process_start_time_seconds), when known. */
  readonly uptimeSeconds: number | null;
  readonly requests: number;
  readonly lookups: number;
  readonly hits: number;
  readonly hitRatio: number | null;
  readonly avoided: number;
  readonly savedSeconds: SavedByKind;
  readonly savedBodyBytes: number;
  readonly inFlight: number;
  readonly routes: readonly RouteSummary[];
  /** Slowest first (by mean upstream time). */
  readonly origins: readonly OriginSummary[];
  readonly dnsLookups: Readonly<Record<string, number>>;
  readonly tunnels: number;
  readonly warm: WarmSummary;
  /** Refresh-ahead and upstream compression (issue 11). */
  readonly warmth: WarmthSummary;
  readonly advice: readonly string[];
}

export interface WarmthSummary {
  /** Compressed body bytes received from origins whose decoded size is known. */
  readonly compressedBytes: number;
  /** Their decoded size. */
  readonly identityBytes: number;
  /** compressedBytes / identityBytes (lower is better), or null without data. */
  readonly compressionRatio: number | null;
  /** Refresh-ahead revalidations by result (not_modified, replaced, not_stored, error). */
  readonly refreshAhead: Readonly<Record<string, number>>;
  /** Fresh hits served after the copy refresh-ahead replaced would have expired. */
  readonly refreshAheadHits: number;
  /** Refresh-ahead revalidations deferred by the concurrency cap. */
  readonly refreshAheadDeferred: number;
}

/** The refresh-ahead and compression numbers of one scrape. */
export function summariseWarmth(families: ReadonlyMap<string, MetricFamily>): WarmthSummary {
  const compressedBytes = sumOf(families, 'sidecache_upstream_compressed_bytes_total');
  const identityBytes = sumOf(families, 'sidecache_upstream_identity_bytes_total');
  return {
    compressedBytes,
    identityBytes,
    compressionRatio: ratio(compressedBytes, identityBytes),
    refreshAhead: Object.fromEntries(sumBy(families, 'sidecache_refresh_ahead_total', 'result')),
    refreshAheadHits: sumOf(families, 'sidecache_refresh_ahead_hits_total'),
    refreshAheadDeferred: sumOf(families, 'sidecache_refresh_ahead_deferred_total'),
  };
}

const ratio = (part: number, whole: number): number | null => (whole > 0 ? part / whole : null);

function savedByKind(families: ReadonlyMap<string, MetricFamily>, route?: string): SavedByKind {
  const byKind = sumBy(
    families,
    'sidecache_saved_seconds_total',
    'kind',
    route === undefined ? {} : { route },
  );
  const out = { dns: 0, connection: 0, cache: 0, total: 0 };
  for (const kind of SAVED_KINDS) {
    out[kind] = byKind.get(kind) ?? 0;
    out.total += out[kind];
  }
  return out;
}

/** Summarises one scrape. `nowSeconds` (epoch seconds) gives the uptime. */
export function summarise(families: ReadonlyMap<string, MetricFamily>, nowSeconds?: number): Summary {
  const requestsByRoute = sumBy(families, 'sidecache_requests_total', 'route');
  const routeNames = new Set<string>([
    ...requestsByRoute.keys(),
    ...sumBy(families, 'sidecache_saved_seconds_total', 'route').keys(),
  ]);
  const routes: RouteSummary[] = [];
  for (const route of [...routeNames].sort()) {
    const byOutcome = sumBy(families, 'sidecache_requests_total', 'cache', { route });
    const lookups = LOOKUP_OUTCOMES.reduce((acc, o) => acc + (byOutcome.get(o) ?? 0), 0);
    const hits = HIT_OUTCOMES.reduce((acc, o) => acc + (byOutcome.get(o) ?? 0), 0);
    const notStored = [...sumBy(families, 'sidecache_cache_responses_not_stored_total', 'reason', { route })]
      .filter(([, count]) => count > 0)
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count);
    routes.push({
      route,
      requests: requestsByRoute.get(route) ?? 0,
      lookups,
      hits,
      hitRatio: ratio(hits, lookups),
      avoided: sumOf(families, 'sidecache_upstream_requests_avoided_total', { route }),
      savedSeconds: savedByKind(families, route),
      notStored,
    });
  }

  const originNames = new Set<string>([
    ...sumBy(families, 'sidecache_upstream_requests_total', 'origin').keys(),
    ...sumBy(families, 'sidecache_upstream_connections_opened_total', 'origin').keys(),
    ...sumBy(families, 'sidecache_upstream_connect_errors_total', 'origin').keys(),
    ...sumBy(families, 'sidecache_upstream_idle_connections', 'origin').keys(),
  ]);
  const idleByOrigin = sumBy(families, 'sidecache_upstream_idle_connections', 'origin');
  const origins: OriginSummary[] = [];
  for (const origin of originNames) {
    const requests = sumOf(families, 'sidecache_upstream_requests_total', { origin });
    const reusedRequests = sumOf(families, 'sidecache_upstream_requests_total', {
      origin,
      connection: 'reused',
    });
    const upCount = sumOf(families, 'sidecache_upstream_duration_seconds_count', { origin });
    const upSum = sumOf(families, 'sidecache_upstream_duration_seconds_sum', { origin });
    const tlsMatch = { origin, phase: 'tls' };
    const tlsCount = sumOf(families, 'sidecache_upstream_connect_duration_seconds_count', tlsMatch);
    const tlsSum = sumOf(families, 'sidecache_upstream_connect_duration_seconds_sum', tlsMatch);
    origins.push({
      origin,
      requests,
      reusedRequests,
      reuseRatio: ratio(reusedRequests, requests),
      connectionsOpened: sumOf(families, 'sidecache_upstream_connections_opened_total', { origin }),
      connectErrors: sumOf(families, 'sidecache_upstream_connect_errors_total', { origin }),
      meanUpstreamSeconds: ratio(upSum, upCount),
      meanTlsSeconds: ratio(tlsSum, tlsCount),
      idleConnections: idleByOrigin.get(origin) ?? null,
      openedAhead: sumOf(families, 'sidecache_upstream_connections_ahead_total', { origin }),
      usedAhead: sumOf(families, 'sidecache_upstream_connections_ahead_used_total', { origin }),
    });
  }
  origins.sort(
    (a, b) =>
      (b.meanUpstreamSeconds ?? -1) - (a.meanUpstreamSeconds ?? -1) || a.origin.localeCompare(b.origin),
  );

  const started = samplesOf(families, 'process_start_time_seconds')[0]?.value;
  const lookups = routes.reduce((acc, r) => acc + r.lookups, 0);
  const hits = routes.reduce((acc, r) => acc + r.hits, 0);
  const base = {
    uptimeSeconds:
      started !== undefined && nowSeconds !== undefined ? Math.max(0, nowSeconds - started) : null,
    requests: sumOf(families, 'sidecache_requests_total'),
    lookups,
    hits,
    hitRatio: ratio(hits, lookups),
    avoided: sumOf(families, 'sidecache_upstream_requests_avoided_total'),
    savedSeconds: savedByKind(families),
    savedBodyBytes: sumOf(families, 'sidecache_saved_body_bytes_total'),
    inFlight: sumOf(families, 'sidecache_in_flight_requests'),
    routes,
    origins,
    dnsLookups: Object.fromEntries(sumBy(families, 'sidecache_dns_lookups_total', 'result')),
    tunnels: sumOf(families, 'sidecache_tunnels_total'),
    warm: {
      startSeconds: samplesOf(families, 'sidecache_warm_start_duration_seconds')[0]?.value ?? null,
      warming: sumOf(families, 'sidecache_warming') > 0,
      lastReloadSeconds:
        sumOf(families, 'sidecache_config_reloads_total', { result: 'ok' }) > 0
          ? (samplesOf(families, 'sidecache_warm_reload_duration_seconds')[0]?.value ?? null)
          : null,
      idleConnections: sumOf(families, 'sidecache_upstream_idle_connections'),
      openedAhead: sumOf(families, 'sidecache_upstream_connections_ahead_total'),
      usedAhead: sumOf(families, 'sidecache_upstream_connections_ahead_used_total'),
    },
    warmth: summariseWarmth(families),
  };
  return { ...base, advice: advise(base) };
}

/** Below this many requests a route or origin gets no advice: too little to go on. */
export const ADVICE_MIN_REQUESTS = 10;

const pct = (r: number): string => `${Math.round(r * 100)}%`;

/** The cache's detail for a miss that skipped coalescing because of an earlier unstorable response. */
const HIT_FOR_MISS = 'hit-for-miss';

/** What a not-stored reason suggests, when it dominates a route's misses. */
const NOT_STORED_HINT: Readonly<Record<string, string>> = {
  'no-freshness':
    'responses carry no freshness lifetime (no max-age, s-maxage or Expires): consider a route TTL override (cache.ttlMs)',
  'no-store':
    'responses say no-store: if the data may be kept a while, set cache.ignoreNoStore with cache.ttlMs (stored per credential); else cache.enabled: false skips the lookup',
  private: 'responses say private: consider cache.storePrivate: true (stored per credential)',
  'set-cookie':
    'responses carry Set-Cookie: consider cache.storeSetCookie: true if the cookie is not per user',
  authorization:
    'requests carry credentials and responses do not allow shared caching: consider cache.storePrivate: true (stored per credential)',
  'too-large': 'responses are larger than the entry limit: consider raising cache.maxEntryBytes',
  status: 'responses have statuses that are not cacheable',
};

/** Small advice rules over a summary; each line names the route or origin it is about. */
export function advise(s: Omit<Summary, 'advice'>): string[] {
  const out: string[] = [];
  if (s.requests === 0) return ['no traffic yet'];
  for (const r of s.routes) {
    if (r.lookups < ADVICE_MIN_REQUESTS || r.hitRatio === null || r.hitRatio >= 0.1) continue;
    const misses = r.lookups - r.hits;
    // A hit-for-miss marker exists because an earlier response of the same URL was not stored:
    // such misses are explained by the route's most frequent real reason.
    const markers = r.notStored.find((n) => n.reason === HIT_FOR_MISS)?.count ?? 0;
    const top = r.notStored.find((n) => n.reason !== HIT_FOR_MISS);
    if (top !== undefined && (top.count + markers) * 2 >= misses) {
      const hint = NOT_STORED_HINT[top.reason] ?? `responses are not stored (${top.reason})`;
      out.push(`${r.route}: ${pct(r.hitRatio)} hits, ${hint}`);
    } else {
      out.push(`${r.route}: ${pct(r.hitRatio)} hits: requests rarely repeat within the freshness lifetime`);
    }
  }
  for (const o of s.origins) {
    if (o.connectErrors > 0) {
      out.push(`${o.origin}: ${o.connectErrors} failed connection attempt(s): check reachability and TLS`);
    }
    if (o.requests >= ADVICE_MIN_REQUESTS && o.reuseRatio !== null && o.reuseRatio < 0.5) {
      out.push(
        `${o.origin}: only ${pct(o.reuseRatio)} of requests reuse a pooled connection: ` +
          'the origin may close idle connections early (compare upstream.keepAliveTimeoutMs)',
      );
    }
  }
  if (out.length > 0) return out;
  // "Healthy" needs something to judge: a 0 % hit ratio after three requests says nothing yet.
  const judged =
    s.routes.some((r) => r.lookups >= ADVICE_MIN_REQUESTS) ||
    s.origins.some((o) => o.requests >= ADVICE_MIN_REQUESTS);
  if (!judged) {
    return [
      `not enough traffic yet to judge: ${s.requests} request(s), ${s.lookups} cache lookup(s); ` +
        `advice starts at ${ADVICE_MIN_REQUESTS} lookups on a route or ${ADVICE_MIN_REQUESTS} requests to an origin`,
    ];
  }
  return ['nothing to suggest: hits and connection reuse look healthy'];
}
