/**
 * `npm run bench:compression`: bytes over the wire from the origin with and without upstream
 * compression (cache.upstreamCompression), for a ~50 KB JSON body. One loopback origin that
 * honours Accept-Encoding (gzip level 6 and brotli quality 4, as an API server would compress on
 * the fly), sidecache in-process, N sequential requests with distinct URLs (each one a miss, so
 * each one crosses the origin link). Origin→sidecache bytes are counted on the origin's sockets
 * (headers included); sidecache→client bytes on the client's. Prints a table.
 *
 *   npm run bench:compression [-- --requests 200]
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { startTestSidecache } from '../../test/helpers/sidecache.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '200' } } });
const N = Math.max(1, Math.min(10_000, Number(values.requests) || 200));

const BODY = Buffer.from(
  JSON.stringify(
    Array.from({ length: 150 }, (_, i) => ({
      id: 1_000_000 + i,
      node_id: createHash('sha256').update(`node${i}`).digest('base64'),
      head_sha: createHash('sha1').update(`head${i}`).digest('hex'),
      name: `repository-${i}`,
      full_name: `example-org/repository-${i}`,
      private: i % 5 === 0,
      description: `Service ${i}: handles ${['billing', 'search', 'auth', 'mail'][i % 4]} for the platform`,
      stargazers_count: (i * 37) % 1000,
      open_issues_count: (i * 13) % 50,
      topics: ['api', `team-${i % 9}`],
      updated_at: new Date(1_700_000_000_000 + i * 3_600_000).toISOString(),
    })),
  ),
);
const GZIP = gzipSync(BODY, { level: 6 });
const BR = brotliCompressSync(BODY, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } });

interface Counted {
  url: string;
  bytes(): number;
  close(): Promise<void>;
}

async function startOrigin(): Promise<Counted> {
  const sockets = new Set<Socket>();
  let closedBytes = 0;
  const server = http.createServer((req, res) => {
    const ae = String(req.headers['accept-encoding'] ?? '');
    const coding = ae.includes('br') ? 'br' : ae.includes('gzip') ? 'gzip' : null;
    const body = coding === 'br' ? BR : coding === 'gzip' ? GZIP : BODY;
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': 'max-age=60',
      vary: 'Accept-Encoding',
      'content-length': body.length,
      ...(coding ? { 'content-encoding': coding } : {}),
    });
    res.end(body);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => {
      closedBytes += s.bytesWritten;
      sockets.delete(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bytes: () => closedBytes + [...sockets].reduce((n, s) => n + s.bytesWritten, 0),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One GET, body read to the end; notes the client socket so its bytes can be read later. */
function get(
  base: string,
  path: string,
  headers: http.OutgoingHttpHeaders,
  agent: http.Agent,
  sockets: Set<Socket>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = http.get({ host: u.hostname, port: u.port, path, headers, agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve());
      res.on('error', reject);
    });
    req.on('socket', (s) => sockets.add(s));
    req.on('error', reject);
  });
}

interface Row {
  mode: string;
  originBytes: number;
  clientBytes: number;
  ms: number;
}

async function run(
  mode: string,
  compression: boolean,
  clientHeaders: http.OutgoingHttpHeaders,
  codings: ('br' | 'gzip')[] = ['br', 'gzip'],
): Promise<Row> {
  const origin = await startOrigin();
  const sc = await startTestSidecache({
    routes: [{ name: 'api', origin: origin.url }],
    cache: { upstreamCompression: compression, upstreamCodings: codings },
  });
  const base = sc.url;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const warm = new Set<Socket>();
  const measured = new Set<Socket>();
  try {
    // Warm the pool (one request, not counted), then N misses with distinct URLs.
    await get(base, `/api/warm?mode=${encodeURIComponent(mode)}`, clientHeaders, agent, warm);
    const originBefore = origin.bytes();
    const clientBefore = [...warm].reduce((n, s) => n + s.bytesRead, 0);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await get(base, `/api/repos?page=${i}`, clientHeaders, agent, measured);
    const ms = performance.now() - t0;
    const clientBytes =
      [...new Set([...warm, ...measured])].reduce((n, s) => n + s.bytesRead, 0) - clientBefore;
    return { mode, originBytes: (origin.bytes() - originBefore) / N, clientBytes: clientBytes / N, ms };
  } finally {
    agent.destroy();
    await sc.close();
    await origin.close();
  }
}

const rows = [
  await run('off, identity client', false, {}),
  await run('on, identity client', true, {}),
  await run('on, gzip client', true, { 'accept-encoding': 'gzip' }),
  await run('on, br client', true, { 'accept-encoding': 'br' }),
  await run('on (gzip only), gzip client', true, { 'accept-encoding': 'gzip' }, ['gzip']),
];
const off = rows[0]!.originBytes;
console.log(
  `upstream compression, ${N} misses of a ${BODY.length}-byte JSON body (gzip ${GZIP.length}, br ${BR.length})\n`,
);
console.log(
  '| upstream compression, client   | origin→sidecache bytes/req | vs off | sidecache→client bytes/req | ms for all |',
);
console.log(
  '| ------------------------------ | -------------------------- | ------ | -------------------------- | ---------- |',
);
for (const r of rows) {
  console.log(
    `| ${r.mode.padEnd(30)} | ${Math.round(r.originBytes).toString().padStart(26)} | ${`${((r.originBytes / off) * 100).toFixed(1)}%`.padStart(6)} | ${Math.round(r.clientBytes).toString().padStart(26)} | ${r.ms.toFixed(0).padStart(10)} |`,
  );
}
