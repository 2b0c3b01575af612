/**
 * Works out where a request is going, the first thing front/ does: a reverse route (by Host
 * header, then by the longest path prefix, which is stripped) or a forward-proxy absolute-form
 * request (what clients send when HTTP_PROXY points here). Both give the same thing: a mode, the
 * route (if any) and the target URL at the origin.
 */
import { LRUCache } from 'lru-cache';
import type { Route, Runtime } from '../config/runtime.js';
import { normaliseHost } from '../config/runtime.js';
import { BadRequestError, NoRouteError, UriTooLongError } from '../errors.js';
import type { FrontMode } from '../exchange.js';
import { fnv1a } from '../hash.js';

export interface Target {
  readonly mode: FrontMode;
  readonly route: Route | null;
  readonly url: URL;
  /** `url.origin`, read once (remembered targets). */
  readonly origin?: string;
}

const ABSOLUTE = /^https?:\/\//i;
/**
 * A `.` or `..` path segment, plain or percent-encoded, where a segment may also be delimited by a
 * backslash (WHATWG URL parsing turns it into "/") or an encoded slash or backslash (which an
 * origin may decode): `..%2f`, `%2e%2e\` and the like would otherwise climb out of a route's base
 * path. Encoded slashes elsewhere are kept encoded (GitLab-style `group%2Fproject` ids still work)
 * and stay distinct in the cache key.
 */
const DOT_SEGMENT = /(^|\/|\\|%2f|%5c)(\.|%2e){1,2}(\/|\\|%2f|%5c|$|\?)/i;

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return normaliseHost(host.slice(0, host.indexOf(']') + 1));
  const colon = host.indexOf(':');
  return normaliseHost(colon === -1 ? host : host.slice(0, colon));
}

export function resolveTarget(rawUrl: string, hostHeader: string | undefined, runtime: Runtime): Target {
  if (rawUrl.length > runtime.config.proxy.maxUrlBytes) {
    throw new UriTooLongError(
      `request target is ${rawUrl.length} bytes; the limit is ${runtime.config.proxy.maxUrlBytes}`,
    );
  }
  if (ABSOLUTE.test(rawUrl)) {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      throw new BadRequestError(`request target "${rawUrl.slice(0, 200)}" is not a valid URL`);
    }
    if (url.username !== '' || url.password !== '') {
      throw new BadRequestError('request target must not carry user:password@');
    }
    url.hash = '';
    return { mode: 'forward', route: runtime.routeByOrigin.get(url.origin) ?? null, url };
  }
  if (!rawUrl.startsWith('/')) {
    throw new BadRequestError(
      `request target "${rawUrl.slice(0, 200)}" is neither a path nor an absolute http(s) URL`,
    );
  }
  if (DOT_SEGMENT.test(rawUrl.split('?', 1)[0] as string)) {
    throw new BadRequestError('request path must not contain "." or ".." segments');
  }
  if (hostHeader !== undefined && runtime.routeByHost.size > 0) {
    const route = runtime.routeByHost.get(hostWithoutPort(hostHeader));
    if (route) return { mode: 'route', route, url: routeUrl(route, rawUrl) };
  }
  for (const route of runtime.prefixRoutes) {
    const prefix = route.prefix as string;
    if (rawUrl.startsWith(prefix))
      return { mode: 'route', route, url: routeUrl(route, rawUrl.slice(prefix.length - 1)) };
    // `/github` and `/github?x` address the route's root.
    const bare = prefix.slice(0, -1);
    if (rawUrl === bare || rawUrl.startsWith(`${bare}?`)) {
      return { mode: 'route', route, url: routeUrl(route, `/${rawUrl.slice(bare.length)}`) };
    }
  }
  const known = runtime.prefixRoutes.map((r) => r.prefix).join(', ');
  throw new NoRouteError(
    `no route for ${rawUrl.split('?', 1)[0]?.slice(0, 200)}` +
      (known ? `; route prefixes: ${known}` : '; no routes are configured'),
  );
}

