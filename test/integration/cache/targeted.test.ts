/** Targeted cache-control fields (RFC 9213) against a real origin that counts requests. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

const HEADERS: Record<string, Record<string, string>> = {
  '/cdn-fresh-cc-nostore': { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=600' },
  '/cdn-short-cc-long': { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'max-age=1' },
  '/cdn-nostore-cc-fresh': { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'no-store' },
  '/cdn-private': { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'private' },
  '/cdn-expires': {
    'cdn-cache-control': 'max-age=600',
    expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
  },
  '/cdn-invalid': { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age="600"' },
  '/ours-first': { 'sidecache-cache-control': 'max-age=600', 'cdn-cache-control': 'no-store' },
};

async function harness(t: Parameters<typeof startHarness>[0], options: Record<string, unknown> = {}) {
  return startHarness(t, (req, res, n) => send(res, 200, HEADERS[req.url ?? ''] ?? {}, `v${n}`), { options });
}

test('RFC 9213 §2.1 CDN-Cache-Control max-age stores and reuses despite Cache-Control: no-store', async (t) => {
  const h = await harness(t);
  const first = await h.get('/cdn-fresh-cc-nostore');
  assert.equal(first.ex.cache?.stored, true);
  await h.stage.idle();
  h.clock.advance(300_000);
  const second = await h.get('/cdn-fresh-cc-nostore');
  assert.equal(second.text, 'v1');
  assert.equal(second.ex.cache?.outcome, 'hit');
  assert.equal(h.origin.count('/cdn-fresh-cc-nostore'), 1);
  // Both fields reach the client unchanged: they are not hop-by-hop, and downstream caches obey Cache-Control.
  assert.equal(second.headers['cache-control'], 'no-store');
  assert.equal(second.headers['cdn-cache-control'], 'max-age=600');
});

test('RFC 9213 §2.1 a short CDN-Cache-Control max-age wins over a long Cache-Control max-age', async (t) => {
  const h = await harness(t);
  await h.get('/cdn-short-cc-long');
  await h.stage.idle();
  h.clock.advance(5_000);
  const second = await h.get('/cdn-short-cc-long');
  assert.equal(second.text, 'v2');
  assert.equal(h.origin.count('/cdn-short-cc-long'), 2);
});

test('RFC 9213 §2.1 CDN-Cache-Control no-store and private forbid storing despite Cache-Control max-age', async (t) => {
  const h = await harness(t);
  for (const [path, detail] of [
    ['/cdn-nostore-cc-fresh', 'no-store'],
    ['/cdn-private', 'private'],
  ] as const) {
    const first = await h.get(path);
    assert.equal(first.ex.cache?.stored, false);
    assert.match(cacheStatus(first), new RegExp(`detail="not stored: ${detail} `));
    assert.equal((await h.get(path)).text, 'v2');
    assert.equal(h.origin.count(path), 2);
  }
});

test('RFC 9213 §2.1 a past Expires does not count once CDN-Cache-Control applies', async (t) => {
  const h = await harness(t);
  await h.get('/cdn-expires');
  await h.stage.idle();
  assert.equal((await h.get('/cdn-expires')).ex.cache?.outcome, 'hit');
  assert.equal(h.origin.count('/cdn-expires'), 1);
});

test('RFC 9213 §2.1 an invalid targeted field is ignored: Cache-Control applies', async (t) => {
  const h = await harness(t);
  await h.get('/cdn-invalid');
  await h.get('/cdn-invalid');
  assert.equal(h.origin.count('/cdn-invalid'), 2);
});

test('Sidecache-Cache-Control comes before CDN-Cache-Control; targetedFields: [] obeys Cache-Control only', async (t) => {
  const h = await harness(t);
  await h.get('/ours-first');
  await h.stage.idle();
  assert.equal((await h.get('/ours-first')).ex.cache?.outcome, 'hit');
  assert.equal(h.origin.count('/ours-first'), 1);

  const plain = await harness(t, { targetedFields: [] });
  await plain.get('/cdn-fresh-cc-nostore');
  await plain.get('/cdn-fresh-cc-nostore');
  assert.equal(plain.origin.count('/cdn-fresh-cc-nostore'), 2, 'no-store obeyed');
  const cdnOnly = await harness(t, { targetedFields: ['cdn-cache-control'] });
  await cdnOnly.get('/ours-first');
  await cdnOnly.get('/ours-first');
  assert.equal(cdnOnly.origin.count('/ours-first'), 2, 'only CDN-Cache-Control (no-store) obeyed');
});
