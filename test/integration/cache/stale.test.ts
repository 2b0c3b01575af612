/** Serving stale (RFC 5861, RFC 9111 §4.2.4) against a real origin. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

test('RFC 5861 §3 stale-while-revalidate: stale served at once, exactly one background refresh', async (t) => {
  let releaseRefresh!: () => void;
  const refreshGate = new Promise<void>((r) => {
    releaseRefresh = r;
  });
  const h = await startHarness(t, async (_req, res, n) => {
    if (n > 1) await refreshGate; // the refresh hangs until the test lets it go
    send(res, 200, { 'cache-control': 'max-age=1, stale-while-revalidate=100', etag: `"v${n}"` }, `v${n}`);
  });
  await h.get('/swr');
  await h.stage.idle();
  h.clock.advance(5_000);
  // 20 concurrent requests while the refresh is held at the origin: all answered from cache.
  const replies = await Promise.all(Array.from({ length: 20 }, () => h.get('/swr')));
  for (const r of replies) {
    assert.equal(r.text, 'v1');
    assert.equal(r.source, 'cache');
    assert.equal(r.ex.cache?.outcome, 'stale');
    assert.equal(r.ex.cache?.detail, 'stale-while-revalidate');
    assert.equal(r.ex.reason, 'cache_stale');
    assert.match(cacheStatus(r), /^sidecache; hit; ttl=-\d+; detail=stale-while-revalidate$/);
  }
  assert.equal((await h.stage.stats()).refreshing, 1);
  releaseRefresh();
  await h.stage.idle();
  assert.equal(h.origin.count('/swr'), 2, 'exactly one background refresh');
  assert.equal(h.origin.seen[1]?.headers['if-none-match'], '"v1"');
  const after = await h.get('/swr');
  assert.equal(after.text, 'v2');
  assert.equal(after.ex.cache?.outcome, 'hit');
});

test('RFC 5861 §4 stale-if-error: stale served when the origin answers 5xx', async (t) => {
  const h = await startHarness(t, (_req, res, n) =>
    n === 1
      ? send(res, 200, { 'cache-control': 'max-age=1, stale-if-error=600' }, 'good')
      : send(res, 503, { 'content-type': 'text/plain' }, 'down'),
  );
  await h.get('/sie');
  await h.stage.idle();
  h.clock.advance(60_000);
  const r = await h.get('/sie');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'good');
  assert.equal(r.ex.cache?.outcome, 'stale');
  assert.equal(r.ex.cache?.detail, 'stale-if-error');
  assert.match(cacheStatus(r), /fwd=stale; fwd-status=503/);
  // Past the window the 503 is passed on.
  h.clock.advance(600_000);
  assert.equal((await h.get('/sie')).status, 503);
});

test('RFC 9111 §4.2.4 stale served when the origin is unreachable (origin closed)', async (t) => {
  const h = await startHarness(t, (_req, res) =>
    send(res, 200, { 'cache-control': 'max-age=1', etag: '"a"' }, 'kept'),
  );
  await h.get('/down');
  await h.stage.idle();
  await h.origin.close();
  h.clock.advance(3_600_000);
  const r = await h.get('/down');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'kept');
  assert.equal(r.ex.cache?.outcome, 'stale');
  assert.equal(r.ex.cache?.detail, 'unreachable');
  assert.match(cacheStatus(r), /detail="?unreachable:SC_ERR_UPSTREAM_CONNECT/);
});

test('serving stale when unreachable can be switched off; a 5xx without stale-if-error is passed on', async (t) => {
  const h = await startHarness(
    t,
    (_req, res, n) =>
      n === 1 ? send(res, 200, { 'cache-control': 'max-age=1' }, 'x') : send(res, 500, {}, 'err'),
    { options: { serveStaleIfUnreachable: false } },
  );
  await h.get('/p');
  await h.stage.idle();
  h.clock.advance(10_000);
  assert.equal((await h.get('/p')).status, 500);
  await h.origin.close();
  await assert.rejects(h.get('/p'), { code: 'SC_ERR_UPSTREAM_CONNECT' });
});

test('options.staleIfErrorMs gives a default stale-if-error window', async (t) => {
  const h = await startHarness(
    t,
    (_req, res, n) =>
      n === 1 ? send(res, 200, { 'cache-control': 'max-age=1' }, 'x') : send(res, 502, {}, 'bad'),
    { options: { staleIfErrorMs: 60_000 } },
  );
  await h.get('/d');
  await h.stage.idle();
  h.clock.advance(30_000);
  assert.equal((await h.get('/d')).text, 'x');
});

test('RFC 9111 §4.2.4 stale served when the origin closes the connection without answering', async (t) => {
  const h = await startHarness(t, (req, res, n) => {
    if (n === 1) {
      const cc = req.url === '/close-mr' ? 'max-age=1, must-revalidate' : 'max-age=1';
      send(res, 200, { 'cache-control': cc }, 'kept');
    } else {
      res.socket?.destroy(); // no response at all
    }
  });
  for (const path of ['/close', '/close-mr']) await h.get(path);
  await h.stage.idle();
  h.clock.advance(10_000);
  const r = await h.get('/close');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'kept');
  assert.equal(r.ex.cache?.outcome, 'stale');
  assert.equal(r.ex.cache?.detail, 'unreachable');
  assert.match(cacheStatus(r), /detail="?unreachable:SC_ERR_UPSTREAM_RESET/);
  assert.ok(h.origin.count('/close') >= 2, 'the origin was asked');
  // must-revalidate forbids it (§5.2.2.2): the failure reaches the client.
  await assert.rejects(h.get('/close-mr'), { code: 'SC_ERR_UPSTREAM_RESET' });
});
