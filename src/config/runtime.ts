/**
 * Compiles a validated Config once into a frozen Runtime: routes pre-parsed with their merged
 * upstream settings, lookup tables for prefix / Host / origin, and the allow list as a matcher.
 * Every part can explain itself (`sidecache check-config` prints the explanations).
 */
import { createHash } from 'node:crypto';
import { explainPolicy, type RouteCachePolicy } from './cache-schema.js';
import { interceptEntries, interceptOrigin, isWildcard } from './intercept-entry.js';
import type { Config, UpstreamConfig } from './schema.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface Route {
  readonly name: string;
  /** Origin the route forwards to, e.g. `https://api.github.com` (no path, no trailing slash). */
  readonly origin: string;
  /** Path prepended to forwarded paths, without trailing slash ('' for none). */
  readonly basePath: string;
  /** Reverse-proxy path prefix (starts and ends with '/'), or null when the route has none. */
  readonly prefix: string | null;
  readonly hosts: readonly string[];
  readonly upstream: UpstreamConfig;
  /** The route's cache policy (validated, defaults filled). */
  readonly cache: RouteCachePolicy;
  /**
   * Added to the cache keys of this route's entries when another route to the same origin has a
   * different cache policy (`policy:<hash of the policy>`), so that neither replaces or answers
   * from the other's entries; absent otherwise (routes that agree share entries).
   */
  readonly cacheKeyTag?: string;
  explain(): string;
}

/** Matches a host name (or IP literal) against the allow list. */
export interface HostMatcher {
  (host: string): string | null;
  readonly patterns: readonly string[];
}

export interface Runtime {
  readonly config: Config;
  readonly listen: HostPort;
  readonly adminListen: HostPort | null;
  readonly routes: readonly Route[];
  /** Routes with a prefix, longest prefix first. */
  readonly prefixRoutes: readonly Route[];
  readonly routeByHost: ReadonlyMap<string, Route>;
  readonly routeByOrigin: ReadonlyMap<string, Route>;
  readonly allow: HostMatcher;
  /**
   * The origins keep-warm warms: every route origin, then each host named in `intercept` that no
   * route covers (`https://host:port`, port 443 when the entry has none) with the global upstream
   * settings, the ones its decrypted requests use.
   */
  readonly warmOrigins: readonly WarmOrigin[];
  explain(): string;
}

/** An origin to keep warm, and whose upstream settings apply (a Route is one). */
export interface WarmOrigin {
  /** The route's name, or `intercept <entry>` for an intercepted host no route covers. */
  readonly name: string;
  readonly origin: string;
  readonly upstream: UpstreamConfig;
}

/**
 * Whether a CONNECT to `host`:`port` is intercepted: an entry without a port matches the host on
 * any port, one with a port only that port. `explicitPort` says whether an entry names that port
 * for the host (such a port is reachable by CONNECT, as a route origin's own port is).
 */
export interface InterceptMatcher {
  (host: string, port: number): boolean;
  explicitPort(host: string, port: number): boolean;
  /** Whether any entry names the host, whatever its port (leaf certificates are per host). */
  host(host: string): boolean;
}

export function compileInterceptMatcher(patterns: readonly string[]): InterceptMatcher {
  const entries = interceptEntries(patterns);
  const anyPort = compileHostMatcher(entries.filter((e) => e.port === null).map((e) => e.host));
  const byPort = new Map<number, string[]>();
  for (const e of entries) if (e.port !== null) byPort.set(e.port, [...(byPort.get(e.port) ?? []), e.host]);
  const perPort = new Map([...byPort].map(([port, hosts]) => [port, compileHostMatcher(hosts)]));
  const everyHost = compileHostMatcher(entries.map((e) => e.host));
  const explicitPort = (host: string, port: number): boolean => (perPort.get(port)?.(host) ?? null) !== null;
  const match = (host: string, port: number): boolean => anyPort(host) !== null || explicitPort(host, port);
  return Object.assign(match, { explicitPort, host: (host: string) => everyHost(host) !== null });
}

/** Route origins, then the intercepted hosts no route covers (wildcards cannot be warmed). */
function warmOriginsOf(config: Config, routes: readonly Route[]): WarmOrigin[] {
  const origins: WarmOrigin[] = [...routes];
  const seen = new Set(routes.map((r) => r.origin));
  for (const entry of interceptEntries(config.intercept)) {
    const origin = interceptOrigin(entry);
    if (origin === null || seen.has(origin)) continue;
    seen.add(origin);
    origins.push({ name: `intercept ${entry.pattern}`, origin, upstream: config.upstream });
  }
  return origins;
}

