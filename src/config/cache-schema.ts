/**
 * The cache's slice of the configuration: `cacheSchema` for the top-level `cache:` section and
 * `routeCachePolicySchema` for a route's `cache:` policy, with `explainPolicy` for check-config.
 * config/ owns them (cache/ reads config's types; config imports nothing of cache/); the cache
 * stage checks its options against them once, when it is built (cache/options.ts).
 */
import { z } from 'zod';

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP field name')
  .transform((s) => s.toLowerCase());

const MiB = 1024 * 1024;

/** `cache.redis`: the optional shared tier (docs/cache.md, "Shared tier on Redis"). */
export const redisTierSchema = z
  .object({
    url: z
      .string()
      .refine((s) => {
        try {
          const u = new URL(s);
          return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
        } catch {
          return false;
        }
      }, 'expected a redis:// or rediss:// URL, e.g. redis://:password@redis:6379/0')
      .nullable()
      .default(null)
      .describe(
        'Redis shared by every replica (L2 behind the in-process cache); null: memory only. ' +
          'Credentials may be given in the URL (never logged). Env SIDECACHE_REDIS_URL, flag --redis.',
      ),
    cluster: z.boolean().default(false).describe('Treat url as a seed node of a Redis Cluster.'),
    required: z
      .boolean()
      .default(false)
      .describe('Report not ready on /readyz while Redis is unreachable (requests are served either way).'),
    l1: z
      .boolean()
      .default(true)
      .describe('Keep the in-process memory cache in front of Redis (false: every lookup goes to Redis).'),
    keyPrefix: z
      .string()
      .min(1)
      .default('sidecache:')
      .describe('Prefix of every Redis key and of the invalidation channel.'),
    maxEntryBytes: z
      .number()
      .int()
      .min(0)
      .default(1024 * 1024)
      .describe('Largest body written to Redis; larger stored responses stay in the in-process cache only.'),
    commandTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(250)
      .describe('A Redis command slower than this fails; the request carries on without Redis.'),
    connectTimeoutMs: z.number().int().min(1).default(2_000).describe('Redis connect timeout.'),
    lockTtlMs: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Lifetime of the per-key fill lock that keeps replicas from fetching the same miss at once.'),
  })
  .strict();

export const REDIS_TIER_DEFAULTS = Object.freeze(redisTierSchema.parse({}));
export type RedisTierOptions = z.output<typeof redisTierSchema>;

/** memjs parses `host:port` by splitting on colons: a host name or IPv4 address (no IPv6 literal). */
const HOST_PORT = /^([A-Za-z0-9.-]+):(\d{1,5})$/;

/** `cache.memcached`: the shared tier on memcached instead of Redis (docs/cache.md). */
export const memcachedTierSchema = z
  .object({
    servers: z
      .array(
        z.string().refine((s) => {
          const m = HOST_PORT.exec(s);
          return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
        }, 'expected HOST:PORT with a port 1-65535, e.g. memcached:11211'),
      )
      .default([])
      .describe(
        'memcached servers (HOST:PORT, a host name or IPv4 address) shared by every replica (L2 behind the in-process cache), keys spread ' +
          'by consistent hashing; empty: no memcached tier. Env SIDECACHE_MEMCACHED (comma-separated), ' +
          'flag --memcached (repeatable). Not together with cache.redis.url.',
      ),
    l1: z
      .boolean()
      .default(true)
      .describe(
        'Keep the in-process memory cache in front of memcached (false: every lookup goes to memcached).',
      ),
    l1TtlMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe(
        'Longest time an entry stays in the in-process cache: memcached cannot broadcast purges, so another ' +
          "replica's purge reaches this replica's memory within this time.",
      ),
    keyPrefix: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[!-~]+$/, 'expected printable ASCII without spaces')
      .default('sidecache:')
      .describe('Prefix of every memcached key.'),
    maxEntryBytes: z
      .number()
      .int()
      .min(0)
      .default(1024 * 1024 - 1024)
      .describe(
        "Largest value written to memcached (every variant of a key, encoded; memcached's item limit is 1 MiB " +
          'by default); larger stored responses stay in the in-process cache only.',
      ),
    commandTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(250)
      .describe('A memcached command slower than this fails; the request carries on without memcached.'),
    connectTimeoutMs: z.number().int().min(1).default(2_000).describe('memcached connect timeout.'),
    lockTtlMs: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe(
        'Lifetime of the per-key fill lock (memcached add, rounded up to whole seconds) that keeps replicas ' +
          'from fetching the same miss at once.',
      ),
  })
  .strict();

