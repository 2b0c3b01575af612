/** Per-route policy: TTL override, opt-out, key normalisation, Set-Cookie, header emission. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

test('ttlMs: an API that sends no cache headers is cached for the route TTL (Stripe plans, 10 min)', async (t) => {
  const h = await startHarness(
    t,
    (_req, res, n) => send(res, 200, { 'content-type': 'application/json' }, `{"plans":${n}}`),
    {
      policy: { ttlMs: 600_000 },
    },
  );
  await h.get('/v1/plans');
  await h.stage.idle();
  h.clock.advance(599_000);
  const hit = await h.get('/v1/plans');
  assert.equal(hit.ex.cache?.outcome, 'hit');
  assert.equal(hit.text, '{"plans":1}');
  h.clock.advance(2_000);
  assert.equal((await h.get('/v1/plans')).text, '{"plans":2}');
});

test('ttlMs does not override no-store, and does not make 5xx cacheable', async (t) => {
  const h = await startHarness(
    t,
    (req, res, n) =>
      req.url === '/ns'
        ? send(res, 200, { 'cache-control': 'no-store' }, `${n}`)
        : send(res, 503, {}, `${n}`),
    { policy: { ttlMs: 600_000 } },
  );
  await h.get('/ns');
  await h.get('/err');
  await h.stage.idle();
  assert.equal((await h.get('/ns')).text, '2');
  assert.equal((await h.get('/err')).text, '2');
});

test('enabled: false bypasses the cache for the route; options.enabled false for all', async (t) => {
  const h = await startHarness(
    t,
    (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=100' }, `${n}`),
    {
      policies: { off: { enabled: false } },
    },
  );
  const a = await h.get('/x', { route: 'off' });
  const b = await h.get('/x', { route: 'off' });
  assert.equal(b.text, '2');
  assert.equal(a.ex.cache?.outcome, 'bypass');
  assert.match(cacheStatus(a), /fwd=bypass; fwd-status=200; detail=disabled/);
  const h2 = await startHarness(
    t,
    (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=100' }, `${n}`),
    {
      options: { enabled: false },
    },
  );
  await h2.get('/x');
  assert.equal((await h2.get('/x')).ex.cache?.outcome, 'bypass');
});

test('keyQuery: sorted parameters and ignored parameters share an entry', async (t) => {
  const h = await startHarness(
    t,
    (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=100' }, `${n}`),
    {
      policy: { keyQuery: { sort: true, ignore: ['utm_source'] } },
    },
  );
  await h.get('/q?b=2&a=1');
  await h.stage.idle();
  assert.equal((await h.get('/q?a=1&b=2')).ex.cache?.outcome, 'hit');
  assert.equal((await h.get('/q?a=1&utm_source=x&b=2')).ex.cache?.outcome, 'hit');
  assert.notEqual((await h.get('/q?a=1&b=3')).ex.cache?.outcome, 'hit');
});

test('keyHeaders: a selected request header splits the key', async (t) => {
  const h = await startHarness(
    t,
    (req, res) => send(res, 200, { 'cache-control': 'max-age=100' }, String(req.headers['x-tenant'])),
    {
      policy: { keyHeaders: ['X-Tenant'] },
    },
  );
  await h.get('/t', { headers: { 'x-tenant': 'a' } });
  await h.stage.idle();
  assert.equal((await h.get('/t', { headers: { 'x-tenant': 'b' } })).text, 'b');
  await h.stage.idle();
  const a = await h.get('/t', { headers: { 'x-tenant': 'a' } });
  assert.equal(a.text, 'a');
  assert.equal(a.ex.cache?.outcome, 'hit');
});

test('Set-Cookie responses are stored only when the route says so', async (t) => {
  const handler = (_req: unknown, res: Parameters<typeof send>[0], n: number) =>
    send(res, 200, { 'cache-control': 'max-age=100', 'set-cookie': `s=${n}` }, `${n}`);
  const no = await startHarness(t, handler);
  const r = await no.get('/c');
  assert.match(cacheStatus(r), /detail="not stored: set-cookie \(set storeSetCookie\)"/);
  assert.equal((await no.get('/c')).text, '2');
  const yes = await startHarness(t, handler, { policy: { storeSetCookie: true } });
  await yes.get('/c');
  await yes.stage.idle();
  const hit = await yes.get('/c');
  assert.equal(hit.ex.cache?.outcome, 'hit');
  assert.equal(String(hit.headers['set-cookie']), 's=1');
});

test('emitAge and emitCacheStatus switch the headers off', async (t) => {
  const h = await startHarness(t, (_req, res) => send(res, 200, { 'cache-control': 'max-age=100' }, 'x'), {
    policy: { emitAge: false, emitCacheStatus: false },
  });
  await h.get('/e');
  await h.stage.idle();
  const r = await h.get('/e');
  assert.equal(r.ex.cache?.outcome, 'hit');
  assert.equal(r.headers['age'], undefined);
  assert.equal(r.headers['cache-status'], undefined);
});
