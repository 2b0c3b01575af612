/** Validation (RFC 9111 §4.3) with a real origin that answers conditionals. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHttpDate } from '../../../src/cache/http-date.js';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

test('§4.3.4 §3.2 a 304 updates the stored headers, Cache-Control included', async (t) => {
  const h = await startHarness(t, (req, res, n) => {
    if (req.headers['if-none-match'] === '"v1"') {
      return send(res, 304, { 'cache-control': 'max-age=1000', etag: '"v1"', 'x-revision': `r${n}` });
    }
    return send(
      res,
      200,
      { 'cache-control': 'max-age=1', etag: '"v1"', 'x-revision': 'r1', 'content-type': 'text/plain' },
      'body',
    );
  });
  await h.get('/doc');
  await h.stage.idle();
  // Short-lived entry expired long ago: it is kept and revalidated (notes: undici drops it).
  h.clock.advance(60_000);
  const r = await h.get('/doc');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'body');
  assert.equal(r.headers['x-revision'], 'r2');
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.ex.cache?.outcome, 'revalidated');
  assert.match(cacheStatus(r), /fwd=stale; fwd-status=304/);
  assert.equal(h.origin.seen[1]?.headers['if-none-match'], '"v1"');
  await h.stage.idle();
  // The 304's max-age=1000 now applies: fresh for a long time, no origin contact.
  h.clock.advance(500_000);
  const hit = await h.get('/doc');
  assert.equal(hit.ex.cache?.outcome, 'hit');
  assert.equal(hit.headers['x-revision'], 'r2');
  assert.equal(h.origin.total(), 2);
});

test('§4.3.1 If-Modified-Since is sent from Last-Modified', async (t) => {
  const lm = 'Sun, 06 Nov 1994 08:49:37 GMT';
  const h = await startHarness(t, (req, res) => {
    if (req.headers['if-modified-since'] === lm) return send(res, 304, { 'cache-control': 'max-age=10' });
    return send(res, 200, { 'cache-control': 'max-age=10', 'last-modified': lm }, 'lm-body');
  });
  await h.get('/lm');
  await h.stage.idle();
  h.clock.advance(20_000);
  const r = await h.get('/lm');
  assert.equal(r.ex.cache?.outcome, 'revalidated');
  assert.equal(r.text, 'lm-body');
});

test('§4.3.3 a full response to a revalidation replaces the stored one', async (t) => {
  const h = await startHarness(t, (_req, res, n) =>
    send(res, 200, { 'cache-control': 'max-age=10', etag: `"v${n}"` }, `v${n}`),
  );
  await h.get('/r');
  await h.stage.idle();
  h.clock.advance(20_000);
  const r = await h.get('/r');
  assert.equal(r.text, 'v2');
  assert.equal(r.ex.cache?.outcome, 'miss');
  assert.match(cacheStatus(r), /fwd=stale; fwd-status=200/);
  await h.stage.idle();
  assert.equal((await h.get('/r')).text, 'v2');
  assert.equal(h.origin.total(), 2);
});

test('§4.3.4 a 304 for another ETag does not update; the full response is fetched', async (t) => {
  const h = await startHarness(t, (req, res, n) => {
    if (req.headers['if-none-match'] !== undefined) return send(res, 304, { etag: '"other"' });
    return send(res, 200, { 'cache-control': 'max-age=10', etag: '"v1"' }, `full${n}`);
  });
  await h.get('/e');
  await h.stage.idle();
  h.clock.advance(20_000);
  const r = await h.get('/e');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'full3');
  assert.equal(h.origin.seen[2]?.headers['if-none-match'], undefined);
});

test('§5.2.2.2 must-revalidate: a stale entry is never served when the origin is down', async (t) => {
  const h = await startHarness(t, (_req, res) =>
    send(res, 200, { 'cache-control': 'max-age=10, must-revalidate', etag: '"a"' }, 'x'),
  );
  await h.get('/mr');
  await h.stage.idle();
  await h.origin.close();
  h.clock.advance(20_000);
  await assert.rejects(h.get('/mr'), { code: 'SC_ERR_UPSTREAM_CONNECT' });
});

test('route forceRevalidate: every reuse is validated with If-None-Match (GitHub)', async (t) => {
  const h = await startHarness(
    t,
    (req, res) => {
      if (req.headers['if-none-match'] === '"gh1"')
        return send(res, 304, { etag: '"gh1"', 'cache-control': 'private, max-age=60' });
      return send(res, 200, { etag: '"gh1"', 'cache-control': 'private, max-age=60' }, '{"repo":1}');
    },
    { policy: { forceRevalidate: true, storePrivate: true } },
  );
  const auth = { authorization: 'token gh' };
  await h.get('/repos/x', { headers: auth });
  await h.stage.idle();
  for (let i = 0; i < 3; i++) {
    const r = await h.get('/repos/x', { headers: auth });
    assert.equal(r.ex.cache?.outcome, 'revalidated');
    assert.equal(r.text, '{"repo":1}');
  }
  assert.equal(h.origin.total(), 4);
  assert.ok(h.origin.seen.slice(1).every((s) => s.headers['if-none-match'] === '"gh1"'));
});

test('§5.2.2.8 proxy-revalidate: a shared cache does not serve it stale, even with max-stale', async (t) => {
  const h = await startHarness(t, (req, res, n) => {
    if (req.headers['if-none-match'] === '"p"')
      return send(res, 304, { etag: '"p"', 'cache-control': 'max-age=10, proxy-revalidate' });
    send(res, 200, { etag: '"p"', 'cache-control': 'max-age=10, proxy-revalidate' }, `v${n}`);
  });
  await h.get('/p');
  await h.stage.idle();
  h.clock.advance(20_000);
  const r = await h.get('/p', { headers: { 'cache-control': 'max-stale=3600' } });
  assert.equal(r.ex.cache?.outcome, 'revalidated');
  assert.equal(h.origin.total(), 2);
});

test('the conditional request goes out on a derived exchange; its originInfo is carried back', async (t) => {
  const h = await startHarness(t, (req, res) => {
    if (req.headers['if-none-match'] === '"o"') return send(res, 304, { etag: '"o"' });
    send(res, 200, { etag: '"o"', 'cache-control': 'max-age=1' }, 'x');
  });
  await h.get('/o');
  await h.stage.idle();
  h.clock.advance(5_000);
  const ex = h.exchange('/o', { headers: { 'if-none-match': '"client"' } });
  await h.pipeline(ex);
  const sent = h.terminal.sent.at(-1)!;
  assert.notEqual(sent, ex, 'the client exchange is not mutated');
  assert.equal(ex.headers['if-none-match'], '"client"');
  assert.equal(sent.headers['if-none-match'], '"o"');
  assert.equal(ex.originInfo?.origin, h.origin.url);
});

test('§4.3.2 a client If-Modified-Since against a stored response with no Last-Modified nor Date: the receipt time', async (t) => {
  const h = await startHarness(t, (_req, res) => {
    res.sendDate = false;
    res.removeHeader('date');
    return send(res, 200, { 'cache-control': 'max-age=100' }, 'undated');
  });
  const received = h.clock.now();
  const first = await h.get('/undated');
  assert.equal(first.text, 'undated');
  await h.stage.idle();
  h.clock.advance(5_000);
  const at = (ms: number) => ({ headers: { 'if-modified-since': formatHttpDate(ms) } });
  const current = await h.get('/undated', at(received + 1_000));
  assert.equal(current.status, 304);
  assert.equal(current.ex.cache?.outcome, 'hit');
  const older = await h.get('/undated', at(received - 10_000));
  assert.equal(older.status, 200);
  assert.equal(older.text, 'undated');
  assert.equal(h.origin.total(), 1);
});
