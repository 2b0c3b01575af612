/**
 * Two sidecache instances in one process: the stages publish on process-global diagnostics
 * channels, and each instance's metrics count only its own stages' events (upstream connects, DNS
 * lookups, keep-warm, the cache's upstream coding, config reloads).
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type MetricFamily, parsePromText, sumOf } from '../../../src/metrics/prom-text.js';
import { send } from '../../helpers/client.js';
import { waitFor } from '../../helpers/clock.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const HOST = 'origin.test';
const N = 3;
const PLAIN = Buffer.from('sidecache '.repeat(100));
const GZIPPED = gzipSync(PLAIN);

async function scrape(sc: TestSidecache): Promise<Map<string, MetricFamily>> {
  return parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text());
}

describe('two instances in one process', () => {
  let origin: TestOrigin;
  let a: TestSidecache;
  let b: TestSidecache;
  let routeOrigin: string;
  let fa: Map<string, MetricFamily>;
  let fb: Map<string, MetricFamily>;

  before(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === '/gz') {
        res.writeHead(200, {
          'content-type': 'text/plain',
          'content-encoding': 'gzip',
          'cache-control': 'max-age=60',
        });
        res.end(GZIPPED);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok');
    });
    routeOrigin = `http://${HOST}:${new URL(origin.url).port}`;
    const common = {
      routes: [{ name: 'r', origin: routeOrigin }],
      dns: { hosts: { [HOST]: '127.0.0.1' } },
    };
    // A: cold pools, one connection per origin; B: keeps one connection warm and serves nothing.
    a = await startTestSidecache({
      ...common,
      upstream: { connectionsPerOrigin: 1, warm: { connections: 0, minIdle: 0 } },
    });
    b = await startTestSidecache({ ...common, upstream: { warm: { connections: 1, minIdle: 0 } } });
    const warm = await b.instance.warmStart;
    assert.equal(warm.opened, 1, 'B opened its warm connection');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < N; i++) assert.equal((await send(a.url, `/r/item/${i}`, { agent })).status, 200);
      // A stores a gzip body: the cache stage reports its coded and decoded sizes.
      const gz = await send(a.url, '/r/gz', { agent, headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gz.status, 200);
    } finally {
      agent.destroy();
    }
    // The stored gzip body is checked (decoded off the event loop) after the client has its answer:
    // A counts its sizes then, so the scrape waits for that count.
    await waitFor(
      async () => sumOf(await scrape(a), 'sidecache_upstream_identity_bytes_total', {}) > 0,
      5_000,
      "A's count of the stored gzip body",
    );
    assert.equal(a.instance.reload(() => a.instance.runtime()).result, 'ok');
    fa = await scrape(a);
    fb = await scrape(b);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await origin?.close();
  });

  test('upstream connections: each instance counts the ones it opened', () => {
    const opened = (f: Map<string, MetricFamily>) =>
      sumOf(f, 'sidecache_upstream_connections_opened_total', { origin: routeOrigin });
    assert.equal(opened(fa), 1, 'A opened one connection for its requests');
    assert.equal(opened(fb), 1, 'B opened one warm connection');
    assert.equal(sumOf(fa, 'sidecache_upstream_connections_ahead_total', { origin: routeOrigin }), 0);
    assert.equal(sumOf(fb, 'sidecache_upstream_connections_ahead_total', { origin: routeOrigin }), 1);
    assert.equal(sumOf(fa, 'sidecache_upstream_requests_total', { origin: routeOrigin }), N + 1);
    assert.equal(sumOf(fb, 'sidecache_upstream_requests_total', { origin: routeOrigin }), 0);
  });

  test('DNS lookups: each instance counts its own', () => {
    const lookups = (f: Map<string, MetricFamily>) => sumOf(f, 'sidecache_dns_lookups_total', {});
    assert.equal(lookups(fa), 1, 'A resolved the origin once, for its one connection');
    assert.equal(lookups(fb), 1, 'B resolved it once, for its warm connection');
  });

  test('upstream coding: counted by the instance whose cache stored the body', () => {
    const identity = (f: Map<string, MetricFamily>) =>
      sumOf(f, 'sidecache_upstream_identity_bytes_total', {});
    assert.equal(identity(fa), PLAIN.length);
    assert.equal(sumOf(fa, 'sidecache_upstream_compressed_bytes_total', {}), GZIPPED.length);
    assert.equal(identity(fb), 0);
  });

  test('config reloads: only the instance reloaded counts one', () => {
    assert.equal(sumOf(fa, 'sidecache_config_reloads_total', { result: 'ok' }), 1);
    assert.equal(sumOf(fb, 'sidecache_config_reloads_total', { result: 'ok' }), 0);
  });
});
