/**
 * `GET /cache` on the admin listener: what this process holds in its cache, one row per URL.
 *   ?route=<name>     only URLs under that route's origin and base path
 *   ?prefix=<text>    only URLs (as shown) starting with it, e.g. https://api.github.com/repos/
 *   ?limit=<1..1000>  rows at most (default 100); `total` says how many URLs matched
 * A row has the URL, its route, how many responses are stored for it (Vary variants, and one per
 * credential), how many of those are keyed by a credential, bytes, the youngest age and the most
 * freshness left, and the answers served from them. Never a credential, its hash, or the values
 * of the route's key headers: a credential-keyed response is only counted as such. Query values
 * of parameters whose names look like credentials (key, token, secret, password, signature, auth,
 * session, credential) are replaced with `<redacted>`, and `prefix` matches the URL as shown.
 * Only the in-process tier is listed (a shared Redis or memcached tier is not).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CacheStage, DEFAULT_ROUTE_POLICY, type StoredResponse } from '../cache/index.js';
import type { Route, Runtime } from '../config/runtime.js';
import { routeOf } from './purge.js';

export type CacheListHandler = (req: IncomingMessage, res: ServerResponse) => void;

export const CACHE_LIST_DEFAULT_LIMIT = 100;
export const CACHE_LIST_MAX_LIMIT = 1000;

export interface CacheListRow {
  readonly url: string;
  readonly route: string | null;
  readonly variants: number;
  readonly perCredential: number;
  readonly bytes: number;
  readonly ageS: number;
  readonly ttlS: number;
  readonly hits: number;
}

export interface CacheListing {
  readonly entries: readonly CacheListRow[];
  /** URLs that matched (rows before the limit). */
  readonly total: number;
  readonly truncated: boolean;
  /** Stored responses in memory, every URL (before filters). */
  readonly storedResponses: number;
  readonly scope: 'memory';
}

const SENSITIVE_PARAM = /key|token|secret|passw|pwd|sig|auth|session|credential/i;

/** `scheme://user:password@` at the start of a URL. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i;

/**
 * The URL with its user:password and the values of credential-like query parameters replaced
 * (encodings kept).
 */
export function redactUrl(input: string): string {
  // user:password@ in an authority is a credential too.
  const url = input.replace(USERINFO, '$1<redacted>@');
  const q = url.indexOf('?');
  if (q === -1) return url;
  const pairs = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const raw = eq === -1 ? pair : pair.slice(0, eq);
      let name = raw;
      try {
        name = decodeURIComponent(raw.replace(/\+/g, ' '));
      } catch {
        // kept as sent
      }
      return eq !== -1 && SENSITIVE_PARAM.test(name) ? `${raw}=<redacted>` : pair;
    });
  return `${url.slice(0, q)}?${pairs.join('&')}`;
}

class ListRequestError extends Error {}

function parseLimit(raw: string | null): number {
  if (raw === null) return CACHE_LIST_DEFAULT_LIMIT;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > CACHE_LIST_MAX_LIMIT) {
    throw new ListRequestError(`limit: "${raw}" is not a whole number from 1 to ${CACHE_LIST_MAX_LIMIT}`);
  }
  return Number(raw);
}

