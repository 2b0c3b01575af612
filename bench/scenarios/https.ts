// `npm run bench:https` (and `npm run bench -- --https`): HTTPS with a new connection per request
// (what Python `requests.get` without a Session does), direct vs through sidecache with
// interception, in one run. The origin (bench/targets/https-origin.ts)
// adds `delayMs` to every TLS handshake round trip. The client is this process: for each request a
// fresh TCP connection and TLS handshake (https.request with agent: false), either straight to the
// origin or inside a fresh CONNECT tunnel to sidecache. Sidecache reaches the origin over its warm
// pool, so the delayed origin handshake is paid once, not per request.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { connectThrough } from '../../test/helpers/connect.js';
import { type ChildGroup, createChildGroup } from '../harness/children.js';
import { metric, repoRoot } from '../harness/harness.js';
import { columnLines } from '../harness/report.js';
import { HIT_LOOKUPS, startInterceptingSidecache } from '../targets/sidecache.js';

export interface HttpsBenchOptions {
  readonly requests: number;
  readonly delayMs: number;
}

export interface HttpsSeries {
  readonly name: 'direct' | 'sidecache-intercept';
  readonly requests: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface HttpsBenchResult {
  readonly delayMs: number;
  readonly cacheWired: boolean;
  readonly series: readonly HttpsSeries[];
  /** direct total time / sidecache total time. */
  readonly speedup: number;
  /** Whether sidecache answered from its cache (read from its /metrics). */
  readonly note: string;
}

type Connector = () => Promise<tls.TLSSocket>;

function getOnce(connect: Connector, hostHeader: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    connect().then((socket) => {
      const req = https.request(
        {
          host: 'localhost',
          path,
          headers: { host: hostHeader, connection: 'close' },
          createConnection: () => socket,
        },
        (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
          });
          res.on('end', () =>
            res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`)),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    }, reject);
  });
}

async function connectTunnel(proxyUrl: string, authority: string): Promise<import('node:net').Socket> {
  const tunnel = await connectThrough(proxyUrl, authority);
  if (!('socket' in tunnel)) throw new Error(`CONNECT answered ${tunnel.status}`);
  return tunnel.socket;
}

function tlsOn(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(options, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function series(
  name: HttpsSeries['name'],
  n: number,
  once: () => Promise<number>,
): Promise<HttpsSeries> {
  for (let i = 0; i < 5; i++) await once(); // warm-up: leaf minted, pool warm, JIT
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once();
    times.push(performance.now() - t);
  }
  const totalMs = performance.now() - t0;
  times.sort((a, b) => a - b);
  const at = (q: number): number => times[Math.min(times.length - 1, Math.floor(q * times.length))] as number;
  return { name, requests: n, totalMs, meanMs: totalMs / n, p50Ms: at(0.5), p99Ms: at(0.99) };
}

export async function runHttpsNewConnection(
  children: ChildGroup,
  opts: HttpsBenchOptions,
): Promise<HttpsBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-https-'));
  try {
    const { origin, sidecache: sc } = await startInterceptingSidecache(children, {
      dir,
      handshakeDelayMs: opts.delayMs,
      label: 'sidecache-intercept',
    });
    const originCa = readFileSync(origin.caFile, 'utf8');
    const authority = origin.authority;
    const scCa = readFileSync(sc.caFile, 'utf8');

    const direct = await series('direct', opts.requests, () =>
      getOnce(
        () => tlsOn({ host: '127.0.0.1', port: origin.port, servername: 'localhost', ca: originCa }),
        authority,
        '/item',
      ),
    );
    const through = await series('sidecache-intercept', opts.requests, () =>
      getOnce(
        async () =>
          tlsOn({
            socket: await connectTunnel(sc.url, authority),
            servername: 'localhost',
            ca: scCa,
          }),
        authority,
        '/item',
      ),
    );
    // What sidecache did, read from its own metrics rather than assumed.
    const hits = (await metric(sc.adminUrl, HIT_LOOKUPS)) ?? 0;
    const upstream = (await metric(sc.adminUrl, 'sidecache_upstream_requests_total')) ?? 0;
    await sc.child.stop();
    await origin.child.stop();
    return {
      delayMs: opts.delayMs,
      cacheWired: hits > 0,
      series: [direct, through],
      speedup: direct.totalMs / through.totalMs,
      note:
        `the origin sends Cache-Control: public, max-age=60; through sidecache: ${hits} cache hits, ` +
        `${upstream} upstream requests for ${opts.requests} client requests (each client request still pays its ` +
        'own new TLS handshake with sidecache)',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatHttpsResult(r: HttpsBenchResult): string {
  const ms = (v: number, digits = 2) => v.toFixed(digits);
  return [
    `https-new-connection: sequential HTTPS GETs, a new TCP+TLS connection per request; origin TLS handshake +${r.delayMs} ms per round trip`,
    ...columnLines(
      ['target', 'reqs', 'total ms', 'mean ms', 'p50 ms', 'p99 ms'],
      r.series.map((s) => [
        s.name,
        String(s.requests),
        ms(s.totalMs, 0),
        ms(s.meanMs),
        ms(s.p50Ms),
        ms(s.p99Ms),
      ]),
      1,
    ).map((line) => `  ${line}`),
    `  direct / sidecache (total time): ${r.speedup.toFixed(1)}x`,
    `  note: ${r.note}`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const children = createChildGroup(repoRoot);
  process.on('exit', () => children.killAllNow());
  const requests = Number(process.env.BENCH_HTTPS_REQUESTS ?? 200);
  const delayMs = Number(process.env.BENCH_HTTPS_DELAY_MS ?? 20);
  let code = 0;
  try {
    console.log(formatHttpsResult(await runHttpsNewConnection(children, { requests, delayMs })));
  } catch (err) {
    console.error(`bench:https failed: ${(err as Error).message}`);
    code = 1;
  }
  await children.stopAll();
  process.exit(code);
}
