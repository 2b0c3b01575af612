// The origin every target is measured against: a plain node:http server with keep-alive that answers
// every GET with the same 1 KiB JSON body. The first path segment picks the caching headers, so a
// scenario can ask for an uncacheable or a cacheable response:
//   /no-store/...  Cache-Control: no-store            (pass-through: a cache must not help)
//   /fresh/...     Cache-Control: public, max-age=3600 (a cache may serve it from memory)
//   /fresh-gzip/...  as /fresh/, gzip-coded when Accept-Encoding names gzip (Vary: Accept-Encoding)
//   /small/...     Cache-Control: public, max-age=3600, a 32-byte body (the entries sweep stores
//                  up to a million of these)
//   /sized/N/...   Cache-Control: public, max-age=3600, a body of N bytes (1 to 16 MiB; the memory
//                  bench fills a cache with these)
//   anything else  no Cache-Control
// A leading `/origin` segment is dropped first (`/origin/fresh/x` is `/fresh/x`): Squid, as an
// accelerator without a rewrite helper, forwards the route prefix as is.
// Usage: node --import tsx bench/targets/origin.ts [--listen 127.0.0.1:0]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { parseListen, serveBenchTarget } from '../harness/child-contract.js';
import { fixedJsonBody } from './body.js';

const CACHE_CONTROL_BY_SEGMENT: Readonly<Record<string, string>> = {
  'no-store': 'no-store',
  fresh: 'public, max-age=3600',
  'fresh-gzip': 'public, max-age=3600',
  small: 'public, max-age=3600',
};
const ROUTE_PREFIX = '/origin/';

const { values } = parseArgs({ options: { listen: { type: 'string' } } });
const listen = parseListen(values.listen);
const body = fixedJsonBody();
const contentLength = String(body.length);
const smallBody = Buffer.from(`${JSON.stringify({ ok: true, pad: 'x'.repeat(11) })}\n`);
const smallLength = String(smallBody.length);
/** /fresh-gzip/ answers this when the request's Accept-Encoding names gzip (Vary: Accept-Encoding). */
const gzipBody = gzipSync(body);
const gzipLength = String(gzipBody.length);
const MAX_SIZED_BYTES = 16 * 1024 * 1024;
/** The /sized/N/ bodies, one per size asked for (the memory bench uses a handful of sizes). */
const sizedBodies = new Map<number, Buffer>();
function sizedBody(path: string): Buffer | null {
  const n = Number(path.split('/', 3)[2]);
  if (!Number.isInteger(n) || n < 1 || n > MAX_SIZED_BYTES) return null;
  let b = sizedBodies.get(n);
  if (b === undefined) {
    if (sizedBodies.size >= 64) sizedBodies.clear();
    b = Buffer.alloc(n, 0x61);
    sizedBodies.set(n, b);
  }
  return b;
}

const server = createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' }).end();
    return;
  }
  const url = req.url ?? '/';
  const path = url.startsWith(ROUTE_PREFIX) ? url.slice(ROUTE_PREFIX.length - 1) : url;
  const segment = path.split('/', 2)[1] ?? '';
  if (segment === 'sized') {
    const sized = sizedBody(path);
    if (sized === null) {
      res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(sized.length),
      'cache-control': 'public, max-age=3600',
    });
    res.end(req.method === 'HEAD' ? undefined : sized);
    return;
  }
  const gzip = segment === 'fresh-gzip' && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const reply = segment === 'small' ? smallBody : gzip ? gzipBody : body;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': segment === 'small' ? smallLength : gzip ? gzipLength : contentLength,
  };
  if (segment === 'fresh-gzip') headers['vary'] = 'Accept-Encoding';
  if (gzip) headers['content-encoding'] = 'gzip';
  const cacheControl = CACHE_CONTROL_BY_SEGMENT[segment];
  if (cacheControl) headers['cache-control'] = cacheControl;
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : reply);
});
// Pooled connections from the proxies sit idle while other targets are measured: keep them open
// longer than a whole benchmark run, so no run starts on a connection the origin is closing.
server.requestTimeout = 0;
serveBenchTarget(server, listen);
