// The routing the reference proxies share with sidecache's command line:
// `--route NAME=ORIGIN` sends `/NAME/rest` to `ORIGIN/rest` (reverse route), and an absolute-form
// request `GET http://ORIGIN-HOST/rest` is forwarded when ORIGIN is one of the routes (forward proxy).

/** The route every proxy in the bench is started with: `--route origin=ORIGIN`. */
export const ROUTE_NAME = 'origin';

export interface Route {
  readonly name: string;
  /** `http://host:port`, no trailing slash. */
  readonly origin: string;
}

export interface OriginTarget {
  readonly route: Route;
  /** Path and query to send to the origin, always starting with `/`. */
  readonly path: string;
}

export function parseRoutes(values: readonly string[]): Route[] {
  if (values.length === 0) throw new Error('--route: at least one NAME=ORIGIN is required');
  return values.map((value, i) => {
    const eq = value.indexOf('=');
    const name = value.slice(0, eq);
    const origin = value.slice(eq + 1);
    if (eq <= 0 || !/^[a-z0-9-]+$/.test(name)) {
      throw new Error(`--route[${i}]: "${value}" is not NAME=ORIGIN with NAME in [a-z0-9-]`);
    }
    const url = URL.canParse(origin) ? new URL(origin) : null;
    if (url?.protocol !== 'http:' || url.pathname !== '/') {
      throw new Error(`--route[${i}]: "${origin}" is not an http origin (http://host:port)`);
    }
    return { name, origin: url.origin };
  });
}

/** Finds where a request-target goes, or null when no route matches. */
export function matchRoute(routes: readonly Route[], requestTarget: string): OriginTarget | null {
  if (requestTarget.startsWith('http://')) {
    const url = URL.canParse(requestTarget) ? new URL(requestTarget) : null;
    const route = url && routes.find((r) => r.origin === url.origin);
    return route && url ? { route, path: url.pathname + url.search } : null;
  }
  for (const route of routes) {
    const prefix = `/${route.name}`;
    if (requestTarget === prefix) return { route, path: '/' };
    if (requestTarget.startsWith(`${prefix}/`) || requestTarget.startsWith(`${prefix}?`)) {
      const rest = requestTarget.slice(prefix.length);
      return { route, path: rest.startsWith('?') ? `/${rest}` : rest };
    }
  }
  return null;
}
