// Reference contender: the smallest useful pass-through on an undici Pool per origin.
// pool.request + pipeline(body, res); hop-by-hop headers dropped both ways (undici refuses them).
// Usage: node --import tsx bench/targets/undici-pool-passthrough.ts --listen 127.0.0.1:0 --route NAME=ORIGIN
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { type Dispatcher, Pool } from 'undici';
import { badGateway, parseListen, serveBenchTarget } from '../child-contract.js';
import { matchRoute, parseRoutes } from './route-table.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

const { values } = parseArgs({
  options: { listen: { type: 'string' }, route: { type: 'string', multiple: true, default: [] } },
});
const listen = parseListen(values.listen);
const routes = parseRoutes(values.route);
const pools = new Map(routes.map((r) => [r.origin, new Pool(r.origin, { keepAliveTimeout: 60_000 })]));

const server = createServer((req, res) => {
  const target = matchRoute(routes, req.url ?? '/');
  if (!target) {
    res.writeHead(404, { 'content-length': '0' }).end();
    return;
  }
  const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
  const hasBody = method !== 'GET' && method !== 'HEAD';
  pools
    .get(target.route.origin)!
    .request({ path: target.path, method, headers: endToEnd(req.headers), body: hasBody ? req : null })
    .then(async (originRes) => {
      res.writeHead(originRes.statusCode, endToEnd(originRes.headers));
      await pipeline(originRes.body, res);
    })
    // Surfaces as a 502 that the harness counts as a failed run; logged so the cause is visible.
    .catch((err: Error) => badGateway('undici-pool-passthrough', res, err));
});
serveBenchTarget(server, listen);
