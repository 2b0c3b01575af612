/**
 * Two routes to one origin with different cache policies (issue 19): each keeps its own entries,
 * keyed by the policy that stored them. A route without a TTL neither replaces the entry a `ttlMs`
 * route stored for the same URL, nor is answered from one that its own policy would not have
 * stored (`ignoreNoStore`). Real origin on loopback counting its answers; sidecache in-process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import { send } from '../../helpers/client.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

describe('two routes to one origin with different cache policies', () => {
  let origin: TestOrigin;
  let sc: TestSidecache;
  let n = 0;

  before(async () => {
    origin = await startOrigin((req, res) => {
      n++;
      const cc = req.url?.startsWith('/no-store') ? 'no-store, max-age=60' : 'max-age=1';
      res.writeHead(200, { 'cache-control': cc, 'content-type': 'text/plain' });
      res.end(String(n));
    });
    sc = await startTestSidecache({
      routes: [
        { name: 'kept', origin: origin.url, cache: { ttlMs: 60_000, ignoreNoStore: true } },
        { name: 'plain', origin: origin.url },
      ],
      upstream: { warm: { connections: 0, minIdle: 0 } },
    } as never);
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  const hit = (r: { headers: Record<string, unknown> }) => /; hit/.test(String(r.headers['cache-status']));

  it('a route that honours no-store is not answered from the entry a route ignoring it stored', async () => {
    const kept = await send(sc.url, '/kept/no-store/a');
    const plain = await send(sc.url, '/plain/no-store/a');
    assert.notEqual(plain.text(), kept.text(), 'plain went to the origin');
    assert.equal(hit(plain), false);
    const again = await send(sc.url, '/kept/no-store/a');
    assert.equal(again.text(), kept.text());
    assert.equal(hit(again), true);
  });

  it('a route without a TTL does not replace the entry the ttlMs route stored', async () => {
    const kept = await send(sc.url, '/kept/short/b');
    assert.equal(hit(await send(sc.url, '/kept/short/b')), true);
    // The origin's max-age=1 runs out: the plain route fetches and stores its own answer.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const plain = await send(sc.url, '/plain/short/b');
    assert.notEqual(plain.text(), kept.text());
    const keptAgain = await send(sc.url, '/kept/short/b');
    assert.equal(hit(keptAgain), true);
    assert.equal(keptAgain.text(), kept.text(), 'the ttlMs route still has its own entry');
  });

  it('check-config says the entries are kept apart; routes that agree share entries', () => {
    const runtime = compileRuntime(
      parseConfig({
        routes: [
          { name: 'a', origin: 'https://api.example.com', cache: { ttlMs: 1000 } },
          { name: 'b', origin: 'https://api.example.com' },
          { name: 'c', origin: 'https://other.example.com' },
          { name: 'd', origin: 'https://other.example.com', prefix: '/d2/' },
        ],
      }),
    );
    const [a, b, c, d] = runtime.routes;
    assert.ok(a?.cacheKeyTag !== undefined && b?.cacheKeyTag !== undefined);
    assert.notEqual(a?.cacheKeyTag, b?.cacheKeyTag);
    assert.equal(c?.cacheKeyTag, undefined);
    assert.equal(d?.cacheKeyTag, undefined);
    assert.match(
      runtime.explain(),
      /cache entries kept apart from other routes to https:\/\/api\.example\.com/,
    );
  });
});
