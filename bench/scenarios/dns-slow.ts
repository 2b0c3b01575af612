// The slow-DNS scenario of `npm run bench`: an origin whose name only a nameserver that takes 250 ms
// to answer knows. A client that resolves the name for every request (as an app whose resolver does
// not cache) against the same requests through sidecache (`--dns` at that nameserver), which
// resolves once, caches by TTL and prefetches. Measured side by side in one run.
import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { send } from '../../test/helpers/client.js';
import { startDnsServer } from '../../test/helpers/dns-server.js';
import { DnsZone } from '../../test/helpers/dns-zone.js';
import type { ChildGroup } from '../harness/children.js';
import { columnLines } from '../harness/report.js';
import { startSidecache } from '../targets/sidecache.js';

const NAME = 'api.slow-dns.bench.example';
export const DNS_DELAY_MS = 250;

async function get(server: string, path: string, host: string): Promise<void> {
  const res = await send(server, path, { headers: { host } });
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
}

async function timed(requests: number, once: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  return times;
}

function summarise(client: string, times: readonly number[]): string[] {
  const [first = 0, ...rest] = times;
  const sorted = [...rest].sort((a, b) => a - b);
  const mean = rest.length ? rest.reduce((a, b) => a + b, 0) / rest.length : Number.NaN;
  const p50 = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  const total = times.reduce((a, b) => a + b, 0) / 1000;
  return [client, String(times.length), first.toFixed(1), mean.toFixed(2), p50.toFixed(2), total.toFixed(2)];
}

export async function runSlowDnsBench(
  children: ChildGroup,
  opts: { requests: number },
): Promise<{ table: string }> {
  const zone = new DnsZone({ [NAME]: { A: ['127.0.0.1'], ttl: 300 } });
  zone.delayMs = DNS_DELAY_MS;
  const nameserver = await startDnsServer(zone);
  const origin = http.createServer((_req, res) => res.end('{"ok":true}'));
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  const originPort = (origin.address() as AddressInfo).port;
  const authority = `${NAME}:${originPort}`;
  try {
    // 1. The app's own resolution on every request (no resolver cache), a new connection each time.
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([nameserver.address]);
    const direct = await timed(opts.requests, async () => {
      const [address] = await resolver.resolve4(NAME);
      await get(`http://${address}:${originPort}`, '/item', authority);
    });
    // 2. Through sidecache: the app connects to sidecache (loopback); sidecache resolves and pools.
    const sc = await startSidecache(children, {
      // The name resolves to loopback, which the egress policy admits only by address.
      serveArgs: [
        '--dns',
        nameserver.address,
        '--route',
        `api=http://${authority}`,
        '--allow',
        '127.0.0.1/32',
      ],
    });
    const through = await timed(opts.requests, () => get(sc.url, '/api/item', new URL(sc.url).host));
    await sc.child.stop();
    const ratio = direct.reduce((a, b) => a + b, 0) / through.reduce((a, b) => a + b, 0);
    return {
      table: [
        `slow DNS: nameserver answers in ${DNS_DELAY_MS} ms; ${opts.requests} sequential GETs, a new client connection each`,
        ...columnLines(
          ['client', 'requests', 'first ms', 'mean ms (rest)', 'p50 ms (rest)', 'total s'],
          [summarise('direct, resolving each time', direct), summarise('through sidecache (--dns)', through)],
          1,
        ),
        `total time ratio (direct / sidecache): ${ratio.toFixed(1)}x; ` +
          `A queries the nameserver saw: ${zone.count(NAME, 'A')} (${opts.requests} direct + sidecache's)`,
      ].join('\n'),
    };
  } finally {
    origin.closeAllConnections();
    origin.close();
    await nameserver.stop();
  }
}