export const MEMCACHED_TIER_DEFAULTS = Object.freeze(memcachedTierSchema.parse({}));
export type MemcachedTierOptions = z.output<typeof memcachedTierSchema>;

export const cacheSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Cache responses at all (routes can opt out one by one).'),
    maxSizeBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * MiB)
      .describe(
        'Most bytes the memory store holds, counted as the process really spends them: body, header and key text plus a measured overhead per entry (about 0.7 kB); least recently used go first. May be given as a share of the container\'s memory limit (cgroup v2 memory.max, or the file SIDECACHE_MEMORY_LIMIT_FILE names), e.g. "25%". `serve` refuses to start when the expected peak RSS (`check-config` prints it) exceeds that limit.',
      ),
    maxEntryBytes: z
      .number()
      .int()
      .min(0)
      .default(4 * MiB)
      .describe('Largest single response stored; larger bodies stream through uncached.'),
    coalesceTimeoutMs: z
      .number()
      .int()
      .min(0)
      .default(5_000)
      .describe('How long a coalesced request waits for the leader before going to the origin itself.'),
    hitForMissTtlMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('How long an uncacheable key skips coalescing and goes straight to the origin.'),
    heuristicFraction: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('Heuristic freshness as a fraction of (Date − Last-Modified), RFC 9111 §4.2.2.'),
    maxHeuristicTtlMs: z
      .number()
      .int()
      .min(0)
      .default(86_400_000)
      .describe('Upper bound on a heuristic freshness lifetime.'),
    staleIfErrorMs: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Stale-if-error window used when neither the response nor the request gives one (0: none).'),
    serveStaleIfUnreachable: z
      .boolean()
      .default(true)
      .describe(
        'Serve a retained stale response when the origin cannot be reached, unless a directive forbids it.',
      ),
    staleRetentionMs: z
      .number()
      .int()
      .min(0)
      .default(86_400_000)
      .describe('How long a response is kept after it goes stale, to revalidate it or serve it on error.'),
    targetedFields: z
      .array(headerName)
      .default(['sidecache-cache-control', 'cdn-cache-control'])
      .describe(
        'Targeted cache-control fields (RFC 9213) this cache obeys, most specific first: the first one present ' +
          'with a valid value replaces Cache-Control and Expires for freshness and storability. The fields are ' +
          'still forwarded to clients. [] to obey Cache-Control only.',
      ),
    cacheStatusName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'expected a token')
      .default('sidecache')
      .describe('Name of this cache in the Cache-Status response header (RFC 9211).'),
    upstreamCompression: z
      .boolean()
      .default(true)
      .describe(
        'Ask origins for compressed bodies (upstreamCodings) on GET and HEAD even when the client did not, store them ' +
          'compressed, and decode them for clients whose Accept-Encoding does not accept the coding.',
      ),
    upstreamCodings: z
      .array(z.enum(['br', 'gzip', 'deflate']))
      .min(1)
      .default(['br', 'gzip'])
      .describe(
        'Content codings asked for with upstreamCompression, in order of preference (Accept-Encoding).',
      ),
    refreshAheadConcurrency: z
      .number()
      .int()
      .min(1)
      .default(4)
      .describe('Most refresh-ahead revalidations in flight at once, over every route (one per entry).'),
    hitMemoEntries: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe(
        'Fresh hits remembered by request line, so that a repeated request is answered without deciding it again ' +
          '(each use re-checks the runtime, the request fields, the stored response and its freshness); 0 turns it off.',
      ),
    redis: redisTierSchema.default(REDIS_TIER_DEFAULTS).describe('Optional shared tier on Redis.'),
    memcached: memcachedTierSchema
      .default(MEMCACHED_TIER_DEFAULTS)
      .describe('Optional shared tier on memcached (instead of Redis).'),
  })
  .strict()
  .refine((o) => o.redis.url === null || o.memcached.servers.length === 0, {
    message: 'cache.redis.url and cache.memcached.servers are both set: configure one shared tier, not both',
    path: ['memcached', 'servers'],
  })
  .refine((o) => o.maxEntryBytes <= o.maxSizeBytes, {
    message: 'maxEntryBytes must not exceed maxSizeBytes',
    path: ['maxEntryBytes'],
  });

const ttlMsSchema = z.number().int().min(0).nullable();
const TTL_MS_DESCRIPTION =
  'Freshness lifetime replacing what the origin says, for statuses cacheable without one ' +
  '(200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501). no-store and private still apply ' +
  '(unless ignoreNoStore / storePrivate).';