/** check-config's lines on warming intercepted hosts; none when `intercept` is empty. */
function explainInterceptWarm(
  config: Config,
  routes: readonly Route[],
  warm: readonly WarmOrigin[],
): string[] {
  const entries = interceptEntries(config.intercept);
  if (entries.length === 0) return [];
  const lines: string[] = [];
  const own = warm.filter((w) => !routes.includes(w as Route));
  if (own.length > 0) {
    lines.push(
      `intercepted hosts no route covers, warmed like a route origin: ${own.map((w) => w.origin).join(', ')}` +
        `\n  ${explainWarm(config.upstream.warm)}`,
    );
  }
  const covered = entries.filter((e) => {
    const origin = interceptOrigin(e);
    return origin !== null && routes.some((r) => r.origin === origin);
  });
  if (covered.length > 0) {
    lines.push(`intercepted hosts warmed as route origins: ${covered.map((e) => e.pattern).join(', ')}`);
  }
  const wild = entries.filter(isWildcard);
  if (wild.length > 0) {
    lines.push(
      `not warmed: ${wild.map((e) => e.pattern).join(', ')} (a wildcard names no host to resolve or connect to ahead of a CONNECT)`,
    );
  }
  return lines;
}

export function parseHostPort(s: string): HostPort {
  const colon = s.lastIndexOf(':');
  let host = s.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host === '' ? '0.0.0.0' : host, port: Number(s.slice(colon + 1)) };
}

/** Lower-case host without brackets or trailing dot. */
export function normaliseHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

export function compileHostMatcher(patterns: readonly string[]): HostMatcher {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const p of patterns) {
    const n = normaliseHost(p);
    if (n === '*') any = true;
    else if (n.startsWith('*.')) suffixes.push(n.slice(1));
    else exact.add(n);
  }
  const match = (host: string): string | null => {
    const h = normaliseHost(host);
    if (exact.has(h)) return h;
    for (const s of suffixes) if (h.endsWith(s) && h.length > s.length) return `*${s}`;
    return any ? '*' : null;
  };
  return Object.assign(match, { patterns: Object.freeze([...patterns]) });
}

export function compileRuntime(config: Config): Runtime {
  const routes = config.routes.map((r): Route => {
    const url = new URL(r.origin);
    const basePath = url.pathname.replace(/\/+$/, '');
    const prefix = r.prefix === undefined ? `/${r.name}/` : r.prefix === false ? null : r.prefix;
    const overrides = Object.fromEntries(Object.entries(r.upstream).filter(([, v]) => v !== undefined));
    const warm = Object.freeze({
      ...config.upstream.warm,
      ...Object.fromEntries(Object.entries(r.upstream.warm ?? {}).filter(([, v]) => v !== undefined)),
    });
    const upstream: UpstreamConfig = Object.freeze({ ...config.upstream, ...overrides, warm });
    const hosts = Object.freeze(r.hosts.map(normaliseHost));
    const route: Route = {
      name: r.name,
      origin: url.origin,
      basePath,
      prefix,
      hosts,
      upstream,
      cache: r.cache,
      explain() {
        const ways = [
          prefix ? `path prefix ${prefix} (stripped)` : null,
          hosts.length > 0 ? `Host ${hosts.join(', ')}` : null,
          `forward-proxy requests to ${url.origin}`,
        ].filter((w) => w !== null);
        return (
          `route "${r.name}": ${ways.join('; ')} → ${url.origin}${basePath}` +
          ` (up to ${upstream.connectionsPerOrigin} connections, ${upstream.http2 ? 'HTTP/2 offered' : 'HTTP/1.1'})` +
          `\n  ${explainWarm(upstream.warm)}` +
          `\n  ${config.cache.enabled ? explainPolicy(r.cache) : 'cache: off (cache.enabled is false)'}`
        );
      },
    };
    return route;
  });
  tagSharedOrigins(routes);
  const prefixRoutes = routes
    .filter((r) => r.prefix !== null)
    .sort((a, b) => b.prefix!.length - a.prefix!.length);
  const routeByHost = new Map<string, Route>();
  for (const r of routes) for (const h of r.hosts) routeByHost.set(h, r);
  const routeByOrigin = new Map<string, Route>();
  for (const r of routes) if (!routeByOrigin.has(r.origin)) routeByOrigin.set(r.origin, r);
  const allow = compileHostMatcher(config.allow);
  const listen = parseHostPort(config.listen);
  const adminListen = config.admin.enabled ? parseHostPort(config.admin.listen) : null;
  const warmOrigins = Object.freeze(warmOriginsOf(config, routes));
  return Object.freeze({
    config,
    listen,
    adminListen,
    routes: Object.freeze(routes),
    prefixRoutes: Object.freeze(prefixRoutes),
    routeByHost,
    routeByOrigin,
    allow,
    warmOrigins,
    explain() {
      const lines = [
        `proxy listens on ${config.listen}` +
          (adminListen ? `; admin on ${config.admin.listen}` : '; admin listener disabled'),
        ...routes.map((r) => r.explain()),
        allow.patterns.length > 0
          ? `forward proxy may also reach: ${allow.patterns.join(', ')}`
          : 'forward proxy reaches only route origins',
        explainForwarded(config.proxy),
        `CONNECT reaches those hosts on port ${config.tunnel.ports.join(', ')} (and a route origin's own port${interceptEntries(config.intercept).some((e) => e.port !== null) ? ", and an intercept entry's own port" : ''}); ` +
          (config.intercept.length > 0
            ? `decrypted for ${config.intercept.join(', ')} with the CA in ${config.tls.caDir}, tunnelled as-is for the rest`
            : 'tunnelled as-is (no host in "intercept")'),
      ];
      lines.splice(
        1,
        0,
        config.cache.enabled
          ? `cache: in memory, up to ${config.cache.maxSizeBytes} bytes, ${config.cache.maxEntryBytes} per response`
          : 'cache: off',
      );
      if (routes.length === 0) lines.splice(2, 0, 'no routes configured');
      lines.push(...explainInterceptWarm(config, routes, warmOrigins));
      if (warmOrigins.length > 0) {
        const w = config.upstream.warm;
        const warmed =
          routes.length === 0
            ? 'intercepted hosts'
            : warmOrigins.length > routes.length
              ? 'route origins and intercepted hosts'
              : 'route origins';
        lines.push(
          `warm start: ${warmed} resolved and connected in parallel at start, for up to ${w.timeoutMs / 1000} s; ` +
            (w.readyWait ? '/readyz says "warming" until then' : '/readyz does not wait for it'),
        );
      }

      const dns = config.dns;
      const via =
        dns.mode === 'udp'
          ? `nameservers ${dns.servers.length > 0 ? dns.servers.join(', ') : 'from /etc/resolv.conf'}`
          : dns.mode === 'doh'
            ? `DNS-over-HTTPS (${dns.doh.protocol}) via ${dns.doh.servers.join(', ')}`
            : 'the system resolver';
      lines.push(
        `upstream names resolve through ${via}, cached ${dns.minTtlMs / 1000} s..${dns.maxTtlMs / 1000} s, stale answers for up to ${dns.staleTtlMs / 1000} s`,
      );
      return lines.join('\n');
    },
  });
}