function routeUrl(route: Route, pathAndQuery: string): URL {
  try {
    return new URL(`${route.origin}${route.basePath}${pathAndQuery}`);
  } catch {
    throw new BadRequestError(`request path "${pathAndQuery.slice(0, 200)}" does not form a valid URL`);
  }
}

/**
 * A request decrypted from an intercepted CONNECT tunnel: the origin is the CONNECT authority
 * (never the Host header, which the guard did not admit), the path is the request's, and the
 * route is the one whose origin that is (or none: then the allow list decides).
 */
export function resolveInterceptedTarget(rawUrl: string, authority: string, runtime: Runtime): Target {
  if (rawUrl.length > runtime.config.proxy.maxUrlBytes) {
    throw new UriTooLongError(
      `request target is ${rawUrl.length} bytes; the limit is ${runtime.config.proxy.maxUrlBytes}`,
    );
  }
  if (!rawUrl.startsWith('/')) {
    throw new BadRequestError(
      `request target "${rawUrl.slice(0, 200)}" in a tunnel to ${authority} is not a path`,
    );
  }
  let url: URL;
  try {
    url = new URL(`https://${authority}${rawUrl}`);
  } catch {
    throw new BadRequestError(`request path "${rawUrl.slice(0, 200)}" does not form a valid URL`);
  }
  return { mode: 'intercept', route: runtime.routeByOrigin.get(url.origin) ?? null, url };
}

/** Targets remembered (a request target is seldom alone: most are asked for again and again). */
export const TARGET_MEMO_ENTRIES = 4096;
/** Slots of the memo's doorkeeper (a power of two): hashes of targets asked for once. */
const DOORKEEPER_SLOTS = 4096;
const DOORKEEPER_SEED = 0x811c9dc5;
const SEP = '\u0001';

/**
 * `resolveTarget` / `resolveInterceptedTarget` with a memory: a target depends only on the request
 * target, the Host header (when routes are chosen by Host), the tunnel's authority and the
 * runtime, so the same ones again get the same Target (its URL shared, never changed) without
 * parsing a URL, from the second time it is asked for. A new runtime (config reload) starts afresh;
 * refusals are not remembered.
 */
export function createTargetMemo(
  maxEntries = TARGET_MEMO_ENTRIES,
): (rawUrl: string, host: string | undefined, authority: string | undefined, rt: Runtime) => Target {
  const targets = new LRUCache<string, Target>({ max: Math.max(1, maxEntries) });
  // A target is remembered the second time it is asked for. One asked for once (a distinct id in
  // every call, a fill of distinct URLs) would only push remembered ones out and keep its parsed
  // URL alive: 4,096 of them held about 2.7 MB of heap. A hash collision only remembers one early.
  const seenOnce = new Uint32Array(DOORKEEPER_SLOTS);
  let runtime: Runtime | null = null;
  return (rawUrl, host, authority, rt) => {
    if (rt !== runtime) {
      targets.clear();
      seenOnce.fill(0);
      runtime = rt;
    }
    // A request target never holds SEP (a control character: the parser refuses it).
    const key =
      authority !== undefined
        ? `${SEP}${authority}${SEP}${rawUrl}`
        : host === undefined || rt.routeByHost.size === 0
          ? rawUrl
          : `${rawUrl}${SEP}${host.toLowerCase()}`;
    let target = targets.get(key);
    if (target === undefined) {
      const resolved =
        authority !== undefined
          ? resolveInterceptedTarget(rawUrl, authority, rt)
          : resolveTarget(rawUrl, host, rt);
      const origin = resolved.url.origin;
      // The route's own string when it is the same origin: the guard compares the two.
      target = { ...resolved, origin: resolved.route?.origin === origin ? resolved.route.origin : origin };
      const hash = fnv1a(key, DOORKEEPER_SEED);
      const slot = hash & (DOORKEEPER_SLOTS - 1);
      if (seenOnce[slot] === hash) {
        seenOnce[slot] = 0;
        targets.set(key, target);
      } else seenOnce[slot] = hash;
    }
    return target;
  };
}
