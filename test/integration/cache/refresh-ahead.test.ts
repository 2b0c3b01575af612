/**
 * Refresh-ahead (issue 11) against a real origin that counts conditional requests, with the test's
 * clock: hot entries are revalidated before they expire while the client's hit is answered at
 * once; the global cap holds; unsafe methods, cold entries, other paths and other credentials
 * never trigger it.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import type { RefreshAheadResult } from '../../../src/cache/refresh-ahead.js';
import type { CacheObserver } from '../../../src/cache/stage.js';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

/** A promise the test resolves by hand: the origin holds conditional answers until then. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

function recorder() {
  const results: RefreshAheadResult[] = [];
  let deferred = 0;
  let thanks = 0;
  const observer: CacheObserver = {
    onRefreshAhead: (r) => results.push(r),
    onRefreshAheadDeferred: () => {
      deferred++;
    },
    onRefreshAheadHit: () => {
      thanks++;
    },
  };
  return {
    observer,
    results,
    deferred: () => deferred,
    thanks: () => thanks,
  };
}

const conditional = (req: IncomingMessage): boolean => req.headers['if-none-match'] !== undefined;

test('a hot entry is revalidated (weak ETag, 304) before it expires; no client waits; later hits stay fresh', async (t) => {
  const held = gate();
  const rec = recorder();
  const h = await startHarness(
    t,
    async (req, res) => {
      if (req.headers['if-none-match'] === 'W/"v1"') {
        await held.wait;
        send(res, 304, { etag: 'W/"v1"', 'cache-control': 'max-age=100' });
        return;
      }
      send(
        res,
        200,
        { etag: 'W/"v1"', 'cache-control': 'max-age=100', 'content-type': 'text/plain' },
        'hot v1',
      );
    },
    {
      policy: { refreshAhead: { paths: ['/repos/*'], fraction: 0.2, minHits: 2 } },
      deps: { observer: rec.observer },
    },
  );
  await h.get('/repos/x');
  await h.stage.idle();
  h.clock.advance(10_000);
  assert.equal((await h.get('/repos/x')).ex.cache?.outcome, 'hit'); // hit 1: outside the window
  assert.equal(h.origin.total(), 1);
  h.clock.advance(75_000); // 15 s left of 100: inside the last 20 %
  // Hit 2 triggers the refresh, and is answered while the origin still holds the 304.
  const trigger = await h.get('/repos/x');
  assert.equal(trigger.text, 'hot v1');
  assert.match(cacheStatus(trigger), /^sidecache; hit; ttl=\d+$/);
  assert.equal((await h.stage.stats()).refreshingAhead, 1);
  // More hits while it is in flight start nothing more (one per entry).
  await h.get('/repos/x');
  held.open();
  await h.stage.idle();
  const conditionals = h.origin.seen.filter((s) => s.headers['if-none-match'] !== undefined);
  assert.equal(conditionals.length, 1);
  assert.equal(conditionals[0]?.headers['if-none-match'], 'W/"v1"');
  assert.deepEqual(rec.results, ['not_modified']);
  // Past the first copy's expiry: still a plain hit, no origin request, counted as thanks to refresh-ahead.
  h.clock.advance(20_000);
  const later = await h.get('/repos/x');
  assert.equal(later.text, 'hot v1');
  assert.equal(later.ex.cache?.outcome, 'hit');
  assert.match(cacheStatus(later), /^sidecache; hit; ttl=\d+$/);
  assert.equal(h.origin.total(), 2);
  assert.equal(rec.thanks(), 1);
});

test('a 200 to the refresh replaces the entry', async (t) => {
  const rec = recorder();
  const h = await startHarness(
    t,
    (_req, res, n) => send(res, 200, { etag: `"v${n}"`, 'cache-control': 'max-age=100' }, `body v${n}`),
    {
      policy: { refreshAhead: { beforeExpiryMs: 5_000, minHits: 1 } },
      deps: { observer: rec.observer },
    },
  );
  await h.get('/plans');
  await h.stage.idle();
  h.clock.advance(96_000);
  assert.equal((await h.get('/plans')).text, 'body v1');
  await h.stage.idle();
  assert.equal(h.origin.seen[1]?.headers['if-none-match'], '"v1"');
  assert.deepEqual(rec.results, ['replaced']);
  h.clock.advance(10_000);
  const r = await h.get('/plans');
  assert.equal(r.text, 'body v2');
  assert.equal(r.ex.cache?.outcome, 'hit');
});

test('bounded: many hot keys never exceed refreshAheadConcurrency in flight', async (t) => {
  const held = gate();
  const rec = recorder();
  let inFlight = 0;
  let maxInFlight = 0;
  const h = await startHarness(
    t,
    async (req, res) => {
      if (conditional(req)) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await held.wait;
        inFlight--;
        send(res, 304, { etag: '"e"', 'cache-control': 'max-age=100' });
        return;
      }
      send(res, 200, { etag: '"e"', 'cache-control': 'max-age=100' }, req.url ?? '');
    },
    {
      options: { refreshAheadConcurrency: 2 },
      policy: { refreshAhead: { minHits: 1 } },
      deps: { observer: rec.observer },
    },
  );
  const paths = Array.from({ length: 12 }, (_, i) => `/k/${i}`);
  for (const p of paths) await h.get(p);
  await h.stage.idle();
  h.clock.advance(95_000);
  const hits = await Promise.all(paths.map((p) => h.get(p)));
  for (const r of hits) assert.equal(r.ex.cache?.outcome, 'hit');
  assert.equal((await h.stage.stats()).refreshingAhead, 2);
  assert.equal(rec.deferred(), 10);
  // Wait (bounded) until both held refreshes reached the origin, then let them go.
  for (let i = 0; i < 200 && inFlight < 2; i++) await new Promise((r) => setTimeout(r, 5));
  held.open();
  await h.stage.idle();
  assert.equal(maxInFlight, 2);
  assert.deepEqual(rec.results, ['not_modified', 'not_modified']);
  // The deferred keys are refreshed on later hits, still two at a time.
  await Promise.all(paths.map((p) => h.get(p)));
  await h.stage.idle();
  assert.equal(maxInFlight, 2);
  assert.equal(rec.results.length, 4);
});

test('never for unsafe methods, cold entries, paths not marked hot, or only-if-cached', async (t) => {
  const h = await startHarness(
    t,
    (_req, res) => send(res, 200, { etag: '"e"', 'cache-control': 'max-age=100' }, 'x'),
    { policy: { refreshAhead: { paths: ['/hot/*'], minHits: 2 } } },
  );
  await h.get('/hot/a');
  await h.get('/hot/b');
  await h.get('/cold/c');
  await h.stage.idle();
  h.clock.advance(95_000);
  // Unsafe methods go to the origin (and invalidate); they never count as hits or refresh.
  assert.equal((await h.get('/hot/a', { method: 'POST' })).ex.cache?.outcome, 'bypass');
  assert.equal((await h.get('/hot/a', { method: 'DELETE' })).ex.cache?.outcome, 'bypass');
  // A single hit on a hot path is not enough (minHits 2).
  assert.equal((await h.get('/hot/b')).ex.cache?.outcome, 'hit');
  // only-if-cached asks the cache not to contact the origin at all.
  assert.equal((await h.get('/hot/b', { headers: { 'cache-control': 'only-if-cached' } })).status, 200);
  // Paths not marked hot.
  await h.get('/cold/c');
  await h.get('/cold/c');
  await h.stage.idle();
  assert.equal(h.origin.seen.filter((s) => s.headers['if-none-match'] !== undefined).length, 0);
  assert.deepEqual(
    h.origin.seen.map((s) => s.method),
    ['GET', 'GET', 'GET', 'POST', 'DELETE'],
  );
});

test('a per-credential entry is refreshed only by requests carrying its credential', async (t) => {
  const rec = recorder();
  const h = await startHarness(
    t,
    (req, res) => {
      if (conditional(req)) {
        send(res, 304, { etag: '"e"', 'cache-control': 'private, max-age=100' });
        return;
      }
      send(
        res,
        200,
        { etag: '"e"', 'cache-control': 'private, max-age=100' },
        `for ${req.headers.authorization}`,
      );
    },
    {
      policy: { storePrivate: true, refreshAhead: { minHits: 2 } },
      deps: { observer: rec.observer },
    },
  );
  const alice = { authorization: 'Bearer alice' };
  const bob = { authorization: 'Bearer bob' };
  await h.get('/me', { headers: alice });
  await h.get('/me', { headers: bob });
  await h.stage.idle();
  h.clock.advance(10_000);
  await h.get('/me', { headers: alice }); // alice's entry: 1 hit
  h.clock.advance(85_000);
  // Bob is busy; alice has gone quiet. Bob's hits refresh bob's entry only.
  await h.get('/me', { headers: bob });
  await h.get('/me', { headers: bob });
  await h.stage.idle();
  const refreshes = h.origin.seen.filter((s) => s.headers['if-none-match'] !== undefined);
  assert.equal(refreshes.length, 1);
  assert.equal(refreshes[0]?.headers.authorization, 'Bearer bob');
  assert.deepEqual(rec.results, ['not_modified']);
  // Alice's entry, unused through its window, expires and is revalidated when she comes back.
  h.clock.advance(10_000);
  const back = await h.get('/me', { headers: alice });
  assert.equal(back.text, 'for Bearer alice');
  assert.equal(back.ex.cache?.outcome, 'revalidated');
  const bobLater = await h.get('/me', { headers: bob });
  assert.equal(bobLater.ex.cache?.outcome, 'hit');
});

test('a HEAD hit may trigger it; the refresh is a GET and keeps the body', async (t) => {
  const h = await startHarness(
    t,
    (req, res, n) =>
      conditional(req)
        ? send(res, 304, { etag: '"e"', 'cache-control': 'max-age=100' })
        : send(res, 200, { etag: '"e"', 'cache-control': 'max-age=100' }, `full body ${n}`),
    { policy: { refreshAhead: { minHits: 1 } } },
  );
  await h.get('/h');
  await h.stage.idle();
  h.clock.advance(95_000);
  assert.equal((await h.get('/h', { method: 'HEAD' })).text, '');
  await h.stage.idle();
  assert.equal(h.origin.seen[1]?.method, 'GET');
  h.clock.advance(10_000);
  const r = await h.get('/h');
  assert.equal(r.text, 'full body 1');
  assert.equal(r.ex.cache?.outcome, 'hit');
});