/** The listing for one request's filters (exported for the tests). */
export function listCache(
  cache: Pick<CacheStage, 'inspect'>,
  runtime: Runtime,
  filters: { route?: string | null; prefix?: string | null; limit?: number },
): CacheListing {
  let under: string | null = null;
  if (filters.route) {
    const route = runtime.routes.find((r) => r.name === filters.route);
    if (!route) {
      const known = runtime.routes.map((r) => r.name).join(', ') || 'none configured';
      throw new ListRequestError(`route: "${filters.route}" is not a configured route (routes: ${known})`);
    }
    under = `${route.origin}${route.basePath}/`;
  }
  const prefix = filters.prefix ?? null;
  const rows = new Map<
    string,
    {
      route: string | null;
      variants: number;
      perCredential: number;
      bytes: number;
      ageMs: number;
      ttlMs: number;
      hits: number;
    }
  >();
  const routeByUrl = new Map<string, Route | null>();
  const routeFor = (url: string): Route | null => {
    let route = routeByUrl.get(url);
    if (route === undefined) {
      route = routeOf(runtime, new URL(url)) ?? null;
      routeByUrl.set(url, route);
    }
    return route;
  };
  const urlOf = (e: StoredResponse): string => e.key.slice(0, e.key.indexOf('\n'));
  let storedResponses = 0;
  for (const { entry, hits, ageMs, ttlMs } of cache.inspect(
    (e) => routeFor(urlOf(e))?.cache ?? DEFAULT_ROUTE_POLICY,
  )) {
    storedResponses++;
    const nl = entry.key.indexOf('\n');
    const url = entry.key.slice(0, nl);
    if (under !== null && !url.startsWith(under)) continue;
    const shown = redactUrl(url);
    if (prefix !== null && !shown.startsWith(prefix)) continue;
    // The key's second line is the credential's hash, or `-` (key.ts): only which of the two is used.
    const keyed = entry.key.slice(nl + 1, entry.key.indexOf('\n', nl + 1)) !== '-';
    const bytes = entry.body.byteLength;
    const row = rows.get(shown);
    if (row === undefined) {
      rows.set(shown, {
        route: routeFor(url)?.name ?? null,
        variants: 1,
        perCredential: keyed ? 1 : 0,
        bytes,
        ageMs,
        ttlMs,
        hits,
      });
    } else {
      row.variants++;
      if (keyed) row.perCredential++;
      row.bytes += bytes;
      row.ageMs = Math.min(row.ageMs, ageMs);
      row.ttlMs = Math.max(row.ttlMs, ttlMs);
      row.hits += hits;
    }
  }
  const limit = filters.limit ?? CACHE_LIST_DEFAULT_LIMIT;
  const urls = [...rows.keys()].sort();
  const entries = urls.slice(0, limit).map((url): CacheListRow => {
    const r = rows.get(url) as NonNullable<ReturnType<typeof rows.get>>;
    return {
      url,
      route: r.route,
      variants: r.variants,
      perCredential: r.perCredential,
      bytes: r.bytes,
      ageS: Math.floor(r.ageMs / 1000),
      ttlS: Math.floor(r.ttlMs / 1000),
      hits: r.hits,
    };
  });
  return { entries, total: urls.length, truncated: urls.length > limit, storedResponses, scope: 'memory' };
}

/** `current` gives the running config (its routes follow a reload). */
export function createCacheListHandler(
  cache: Pick<CacheStage, 'inspect'> | null,
  current: () => Runtime,
): CacheListHandler {
  return (req, res) => {
    const send = (status: number, body: unknown): void => {
      res
        .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(`${JSON.stringify(body)}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(405, { error: `method ${req.method}: the cache listing takes GET` });
      return;
    }
    if (cache === null) {
      send(409, { error: 'the cache is off (cache.enabled: false)' });
      return;
    }
    const params = new URL(req.url ?? '/', 'http://admin.invalid').searchParams;
    try {
      const unknown = [...new Set(params.keys())].filter((k) => !['route', 'prefix', 'limit'].includes(k));
      if (unknown.length > 0) {
        throw new ListRequestError(
          `unknown parameter ${unknown.map((k) => `"${k}"`).join(', ')}; use route, prefix, limit`,
        );
      }
      send(
        200,
        listCache(cache, current(), {
          route: params.get('route'),
          prefix: params.get('prefix'),
          limit: parseLimit(params.get('limit')),
        }),
      );
    } catch (err) {
      if (err instanceof ListRequestError) send(400, { error: err.message });
      else send(500, { error: `listing failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  };
}