const ignoreNoStoreSchema = z.boolean();
const IGNORE_NO_STORE_DESCRIPTION =
  'Store responses marked no-store, and reuse bare no-cache ones without revalidating, for ttlMs ' +
  '(requires ttlMs). For APIs such as Stripe that mark slow-changing data no-store. Implies ' +
  'storePrivate: responses to requests with Authorization (or private ones) are stored too, each ' +
  'keyed by the credential that fetched it, so a caller gets only its own entries.';

/** A per-path override inside a route: the first entry whose prefix matches the origin path wins. */
export const pathCachePolicySchema = z
  .object({
    prefix: z
      .string()
      .regex(/^\//, 'expected an origin path starting with "/", e.g. /v1/products')
      .describe('Origin path prefix (after route rewriting), e.g. /v1/products.'),
    enabled: z.boolean().optional().describe('Cache these paths (false: bypass).'),
    ttlMs: ttlMsSchema.optional().describe(TTL_MS_DESCRIPTION),
    ignoreNoStore: ignoreNoStoreSchema.optional().describe(IGNORE_NO_STORE_DESCRIPTION),
    forceRevalidate: z.boolean().optional().describe('Validate every reuse of these paths.'),
  })
  .strict();

/** `routes[].cache.refreshAhead`: revalidate hot entries in the background before they expire. */
export const refreshAheadSchema = z
  .object({
    paths: z
      .union([
        z.literal(true),
        z
          .array(z.string().regex(/^\//, 'expected an origin path pattern starting with "/", e.g. /repos/*'))
          .min(1),
      ])
      .default(true)
      .describe(
        'Hot origin paths: true for every path of the route, or patterns where * matches any characters ' +
          '(e.g. /repos/*, /v1/plans).',
      ),
    beforeExpiryMs: z
      .number()
      .int()
      .min(1)
      .nullable()
      .default(null)
      .describe('Revalidate once an entry has at most this long left to live; null: use fraction.'),
    fraction: z
      .number()
      .gt(0)
      .max(1)
      .default(0.1)
      .describe('Revalidate in the last fraction of the freshness lifetime (when beforeExpiryMs is null).'),
    minHits: z
      .number()
      .int()
      .min(1)
      .default(2)
      .describe(
        'Hits an entry needs within its freshness lifetime (this one included) to be refreshed ahead.',
      ),
  })
  .strict();

export type RefreshAheadOptions = z.output<typeof refreshAheadSchema>;

export const routeCachePolicySchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Cache this route (false: every request bypasses the cache).'),
    ttlMs: ttlMsSchema.default(null).describe(TTL_MS_DESCRIPTION),
    ignoreNoStore: ignoreNoStoreSchema.default(false).describe(IGNORE_NO_STORE_DESCRIPTION),
    forceRevalidate: z
      .boolean()
      .default(false)
      .describe('Validate every reuse with the origin (If-None-Match / If-Modified-Since).'),
    keyQuery: z
      .object({
        sort: z.boolean().default(false).describe('Sort query parameters in the cache key.'),
        ignore: z.array(z.string()).default([]).describe('Query parameters left out of the cache key.'),
      })
      .strict()
      .default({ sort: false, ignore: [] })
      .describe('Query normalisation for the cache key.'),
    keyHeaders: z.array(headerName).default([]).describe('Request headers added to the cache key.'),
    credentialHeaders: z
      .array(headerName)
      .default([])
      .describe('Request headers that carry a credential, besides Authorization (e.g. x-api-key).'),
    credentialCookies: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Cookies that carry a credential: when listed, a response is keyed by these cookies alone (other cookies do not count), and never answers a request with other values or none.',
      ),
    cookies: z
      .enum(['isolate', 'ignore'])
      .default('isolate')
      .describe(
        'isolate: a response fetched with a Cookie header is stored under that Cookie (or under the credentialCookies, when listed) and answers no other caller; an entry fetched without cookies still answers requests that carry some. ignore: cookies do not matter to this route (credentialCookies still count).',
      ),
    storePrivate: z
      .boolean()
      .default(false)
      .describe('Store Cache-Control: private responses, keyed by the credential that fetched them.'),
    storeSetCookie: z.boolean().default(false).describe('Store responses that carry Set-Cookie.'),
    emitAge: z.boolean().default(true).describe('Send Age on responses served from the cache.'),
    emitCacheStatus: z.boolean().default(true).describe('Send a Cache-Status header (RFC 9211).'),
    upstreamCompression: z
      .boolean()
      .default(true)
      .describe('Ask this route for compressed bodies when cache.upstreamCompression is on (false: never).'),
    refreshAhead: refreshAheadSchema
      .nullable()
      .default(null)
      .describe(
        'Refresh-ahead: an entry requested at least minHits times is revalidated in the background shortly ' +
          'before it expires, triggered by a hit (so by a request carrying its credential); null: off.',
      ),
    paths: z
      .array(pathCachePolicySchema)
      .default([])
      .describe('Overrides of enabled / ttlMs / ignoreNoStore / forceRevalidate for origin path prefixes.'),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.ignoreNoStore && p.ttlMs === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['ignoreNoStore'],
        message: 'ignoreNoStore needs a ttlMs (how long to keep what the origin said not to store)',
      });
    }
    p.paths.forEach((o, i) => {
      if ((o.ignoreNoStore ?? p.ignoreNoStore) && (o.ttlMs === undefined ? p.ttlMs : o.ttlMs) === null) {
        ctx.addIssue({
          code: 'custom',
          path: ['paths', i, 'ignoreNoStore'],
          message: 'ignoreNoStore needs a ttlMs, on this path entry or on the route',
        });
      }
    });
  });

