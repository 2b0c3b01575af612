/** Invalidation by unsafe methods (RFC 9111 §4.4) and the purge functions for the admin listener. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRouteCachePolicy } from '../../../src/cache/options.js';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

function itemsOrigin(status = 201) {
  return (req: { method?: string; url?: string }, res: Parameters<typeof send>[0], n: number) => {
    if (req.method !== 'GET')
      return send(res, status, { location: '/items/2', 'content-location': '/items/1' }, 'ok');
    send(res, 200, { 'cache-control': 'max-age=100' }, `${req.url}#${n}`);
  };
}

test('§4.4 a successful POST invalidates the target URI and same-origin Location, for every credential', async (t) => {
  const h = await startHarness(t, itemsOrigin());
  for (const p of ['/items/1', '/items/2', '/items/3']) {
    await h.get(p);
    await h.get(p, { headers: { authorization: 'Bearer bob' } });
  }
  await h.stage.idle();
  // Bob's responses are not stored (Authorization without public, §3.5): three anonymous entries.
  assert.equal((await h.stage.stats()).entries, 3);
  const post = await h.get('/items/1', { method: 'POST' });
  assert.equal(post.ex.cache?.outcome, 'bypass');
  assert.equal(post.ex.cache?.invalidated, 2);
  assert.match(cacheStatus(post), /fwd=bypass; fwd-status=201; detail=invalidated/);
  assert.notEqual((await h.get('/items/1')).ex.cache?.outcome, 'hit');
  assert.notEqual((await h.get('/items/2')).ex.cache?.outcome, 'hit');
  assert.equal((await h.get('/items/3')).ex.cache?.outcome, 'hit');
});

test('§4.4 an unsafe request that fails invalidates nothing', async (t) => {
  const h = await startHarness(t, itemsOrigin(500));
  await h.get('/items/1');
  await h.stage.idle();
  await h.get('/items/1', { method: 'DELETE' });
  assert.equal((await h.get('/items/1')).ex.cache?.outcome, 'hit');
});

test('§4.4 invalidation reaches every credential and variant of the URL', async (t) => {
  const h = await startHarness(t, (req, res, n) => {
    if (req.method === 'PUT') return send(res, 204, {});
    send(res, 200, { 'cache-control': 'public, max-age=100', vary: 'accept' }, `v${n}`);
  });
  await h.get('/u', { headers: { authorization: 'Bearer a', accept: 'a/b' } });
  await h.get('/u', { headers: { authorization: 'Bearer b' } });
  await h.get('/u', { headers: { accept: 'x/y' } });
  await h.stage.idle();
  assert.equal((await h.stage.stats()).entries, 3);
  const put = await h.get('/u', { method: 'PUT' });
  assert.equal(put.ex.cache?.invalidated, 3);
  assert.equal((await h.stage.stats()).entries, 0);
});

test('purgeUrl, purgePrefix and purgeRoute remove what they name', async (t) => {
  const h = await startHarness(
    t,
    (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=100' }, `v${n}`),
    {
      policy: { keyQuery: { sort: true, ignore: [] } },
    },
  );
  for (const p of ['/a/1?y=2&x=1', '/a/2', '/b/1']) await h.get(p);
  await h.stage.idle();
  const policy = parseRouteCachePolicy({ keyQuery: { sort: true } });
  assert.equal(await h.stage.purgeUrl(`${h.origin.url}/a/1?x=1&y=2`, policy), 1);
  assert.equal(await h.stage.purgePrefix(`${h.origin.url}/a/`), 1);
  assert.equal((await h.stage.stats()).entries, 1);
  assert.equal(await h.stage.purgeRoute({ origin: h.origin.url, basePath: '' }), 1);
  assert.equal((await h.stage.stats()).entries, 0);
});
