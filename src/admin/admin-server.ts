/**
 * The admin listener: /healthz (the process is alive), /readyz (listening and not draining),
 * /metrics (Prometheus text format), / (status page), /status.json (its data), /ca.pem (the
 * interception CA certificate), /advice.json (the policy advisor's suggestions), GET /cache (what is cached), POST /purge and POST /reload. Loopback by
 * default; never proxies anything. With `admin.token` set, everything but /healthz and /readyz
 * needs `Authorization: Bearer TOKEN` (401 otherwise). A Host that does not name the listener, or
 * a cross-site POST, is refused with 403 before anything else (browser-guard.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { type Advice, suggestionLine } from '../advisor/suggest.js';
import { createBrowserGuard } from './browser-guard.js';
import type { CacheListHandler } from './cache-list.js';
import type { PurgeHandler } from './purge.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML, statusSummary } from './status-page.js';

export interface AdminOptions {
  readonly registry: Registry;
  readonly ready: () => { ready: boolean; why: string };
  /** `POST /purge` (purge.ts); absent: 404. */
  readonly purge?: PurgeHandler;
  /** `GET /cache`: what is cached (cache-list.ts); absent: 404. */
  readonly cacheList?: CacheListHandler;
  /** The policy advisor's suggestions (`/advice.json`, and on the status page). */
  readonly advice?: () => Advice;
  /** The interception CA certificate for /ca.pem, or null when there is none. */
  readonly caCertPem?: () => Promise<string | null>;
  /**
   * `POST /reload`: reloads the config from its sources, as SIGHUP does; 200 with what changed, or
   * 422 with the problems (the running config kept). Absent (no sources to re-read): 404.
   */
  readonly reload?: () => { result: 'ok' | 'rejected' };
  /** `admin.token`: required as a bearer token on every path but the probes; null or absent: open. */
  readonly token?: string | null;
  /** Host names served besides IP literals and localhost: the bound name and `admin.allowedHosts`. */
  readonly allowedHosts?: readonly string[];
}

/** Paths that stay open with a token set: orchestrators probe them without credentials. */
const PROBES: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export const ADMIN_REALM = 'sidecache-admin';

/**
 * Checks `Authorization: Bearer TOKEN` against the configured token. Both sides are hashed first,
 * so timingSafeEqual always compares equal-length digests and the time taken says nothing about
 * the token's length or content.
 */
export function createBearerCheck(token: string): (req: IncomingMessage) => boolean {
  const expected = createHash('sha256').update(token).digest();
  return (req) => {
    const header = req.headers.authorization;
    if (typeof header !== 'string') return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) return false;
    const given = createHash('sha256')
      .update(m[1] as string)
      .digest();
    return timingSafeEqual(given, expected);
  };
}

export function createAdminServer(opts: AdminOptions): Server {
  const authorized = opts.token ? createBearerCheck(opts.token) : null;
  const browserRefusal = createBrowserGuard(opts.allowedHosts ?? []);
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const refused = browserRefusal(req, PROBES.has(path));
    if (refused) {
      res
        .writeHead(403, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(`${JSON.stringify(refused)}\n`);
      return;
    }
    if (authorized && !PROBES.has(path) && !authorized(req)) {
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="${ADMIN_REALM}"`,
          'content-type': 'text/plain',
          'cache-control': 'no-store',
        })
        .end('admin token required: Authorization: Bearer TOKEN (admin.token)\n');
      return;
    }
    if (path === '/purge' && opts.purge) return opts.purge(req, res);
    if (path === '/cache' && opts.cacheList) return opts.cacheList(req, res);
    if (path === '/reload' && opts.reload) {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('use POST /reload\n');
        return;
      }
      const outcome = opts.reload();
      res
        .writeHead(outcome.result === 'ok' ? 200 : 422, {
          'content-type': 'application/json',
          'cache-control': 'no-store',
        })
        .end(`${JSON.stringify(outcome)}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok\n');
        return;
      case '/readyz': {
        const { ready, why } = opts.ready();
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          .end(`${JSON.stringify({ ready, why })}\n`);
        return;
      }
      case '/metrics':
        opts.registry.metrics().then(
          (text) => {
            res
              .writeHead(200, { 'content-type': opts.registry.contentType, 'cache-control': 'no-store' })
              .end(text);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`);
          },
        );
        return;
      case '/':
        res
          .writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            'content-security-policy': STATUS_PAGE_CSP,
          })
          .end(STATUS_PAGE_HTML);
        return;
      case '/advice.json':
        if (!opts.advice) break;
        res
          .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          .end(`${JSON.stringify(opts.advice())}\n`);
        return;
      case '/status.json':
        statusSummary(opts.registry).then(
          (summary) => {
            const suggestions = opts.advice?.().suggestions.map(suggestionLine) ?? [];
            res
              .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
              .end(`${JSON.stringify({ ...summary, suggestions })}\n`);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`status failed: ${String(err)}\n`);
          },
        );
        return;
      case '/ca.pem':
        (opts.caCertPem?.() ?? Promise.resolve(null)).then(
          (pem) => {
            if (pem === null) {
              res
                .writeHead(404, { 'content-type': 'text/plain' })
                .end('no interception CA yet: set "intercept" or run "sidecache ca"\n');
              return;
            }
            res
              .writeHead(200, {
                'content-type': 'application/x-pem-file',
                'content-disposition': 'attachment; filename="sidecache-ca.pem"',
                'cache-control': 'no-store',
              })
              .end(pem);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`CA unavailable: ${String(err)}\n`);
          },
        );
        return;
    }
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end('not found; try /, /status.json, /advice.json, /metrics, /cache, /healthz, /readyz or /ca.pem\n');
  });
}
