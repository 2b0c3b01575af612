// Reference contenders: the smallest useful pass-through on an undici Pool per origin, in the two
// shapes undici offers. Default: pool.request + pipeline(body, res) (an intermediate Readable per
// response). With --stream: pool.stream, whose factory writes the head and returns the
// ServerResponse itself as the body's destination (no intermediate Readable; the response is passed
// as `opaque`, so no closure per request). Hop-by-hop headers are dropped both ways (undici refuses them).
// Usage: node --import tsx bench/targets/undici-pool.ts --listen 127.0.0.1:0 --route NAME=ORIGIN [--stream]
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { type Dispatcher, Pool } from 'undici';
import { badGateway, parseListen, serveBenchTarget } from '../harness/child-contract.js';
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
  options: {
    listen: { type: 'string' },
    route: { type: 'string', multiple: true, default: [] },
    stream: { type: 'boolean', default: false },
  },
});
const listen = parseListen(values.listen);
const routes = parseRoutes(values.route);
const pools = new Map(routes.map((r) => [r.origin, new Pool(r.origin, { keepAliveTimeout: 60_000 })]));
const label = values.stream ? 'undici-pool-stream' : 'undici-pool';

/** pool.stream's factory: the head goes out, and the body is written straight into the response. */
function intoResponse({
  statusCode,
  headers,
  opaque: res,
}: Dispatcher.StreamFactoryData<ServerResponse>): ServerResponse {
  res.writeHead(statusCode, endToEnd(headers as IncomingHttpHeaders));
  return res;
}

/** pool.stream's callback; an error after the head has already destroyed the response (truncation shows). */
function streamed(err: Error | null, { opaque }: Dispatcher.StreamData<ServerResponse>): void {
  if (err) badGateway(label, opaque, err);
}

const server = createServer((req, res) => {
  const target = matchRoute(routes, req.url ?? '/');
  if (!target) {
    res.writeHead(404, { 'content-length': '0' }).end();
    return;
  }
  const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const pool = pools.get(target.route.origin)!;
  const options = { path: target.path, method, headers: endToEnd(req.headers), body: hasBody ? req : null };
  if (values.stream) {
    pool.stream({ ...options, opaque: res }, intoResponse, streamed);
    return;
  }
  pool
    .request(options)
    .then(async (originRes) => {
      res.writeHead(originRes.statusCode, endToEnd(originRes.headers));
      await pipeline(originRes.body, res);
    })
    // Surfaces as a 502 that the harness counts as a failed run; logged so the cause is visible.
    .catch((err: Error) => badGateway(label, res, err));
});
serveBenchTarget(server, listen);
