/**
 * Saved time from the cache, end to end: front → guard → cache → upstream assembled here as
 * server.ts will once the cache is wired in, against a real origin that takes 50 ms.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createCacheStage, policyByRoute } from '../../../src/cache/index.js';
import { parseConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import { createFront, type Front } from '../../../src/front/front-server.js';
import { createGuardStage } from '../../../src/guard/guard-stage.js';
import { createMetrics, type Metrics } from '../../../src/metrics/metrics.js';
import { type MetricFamily, parsePromText, sumOf } from '../../../src/metrics/prom-text.js';
import { createServerTiming } from '../../../src/metrics/server-timing.js';
import { createPipeline } from '../../../src/pipeline.js';
import { createOriginFetch } from '../../../src/upstream/fetch-origin.js';
import { createUpstreamPools, type UpstreamPools } from '../../../src/upstream/pools.js';
import { send } from '../../helpers/client.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';

const DELAY_MS = 50;
const BODY = 'cached body '.repeat(100);

describe('saved time from cache answers', () => {
  let origin: TestOrigin;
  let front: Front;
  let pools: UpstreamPools;
  let metrics: Metrics;
  let url: string;
  let families: Map<string, MetricFamily>;
  let hitTiming: string | string[] | undefined;
  let hitCacheStatus: string | string[] | undefined;

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      await new Promise((r) => setTimeout(r, DELAY_MS));
      const cc = req.url === '/b' ? 'no-store' : 'max-age=60'; // /nostore/b arrives as /b
      res.writeHead(200, { 'cache-control': cc, 'content-type': 'text/plain' }).end(BODY);
    });
    const config = parseConfig({
      routes: [
        { name: 'cached', origin: origin.url },
        { name: 'nostore', origin: origin.url, prefix: '/nostore/' },
      ],
    });
    const runtime = compileRuntime(config);
    metrics = createMetrics(runtime);
    pools = createUpstreamPools(config.upstream, { onConnect: metrics.observeConnect });
    const pipeline = createPipeline({
      guard: createGuardStage({ allow: runtime.allow, viaToken: 'sc-test' }),
      cache: createCacheStage({}, { policyFor: policyByRoute({}) }),
      upstream: createOriginFetch(pools, { defaults: config.upstream, via: null, forwardedHeaders: false }),
    });
    front = createFront({
      runtime,
      pipeline,
      observers: [metrics.observeExchange],
      responseHeaders: createServerTiming(runtime),
    });
    front.server.listen(0, '127.0.0.1');
    await once(front.server, 'listening');
    url = `http://127.0.0.1:${(front.server.address() as AddressInfo).port}`;

    assert.equal((await send(url, '/cached/a')).status, 200); // miss, stored
    const hit = await send(url, '/cached/a');
    assert.equal(hit.text(), BODY);
    hitTiming = hit.headers['server-timing'];
    hitCacheStatus = hit.headers['cache-status'];
    for (let i = 0; i < 3; i++) await send(url, '/nostore/b');
    families = parsePromText(await metrics.registry.metrics());
  });

  after(async () => {
    front?.server.closeAllConnections();
    await new Promise<void>((resolve) => (front ? front.server.close(() => resolve()) : resolve()));
    await pools?.close(0);
    await origin?.close();
  });

  test('a hit credits the recorded fetch time minus the time to serve (≈ the origin delay)', () => {
    const saved = sumOf(families, 'sidecache_saved_seconds_total', { kind: 'cache', route: 'cached' });
    assert.ok(saved >= (DELAY_MS * 0.6) / 1000, `saved ${saved} s ≥ most of the ${DELAY_MS} ms fetch`);
    assert.ok(saved < 1, `saved ${saved} s is bounded by one fetch`);
    assert.equal(sumOf(families, 'sidecache_saved_seconds_total', { kind: 'cache', route: 'nostore' }), 0);
  });

  test('the hit avoided one upstream request and its body bytes', () => {
    assert.equal(sumOf(families, 'sidecache_upstream_requests_avoided_total', { route: 'cached' }), 1);
    assert.equal(sumOf(families, 'sidecache_upstream_requests_avoided_total', { route: 'nostore' }), 0);
    assert.equal(sumOf(families, 'sidecache_saved_body_bytes_total', { route: 'cached' }), BODY.length);
    assert.equal(origin.requests.length, 4);
  });

  test('responses the cache could not store are counted by route and reason', () => {
    const noStore = sumOf(families, 'sidecache_cache_responses_not_stored_total', { route: 'nostore' });
    assert.equal(noStore, 3);
    assert.ok(
      sumOf(families, 'sidecache_cache_responses_not_stored_total', {
        route: 'nostore',
        reason: 'no-store',
      }) >= 1,
    );
  });

  test('requests carry the cache outcome label', () => {
    assert.equal(sumOf(families, 'sidecache_requests_total', { route: 'cached', cache: 'miss' }), 1);
    assert.equal(sumOf(families, 'sidecache_requests_total', { route: 'cached', cache: 'hit' }), 1);
  });

  test('a hit has Server-Timing cache;desc="hit" and total, no upstream; Cache-Status says hit', () => {
    const header = String(hitTiming);
    assert.match(header, /^cache;dur=\d+\.\d{1,3};desc="hit", total;dur=\d+\.\d{1,3};desc="to headers"$/);
    assert.match(String(hitCacheStatus), /sidecache; hit/);
  });
});