function explainForwarded(proxy: Config['proxy']): string {
  const trust = proxy.trustForwarded;
  const whom =
    trust === true ? 'every client' : trust === false || trust.length === 0 ? null : trust.join(', ');
  const kept =
    whom === null
      ? "clients' Forwarded / X-Forwarded-* / X-Real-IP headers removed"
      : `Forwarded / X-Forwarded-* / X-Real-IP headers kept from ${whom} (and part of the cache key), removed from others`;
  return proxy.forwardedHeaders ? `${kept}; sidecache adds its own X-Forwarded-For and -Proto` : kept;
}

/**
 * Two routes to one origin with different cache policies keep apart entries: an entry is keyed by
 * the policy that stored it (a route without a TTL must not replace, nor be answered from, the
 * entry a route with `ttlMs` or `ignoreNoStore` stored for the same URL). Freezes the routes.
 */
function tagSharedOrigins(routes: Route[]): void {
  const policiesByOrigin = new Map<string, Set<string>>();
  for (const r of routes) {
    const set = policiesByOrigin.get(r.origin) ?? new Set<string>();
    set.add(JSON.stringify(r.cache));
    policiesByOrigin.set(r.origin, set);
  }
  for (const [i, r] of routes.entries()) {
    if ((policiesByOrigin.get(r.origin)?.size ?? 0) > 1) {
      const hash = createHash('sha256').update(JSON.stringify(r.cache)).digest('hex').slice(0, 12);
      const explain = r.explain.bind(r);
      routes[i] = {
        ...r,
        cacheKeyTag: `policy:${hash}`,
        explain: () =>
          `${explain()}\n  cache entries kept apart from other routes to ${r.origin} (their cache policies differ)`,
      };
    }
    Object.freeze(routes[i]);
  }
}

function explainWarm(warm: UpstreamConfig['warm']): string {
  if (warm.connections === 0 && warm.minIdle === 0)
    return 'keep-warm: off (no connections opened ahead of need)';
  return (
    `keep-warm: ${warm.connections} connection(s) opened at start (DNS, TCP, TLS), at least ${warm.minIdle} kept idle` +
    ` (re-opened after ${warm.retryMinMs / 1000}..${warm.retryMaxMs / 1000} s when the origin is down); name kept fresh in the DNS cache`
  );
}
