/**
 * The admin listener: /healthz (the process is alive), /readyz (listening and not draining),
 * /metrics (Prometheus text format), / (status page), /status.json (its data), /ca.pem (the
 * interception CA certificate) and POST /purge. Loopback by
 * default; never proxies anything.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { PurgeHandler } from './purge.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML, statusSummary } from './status-page.js';

export interface AdminOptions {
  readonly registry: Registry;
  readonly ready: () => { ready: boolean; why: string };
  /** `POST /purge` (purge.ts); absent: 404. */
  readonly purge?: PurgeHandler;
  /** The interception CA certificate for /ca.pem, or null when there is none. */
  readonly caCertPem?: () => Promise<string | null>;
}

export function createAdminServer(opts: AdminOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/purge' && opts.purge) return opts.purge(req, res);
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
      case '/status.json':
        statusSummary(opts.registry).then(
          (summary) => {
            res
              .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
              .end(`${JSON.stringify(summary)}\n`);
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
      default:
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('not found; try /, /status.json, /metrics, /healthz, /readyz or /ca.pem\n');
    }
  });
}
