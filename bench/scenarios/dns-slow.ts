// The DNS scenario of `npm run bench`: an origin whose name is served by a nameserver that takes
// 250 ms to answer. A client that resolves the name for every request (as an app whose resolver
// does not cache) against the same requests through sidecache (`--dns` at that nameserver), which
// resolves once, caches by TTL and prefetches. Measured side by side in one run.
import { type ChildProcess, spawn } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startDnsServer } from '../../test/helpers/dns-server.js';
import { DnsZone } from '../../test/helpers/dns-zone.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const NAME = 'api.slow-dns.bench.example';
export const DNS_DELAY_MS = 250;

interface Series {
  readonly client: string;
  readonly timesMs: readonly number[];
}

function get(host: string, port: number, path: string, hostHeader: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = http.get({ host, port, path, agent: false, headers: { host: hostHeader } }, (res) => {
      res.resume();
      res.on('end', () => resolvePromise(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function summarise(s: Series): string[] {
  const [first = 0, ...rest] = s.timesMs;
  const sorted = [...rest].sort((a, b) => a - b);
  const mean = rest.length ? rest.reduce((a, b) => a + b, 0) / rest.length : Number.NaN;
  const p50 = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  const total = s.timesMs.reduce((a, b) => a + b, 0);
  return [
    s.client,
    String(s.timesMs.length),
    first.toFixed(1),
    mean.toFixed(2),
    p50.toFixed(2),
    (total / 1000).toFixed(2),
  ];
}

async function startSidecache(
  dnsAddress: string,
  originPort: number,
): Promise<{ child: ChildProcess; port: number }> {
  const cli = join(repoRoot, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error('sidecache not built (run npm run build)');
  const child = spawn(
    process.execPath,
    [
      cli,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--dns',
      dnsAddress,
      '--route',
      `api=http://${NAME}:${originPort}`,
      // The name resolves to loopback, which the egress policy admits only by address.
      '--allow',
      '127.0.0.1/32',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const port = await new Promise<number>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecache did not start:\n${out}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"sidecache started"'));
      if (line) {
        clearTimeout(timer);
        resolvePromise(Number((JSON.parse(line) as { listen: string }).listen.split(':').pop()));
      }
    });
    child.once('exit', (code) => reject(new Error(`sidecache exited with ${code}:\n${out}`)));
  });
  child.stdout?.resume();
  return { child, port };
}

export async function runSlowDnsBench(opts: { requests: number }): Promise<{ table: string; ok: boolean }> {
  const zone = new DnsZone({ [NAME]: { A: ['127.0.0.1'], ttl: 300 } });
  zone.delayMs = DNS_DELAY_MS;
  const nameserver = await startDnsServer(zone);
  const origin = http.createServer((_req, res) => res.end('{"ok":true}'));
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  const originPort = (origin.address() as AddressInfo).port;
  let sc: Awaited<ReturnType<typeof startSidecache>> | null = null;
  try {
    // 1. The app's own resolution on every request (no resolver cache), new connection each time.
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([nameserver.address]);
    const direct: number[] = [];
    for (let i = 0; i < opts.requests; i++) {
      const t0 = performance.now();
      const [address] = await resolver.resolve4(NAME);
      const status = await get(address as string, originPort, '/item', `${NAME}:${originPort}`);
      if (status !== 200) throw new Error(`direct request answered ${status}`);
      direct.push(performance.now() - t0);
    }
    // 2. Through sidecache: the app connects to sidecache (loopback); sidecache resolves and pools.
    sc = await startSidecache(nameserver.address, originPort);
    const viaSidecache: number[] = [];
    for (let i = 0; i < opts.requests; i++) {
      const t0 = performance.now();
      const status = await get('127.0.0.1', sc.port, '/api/item', `127.0.0.1:${sc.port}`);
      if (status !== 200) throw new Error(`request through sidecache answered ${status}`);
      viaSidecache.push(performance.now() - t0);
    }
    const queries = zone.count(NAME, 'A');
    const rows = [
      ['client', 'requests', 'first ms', 'mean ms (rest)', 'p50 ms (rest)', 'total s'],
      summarise({ client: 'direct, resolving each time', timesMs: direct }),
      summarise({ client: 'through sidecache (--dns)', timesMs: viaSidecache }),
    ];
    const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
    const fmt = (r: string[]) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
    const totalDirect = direct.reduce((a, b) => a + b, 0);
    const totalSc = viaSidecache.reduce((a, b) => a + b, 0);
    const table = [
      `slow DNS: nameserver answers in ${DNS_DELAY_MS} ms; ${opts.requests} sequential GETs, a new client connection each`,
      fmt(rows[0] as string[]),
      fmt((rows[0] as string[]).map((_, c) => '-'.repeat(widths[c] ?? 0))),
      ...rows.slice(1).map((r) => fmt(r as string[])),
      `total time ratio (direct / sidecache): ${(totalDirect / totalSc).toFixed(1)}x; ` +
        `A queries the nameserver saw: ${queries} (${opts.requests} direct + sidecache's)`,
    ].join('\n');
    return { table, ok: true };
  } finally {
    if (sc) {
      sc.child.kill('SIGTERM');
      await once(sc.child, 'exit');
    }
    origin.closeAllConnections();
    origin.close();
    await nameserver.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
  runSlowDnsBench({ requests: quick ? 5 : 20 }).then(
    ({ table }) => console.log(table),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
