// HTTPS with a new connection per request (what Python `requests.get` without a Session does),
// direct vs through sidecache with interception, in one run. The origin (bench/https/origin.ts)
// adds `delayMs` to every TLS handshake round trip. The client is this process: for each request a
// fresh TCP connection and TLS handshake (https.request with agent: false), either straight to the
// origin or inside a fresh CONNECT tunnel to sidecache. Sidecache reaches the origin over its warm
// pool, so the delayed origin handshake is paid once, not per request.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { parseListening } from '../child-contract.js';
import type { ChildGroup } from '../children.js';

export interface HttpsBenchOptions {
  readonly children: ChildGroup;
  readonly repoRoot: string;
  readonly requests: number;
  readonly delayMs: number;
  readonly readyTimeoutMs: number;
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

function connectTunnel(proxyPort: number, authority: string): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'CONNECT',
      path: authority,
      agent: false,
    });
    req.once('connect', (res, socket) =>
      res.statusCode === 200 ? resolve(socket) : reject(new Error(`CONNECT answered ${res.statusCode}`)),
    );
    req.once('response', (res) => reject(new Error(`CONNECT answered ${res.statusCode}`)));
    req.once('error', reject);
    req.end();
  });
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

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function runHttpsNewConnection(opts: HttpsBenchOptions): Promise<HttpsBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-https-'));
  try {
    const originCaDir = join(dir, 'origin-ca');
    const origin = opts.children.spawn({
      label: 'https-origin',
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        join(opts.repoRoot, 'bench/https/origin.ts'),
        '--listen',
        '127.0.0.1:0',
        '--ca-dir',
        originCaDir,
        '--handshake-delay-ms',
        String(opts.delayMs),
      ],
    });
    const originPort = await origin.waitForLine(parseListening, opts.readyTimeoutMs);
    const originCa = readFileSync(join(originCaDir, 'ca.pem'), 'utf8');
    const authority = `localhost:${originPort}`;

    const port = await freePort();
    const adminPort = await freePort();
    // From source (tsx), so a stale dist/ never runs: startup time is not measured here.
    const cli = ['--import', 'tsx', join(opts.repoRoot, 'src/cli.ts')];
    const scCaDir = join(dir, 'sidecache-ca');
    const sc = opts.children.spawn({
      label: 'sidecache-intercept',
      command: process.execPath,
      args: [
        ...cli,
        'serve',
        '--listen',
        `127.0.0.1:${port}`,
        '--admin-listen',
        `127.0.0.1:${adminPort}`,
        '--route',
        `origin=https://${authority}`,
        '--intercept',
        'localhost',
        // `localhost` resolves to loopback, which the egress policy admits only by address.
        '--allow',
        '127.0.0.1/32',
        '--ca-dir',
        scCaDir,
        '--ca-file',
        join(originCaDir, 'ca.pem'),
        '--log-level',
        'warn',
      ],
    });
    try {
      await waitForReady(`http://127.0.0.1:${adminPort}/readyz`, opts.readyTimeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${sc.outputTail()}`);
    }
    const scCa = readFileSync(join(scCaDir, 'ca.pem'), 'utf8');

    const direct = await series('direct', opts.requests, () =>
      getOnce(
        () => tlsOn({ host: '127.0.0.1', port: originPort, servername: 'localhost', ca: originCa }),
        authority,
        '/item',
      ),
    );
    const through = await series('sidecache-intercept', opts.requests, () =>
      getOnce(
        async () =>
          tlsOn({ socket: await connectTunnel(port, authority), servername: 'localhost', ca: scCa }),
        authority,
        '/item',
      ),
    );
    // What sidecache did, read from its own metrics rather than assumed.
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const sum = (re: RegExp): number =>
      [...metrics.matchAll(re)].reduce((total, m) => total + Number(m[1] ?? 0), 0);
    const hits = sum(/^sidecache_cache_lookups_total\{[^}]*result="hit"[^}]*\} (\S+)$/gm);
    const upstream = sum(/^sidecache_upstream_requests_total\{[^}]*\} (\S+)$/gm);
    await sc.stop();
    await origin.stop();
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

async function waitForReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

export function formatHttpsResult(r: HttpsBenchResult): string {
  const rows = r.series.map(
    (s) =>
      `  ${s.name.padEnd(22)} ${String(s.requests).padStart(5)} ${s.totalMs.toFixed(0).padStart(9)} ` +
      `${s.meanMs.toFixed(2).padStart(9)} ${s.p50Ms.toFixed(2).padStart(8)} ${s.p99Ms.toFixed(2).padStart(8)}`,
  );
  return [
    `https-new-connection: sequential HTTPS GETs, a new TCP+TLS connection per request; origin TLS handshake +${r.delayMs} ms per round trip`,
    `  ${'target'.padEnd(22)} ${'reqs'.padStart(5)} ${'total ms'.padStart(9)} ${'mean ms'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`,
    ...rows,
    `  direct / sidecache (total time): ${r.speedup.toFixed(1)}x`,
    `  note: ${r.note}`,
  ].join('\n');
}