export type CacheOptionsInput = z.input<typeof cacheSchema>;
export type CacheOptions = z.output<typeof cacheSchema>;
export type RouteCachePolicyInput = z.input<typeof routeCachePolicySchema>;
export type RouteCachePolicy = z.output<typeof routeCachePolicySchema>;
export type PathCachePolicy = z.output<typeof pathCachePolicySchema>;

/** The policy of a route that says nothing about caching. */
export const DEFAULT_ROUTE_POLICY: RouteCachePolicy = Object.freeze(routeCachePolicySchema.parse({}));

/** One sentence describing a policy, for `sidecache check-config`. */
export function explainPolicy(p: RouteCachePolicy): string {
  if (!p.enabled) return 'cache: off';
  const parts = ['cache: RFC 9111 shared cache'];
  if (p.ttlMs !== null) parts.push(`lifetime ${p.ttlMs} ms regardless of origin freshness`);
  if (p.ignoreNoStore) {
    parts.push(
      'no-store / no-cache from the origin ignored; private and credentialed responses stored per credential',
    );
  }
  if (p.forceRevalidate) parts.push('every reuse revalidated');
  if (p.storePrivate && !p.ignoreNoStore) parts.push('private responses stored per credential');
  else if (!p.ignoreNoStore && p.ttlMs !== null) {
    // The trap of a TTL on an authenticated API: the TTL alone stores nothing for those callers.
    parts.push(
      'warning: requests with Authorization are stored only when the origin allows shared caching (public, s-maxage); set storePrivate to store them per credential',
    );
  }
  if (p.ttlMs === 0) {
    parts.push('warning: ttlMs 0: a response without ETag or Last-Modified is never stored (no-freshness)');
  }
  if (p.storeSetCookie) parts.push('Set-Cookie responses stored');
  if (!p.upstreamCompression) parts.push('no upstream compression');
  if (p.refreshAhead !== null) {
    const ra = p.refreshAhead;
    const where = ra.paths === true ? 'every path' : ra.paths.join(', ');
    const when =
      ra.beforeExpiryMs === null
        ? `last ${ra.fraction * 100}% of lifetime`
        : `${ra.beforeExpiryMs} ms before expiry`;
    parts.push(`refresh-ahead on ${where} (${when}, after ${ra.minHits} hits)`);
  }
  if (p.keyQuery.sort) parts.push('query sorted in key');
  if (p.keyQuery.ignore.length > 0) parts.push(`query ignores ${p.keyQuery.ignore.join(', ')}`);
  if (p.keyHeaders.length > 0) parts.push(`key adds ${p.keyHeaders.join(', ')}`);
  const creds = ['authorization', ...p.credentialHeaders, ...p.credentialCookies.map((c) => `cookie ${c}`)];
  if (p.credentialCookies.length === 0 && p.cookies === 'isolate') {
    creds.push('the whole Cookie header (an entry fetched without cookies is shared)');
  }
  parts.push(`credentials: ${creds.join(', ')}`);
  for (const o of p.paths) {
    const what = [
      o.enabled === false ? 'off' : null,
      o.ttlMs === undefined ? null : o.ttlMs === null ? 'origin lifetime' : `lifetime ${o.ttlMs} ms`,
      o.ignoreNoStore === undefined ? null : o.ignoreNoStore ? 'no-store ignored' : 'no-store honoured',
      o.forceRevalidate === undefined ? null : o.forceRevalidate ? 'revalidated' : 'not forced to revalidate',
    ].filter((w) => w !== null);
    parts.push(`paths ${o.prefix}*: ${what.length > 0 ? what.join(', ') : 'as the route'}`);
  }
  return parts.join('; ');
}
