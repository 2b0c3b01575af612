// Reference for the cache-hit scenario: the least a cache in one Node process can do. A reverse
// route to the origin; a GET whose response says max-age is kept in a Map by URL; a hit writes the
// stored headers plus Age and Cache-Status from memory. No Vary, credentials, request directives,
// validation, Server-Timing, metrics or logs: what a Node cache costs before any of the work a
// correct shared cache does, i.e. how close to bare-node any Node cache can get.
// Usage: node --import tsx bench/targets/node-min-cache.ts --listen 127.0.0.1:0 --route NAME=ORIGIN
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { badGateway, parseListen, serveBenchTarget } from '../harness/child-contract.js';
import { matchRoute, parseRoutes } from './route-table.js';

interface Stored {
  readonly status: number;
  /** Flat [name, value, ...] as node:http's writeHead takes it. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  readonly storedAt: number;
  readonly lifeMs: number;
}

const { values } = parseArgs({
  options: { listen: { type: 'string' }, route: { type: 'string', multiple: true, default: [] } },
});
const listen = parseListen(values.listen);
const routes = parseRoutes(values.route);
const pools = new Map(routes.map((r) => [r.origin, new Pool(r.origin, { keepAliveTimeout: 60_000 })]));
const store = new Map<string, Stored>();
const MAX_AGE = /(?:^|,)\s*max-age=(\d+)/;

const server = createServer((req, res) => {
  const target = matchRoute(routes, req.url ?? '/');
  if (!target || req.method !== 'GET') {
    res.writeHead(404, { 'content-length': '0' }).end();
    return;
  }
  const key = target.route.origin + target.path;
  const hit = store.get(key);
  const now = Date.now();
  if (hit !== undefined && now - hit.storedAt < hit.lifeMs) {
    const age = Math.floor((now - hit.storedAt) / 1000);
    const ttl = Math.floor((hit.lifeMs - (now - hit.storedAt)) / 1000);
    res.writeHead(hit.status, [...hit.headers, 'age', String(age), 'cache-status', `min; hit; ttl=${ttl}`]);
    res.end(hit.body);
    return;
  }
  pools
    .get(target.route.origin)!
    .request({ path: target.path, method: 'GET' })
    .then(async (originRes) => {
      const body = Buffer.from(await originRes.body.arrayBuffer());
      const headers: string[] = [];
      for (const [name, value] of Object.entries(originRes.headers)) {
        if (value === undefined || name === 'connection' || name === 'keep-alive') continue;
        headers.push(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const maxAge = MAX_AGE.exec(String(originRes.headers['cache-control'] ?? ''));
      if (originRes.statusCode === 200 && maxAge) {
        store.set(key, {
          status: 200,
          headers,
          body,
          storedAt: Date.now(),
          lifeMs: Number(maxAge[1]) * 1000,
        });
      }
      res.writeHead(originRes.statusCode, [...headers, 'cache-status', 'min; fwd=miss']);
      res.end(body);
    })
    // Surfaces as a 502 that the harness counts as a failed run; logged so the cause is visible.
    .catch((err: Error) => badGateway('node-min-cache', res, err));
});
serveBenchTarget(server, listen);
