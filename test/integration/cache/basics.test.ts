/**
 * The cache stage against a real origin: storing, reusing, Age and Cache-Status, request
 * directives, HEAD, and the client's own conditional requests.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatHttpDate } from '../../../src/cache/http-date.js';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

describe('cache stage: store and reuse (RFC 9111 §3, §4)', () => {
  test('§4.2 a fresh stored response is served from cache with Age and Cache-Status hit', async (t) => {
    const h = await startHarness(t, (_req, res, n) =>
      send(res, 200, { 'cache-control': 'max-age=100', 'content-type': 'text/plain' }, `v${n}`),
    );
    const first = await h.get('/a');
    assert.equal(first.text, 'v1');
    assert.equal(first.source, 'origin');
    assert.match(cacheStatus(first), /^sidecache; fwd=uri-miss; fwd-status=200; ttl=\d+$/);
    assert.equal(first.ex.cache?.outcome, 'miss');
    assert.equal(first.ex.cache?.stored, true);
    await h.stage.idle();

    h.clock.advance(30_000);
    const second = await h.get('/a');
    assert.equal(second.text, 'v1');
    assert.equal(second.source, 'cache');
    assert.equal(second.status, 200);
    assert.match(String(second.headers['age']), /^3[01]$/);
    assert.match(cacheStatus(second), /^sidecache; hit; ttl=(69|70)$/);
    assert.equal(second.ex.cache?.outcome, 'hit');
    assert.equal(second.ex.reason, 'cache_hit');
    assert.ok((second.ex.cache?.savedMs ?? -1) >= 0);
    assert.equal(second.ex.cache?.savedBytes, 2);
    assert.equal(second.headers['content-length'], '2');
    assert.equal(h.origin.count('/a'), 1);
  });

  test('§5.2 directive names are case-insensitive (MAX-AGE stores, No-Store does not)', async (t) => {
    const h = await startHarness(t, (req, res, n) =>
      send(res, 200, { 'cache-control': req.url === '/upper' ? 'MAX-AGE=100' : 'No-Store' }, `v${n}`),
    );
    await h.get('/upper');
    await h.get('/nostore');
    await h.stage.idle();
    assert.equal((await h.get('/upper')).text, 'v1');
    const ns = await h.get('/nostore');
    assert.equal(ns.text, 'v2');
    assert.match(cacheStatus(ns), /detail="not stored: no-store \(set ignoreNoStore with ttlMs\)"/);
    assert.equal(h.origin.count('/upper'), 1);
  });

  test('§4.2.2 heuristic freshness from Last-Modified', async (t) => {
    const h = await startHarness(t, (_req, res, n) =>
      send(res, 200, { 'last-modified': formatHttpDate(Date.now() - 1_000_000) }, `v${n}`),
    );
    await h.get('/h');
    await h.stage.idle();
    h.clock.advance(50_000); // within 10% of ~1000 s
    assert.equal((await h.get('/h')).text, 'v1');
    h.clock.advance(100_000); // past it
    const r = await h.get('/h');
    assert.equal(r.ex.cache?.outcome === 'hit', false);
  });

  test('§5.2.2.10 s-maxage overrides max-age for a shared cache', async (t) => {
    const h = await startHarness(t, (_req, res, n) =>
      send(res, 200, { 'cache-control': 'max-age=0, s-maxage=100' }, `v${n}`),
    );
    await h.get('/s');
    await h.stage.idle();
    assert.equal((await h.get('/s')).text, 'v1');
  });

  test('§5.1 Age from the origin: the first value counts, invalid values are ignored', async (t) => {
    const h = await startHarness(t, (req, res, n) =>
      send(
        res,
        200,
        { 'cache-control': 'max-age=100', age: req.url === '/list' ? '90, 5' : 'soon' },
        `v${n}`,
      ),
    );
    await h.get('/list');
    await h.get('/invalid');
    await h.stage.idle();
    h.clock.advance(15_000);
    // 90 + 15 > 100: the first value counted, so the entry is stale now.
    assert.notEqual((await h.get('/list')).ex.cache?.outcome, 'hit');
    // An invalid Age is ignored: the entry is reusable (undici treats it as infinitely old).
    const inv = await h.get('/invalid');
    assert.equal(inv.ex.cache?.outcome, 'hit');
    assert.equal(inv.text, 'v1');
  });

  test('§4 HEAD is answered from a stored GET, without a body', async (t) => {
    const h = await startHarness(t, (_req, res, n) =>
      send(res, 200, { 'cache-control': 'max-age=100' }, `body-${n}`),
    );
    await h.get('/x');
    await h.stage.idle();
    const head = await h.get('/x', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    assert.equal(head.headers['content-length'], '6');
    assert.equal(head.ex.cache?.outcome, 'hit');
    assert.equal(h.origin.total(), 1);
  });

  test('a HEAD miss goes to the origin as HEAD and stores nothing', async (t) => {
    const h = await startHarness(t, (_req, res) => send(res, 200, { 'cache-control': 'max-age=100' }, 'x'));
    const head = await h.get('/x', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(h.origin.seen[0]?.method, 'HEAD');
    assert.equal(head.ex.cache?.stored, false);
  });
});

describe('cache stage: request directives (RFC 9111 §5.2.1)', () => {
  const etagOrigin = (_req: unknown, res: Parameters<typeof send>[0], n: number) =>
    send(res, 200, { 'cache-control': 'max-age=100', etag: '"e1"' }, `v${n}`);

  test('§5.2.1.4 request no-cache revalidates with the origin', async (t) => {
    const h = await startHarness(t, (req, res, n) => {
      if (req.headers['if-none-match'] === '"e1"')
        return send(res, 304, { 'cache-control': 'max-age=100', etag: '"e1"' });
      return etagOrigin(req, res, n);
    });
    await h.get('/a');
    await h.stage.idle();
    const r = await h.get('/a', { headers: { 'cache-control': 'No-Cache' } });
    assert.equal(r.text, 'v1');
    assert.equal(r.ex.cache?.outcome, 'revalidated');
    assert.equal(r.ex.reason, 'cache_revalidated');
    assert.equal(h.origin.seen[1]?.headers['if-none-match'], '"e1"');
    assert.match(cacheStatus(r), /fwd=request; fwd-status=304/);
  });

  test('§5.2.1.1 request max-age smaller than the age goes to the origin', async (t) => {
    const h = await startHarness(t, etagOrigin);
    await h.get('/a');
    await h.stage.idle();
    h.clock.advance(10_000);
    assert.equal(
      (await h.get('/a', { headers: { 'cache-control': 'max-age=20' } })).ex.cache?.outcome,
      'hit',
    );
    assert.notEqual(
      (await h.get('/a', { headers: { 'cache-control': 'max-age=5' } })).ex.cache?.outcome,
      'hit',
    );
    assert.equal(h.origin.total(), 2);
  });

  test('§5.2.1.3 min-fresh asks for more remaining freshness', async (t) => {
    const h = await startHarness(t, etagOrigin);
    await h.get('/a');
    await h.stage.idle();
    h.clock.advance(80_000);
    assert.notEqual(
      (await h.get('/a', { headers: { 'cache-control': 'min-fresh=30' } })).ex.cache?.outcome,
      'hit',
    );
  });

  test('§5.2.1.2 max-stale accepts a stale response', async (t) => {
    const h = await startHarness(t, etagOrigin);
    await h.get('/a');
    await h.stage.idle();
    h.clock.advance(150_000);
    const r = await h.get('/a', { headers: { 'cache-control': 'max-stale=60' } });
    assert.equal(r.ex.cache?.outcome, 'stale');
    assert.equal(r.ex.reason, 'cache_stale');
    assert.equal(r.text, 'v1');
    assert.equal(h.origin.total(), 1);
  });

  test('§5.2.1.7 only-if-cached: 504 on a miss, the stored response on a hit', async (t) => {
    const h = await startHarness(t, etagOrigin);
    const miss = await h.get('/a', { headers: { 'cache-control': 'only-if-cached' } });
    assert.equal(miss.status, 504);
    assert.equal(miss.source, 'synth');
    assert.equal(miss.ex.reason, 'cache_only_if_cached');
    assert.equal(h.origin.total(), 0);
    await h.get('/a');
    await h.stage.idle();
    const hit = await h.get('/a', { headers: { 'cache-control': 'only-if-cached' } });
    assert.equal(hit.status, 200);
    h.clock.advance(200_000);
    const stale = await h.get('/a', { headers: { 'cache-control': 'only-if-cached' } });
    assert.equal(stale.status, 504);
    assert.equal(h.origin.total(), 1);
  });

  test('§5.2.1.5 request no-store: the response is not stored', async (t) => {
    const h = await startHarness(t, etagOrigin);
    const r = await h.get('/a', { headers: { 'cache-control': 'no-store' } });
    assert.equal(r.ex.cache?.stored, false);
    assert.match(cacheStatus(r), /detail=request-no-store/);
    await h.get('/a');
    assert.equal(h.origin.total(), 2);
  });
});

describe("cache stage: the client's conditional requests (RFC 9111 §4.3.2)", () => {
  test('§4.3.2 If-None-Match matching a fresh entry gets 304 from the cache', async (t) => {
    const h = await startHarness(t, (_req, res) =>
      send(
        res,
        200,
        { 'cache-control': 'max-age=100', etag: '"abc"', 'content-type': 'text/plain' },
        'hello',
      ),
    );
    const first = await h.get('/c', { headers: { 'if-none-match': '"abc"' } });
    // On a miss the cache fetches the full response to fill itself (the client's validator is not forwarded).
    assert.equal(first.status, 200);
    assert.equal(h.origin.seen[0]?.headers['if-none-match'], undefined);
    await h.stage.idle();
    const r = await h.get('/c', { headers: { 'if-none-match': 'W/"zzz", "abc"' } });
    assert.equal(r.status, 304);
    assert.equal(r.text, '');
    assert.equal(r.headers['etag'], '"abc"');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.ex.cache?.outcome, 'hit');
    const other = await h.get('/c', { headers: { 'if-none-match': '"old"' } });
    assert.equal(other.status, 200);
    assert.equal(other.text, 'hello');
    assert.equal(h.origin.total(), 1);
  });

  test('§4.3.2 If-Modified-Since at or after Last-Modified gets 304', async (t) => {
    const lm = formatHttpDate(Date.now() - 3_600_000);
    const h = await startHarness(t, (_req, res) =>
      send(res, 200, { 'cache-control': 'max-age=100', 'last-modified': lm }, 'x'),
    );
    await h.get('/m');
    await h.stage.idle();
    assert.equal((await h.get('/m', { headers: { 'if-modified-since': lm } })).status, 304);
    assert.equal(
      (await h.get('/m', { headers: { 'if-modified-since': formatHttpDate(Date.now() - 7_200_000) } }))
        .status,
      200,
    );
  });
});

test('RFC 9111 §4.2 an Expires with names in the wrong case still gives freshness', async (t) => {
  const h = await startHarness(t, (_req, res, n) =>
    send(res, 200, { expires: formatHttpDate(h.clock.now() + 3_600_000).toUpperCase() }, `v${n}`),
  );
  await h.get('/upper');
  await h.stage.idle();
  const r = await h.get('/upper');
  assert.equal(r.text, 'v1');
  assert.equal(r.ex.cache?.outcome, 'hit');
  assert.equal(h.origin.count('/upper'), 1);
});
