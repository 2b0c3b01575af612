/**
 * What keeps a web page in a browser on the same machine out of the admin listener:
 *   - DNS rebinding: a page on evil.example whose name later resolves to 127.0.0.1 reaches the
 *     listener with `Host: evil.example`. Only Hosts that name the listener are served: an IP
 *     literal (a rebound page's Host is always its name, never an address; Prometheus scraping a pod
 *     IP sends one), `localhost`, the name the listener is bound to, and `admin.allowedHosts`.
 *   - Cross-site requests: a page may POST to http://127.0.0.1:9090/purge without reading the answer.
 *     A state-changing call (anything but GET and HEAD) is refused when the browser says it comes
 *     from elsewhere: `Sec-Fetch-Site` other than same-origin or none, or an `Origin` that is not
 *     the listener itself (`null` included). Clients that are not browsers send neither.
 */

import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { compileHostMatcher } from '../config/runtime.js';
import type { ErrorCode } from '../errors.js';

export interface BrowserRefusal {
  readonly error: ErrorCode;
  readonly message: string;
}

/** `[v6]:port`, `host:port` or `host`: the host part, or null when the header is not a host. */
function hostOf(header: string): string | null {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]/@\s]+)(?::\d{1,5})?$/.exec(header);
  if (!m) return null;
  const host = m[1] as string;
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/** The origin (`http://host[:port]`) a Host header names, for comparing with an `Origin`. */
function originOf(host: string): string | null {
  try {
    return new URL(`http://${host}`).origin;
  } catch {
    return null;
  }
}

/** `names`: the listener's own bound name and `admin.allowedHosts` (patterns as in `allow`). */
export function createBrowserGuard(names: readonly string[]) {
  const named = compileHostMatcher(['localhost', ...names]);

  function hostRefusal(header: string | undefined): BrowserRefusal | null {
    // HTTP/1.0 without Host: not a browser (browsers always send one).
    if (header === undefined) return null;
    const host = hostOf(header);
    if (host !== null && (isIP(host) !== 0 || named(host) !== null)) return null;
    return {
      error: 'SC_ERR_ADMIN_HOST_NOT_ALLOWED',
      message:
        `Host "${header}" does not name this admin listener; use its address or localhost, ` +
        'or list the name in admin.allowedHosts',
    };
  }

  function crossSiteRefusal(req: IncomingMessage): BrowserRefusal | null {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return {
        error: 'SC_ERR_ADMIN_CROSS_SITE',
        message: `Sec-Fetch-Site: ${site}: ${req.method} ${req.url} is only accepted from the admin page itself`,
      };
    }
    const origin = req.headers.origin;
    if (origin === undefined) return null;
    const self = req.headers.host === undefined ? null : originOf(req.headers.host);
    if (self !== null && origin.toLowerCase() === self) return null;
    return {
      error: 'SC_ERR_ADMIN_CROSS_SITE',
      message: `Origin ${origin}: ${req.method} ${req.url} is only accepted from the admin listener's own origin`,
    };
  }

  /** Why `req` is refused, or null. `probe`: /healthz and /readyz, served to any Host. */
  return (req: IncomingMessage, probe: boolean): BrowserRefusal | null => {
    if (!probe) {
      const refused = hostRefusal(req.headers.host);
      if (refused) return refused;
    }
    if (req.method === 'GET' || req.method === 'HEAD') return null;
    return crossSiteRefusal(req);
  };
}
