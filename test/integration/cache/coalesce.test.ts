/** Request coalescing and hit-for-miss against a real origin. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';
import { readReply } from '../../helpers/exchange.js';

const BODY = 'x'.repeat(20_000);

test('200 concurrent misses make exactly one upstream request; each follower gets its own body', async (t) => {
  const h = await startHarness(t, async (_req, res) => {
    await new Promise((r) => setTimeout(r, 50));
    send(res, 200, { 'cache-control': 'max-age=100', 'content-type': 'text/plain' }, BODY);
  });
  const replies = await Promise.all(Array.from({ length: 200 }, () => h.get('/hot')));
  assert.equal(h.origin.count('/hot'), 1);
  for (const r of replies) assert.equal(r.text, BODY);
  const outcomes = replies.map((r) => r.ex.cache?.outcome);
  assert.equal(outcomes.filter((o) => o === 'miss').length, 1);
  assert.equal(outcomes.filter((o) => o === 'coalesced').length, 199);
  const follower = replies.find((r) => r.ex.cache?.outcome === 'coalesced')!;
  assert.equal(follower.ex.reason, 'cache_coalesced');
  assert.match(cacheStatus(follower), /fwd=uri-miss; .*collapsed/);
});

test('a leader whose response is not storable leaves a hit-for-miss marker; followers go to the origin', async (t) => {
  const h = await startHarness(t, async (_req, res, n) => {
    await new Promise((r) => setTimeout(r, 30));
    send(res, 200, { 'cache-control': 'no-store' }, `v${n}`);
  });
  const replies = await Promise.all(Array.from({ length: 10 }, () => h.get('/ns')));
  const texts = new Set(replies.map((r) => r.text));
  assert.equal(texts.size, h.origin.count('/ns'), 'each reply came from its own origin request');
  assert.equal(h.origin.count('/ns'), 10);
  assert.ok(replies.every((r) => r.ex.cache?.outcome === 'miss'));
  const later = await h.get('/ns');
  assert.equal(later.ex.cache?.detail, 'hit-for-miss');
});

test('an aborted leader does not poison its followers', async (t) => {
  const h = await startHarness(t, async (_req, res, n) => {
    if (n === 1) {
      // The leader's response: headers and part of the body, then silence.
      res.writeHead(200, { 'cache-control': 'max-age=100', 'content-length': String(BODY.length) });
      res.write(BODY.slice(0, 1000));
      return;
    }
    send(res, 200, { 'cache-control': 'max-age=100' }, BODY);
  });
  const leaderAbort = new AbortController();
  const leader = await h.send('/lead', { signal: leaderAbort.signal });
  const followers = Array.from({ length: 20 }, () => h.get('/lead'));
  await new Promise((r) => setTimeout(r, 50));
  leaderAbort.abort();
  await assert.rejects(readReply(leader.reply));
  const got = await Promise.all(followers);
  for (const r of got) {
    assert.equal(r.status, 200);
    assert.equal(r.text, BODY);
  }
  assert.equal(h.origin.count('/lead'), 2, 'one new leader after the abort');
  assert.equal(leader.ex.cache?.stored, false);
  assert.equal(leader.ex.cache?.detail, 'incomplete');
});

test('followers wait at most coalesceTimeoutMs, then go to the origin themselves', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const h = await startHarness(
    t,
    async (_req, res, n) => {
      if (n === 1) await gate;
      send(res, 200, { 'cache-control': 'max-age=100' }, `v${n}`);
    },
    { options: { coalesceTimeoutMs: 100 } },
  );
  const leader = h.get('/slow');
  await new Promise((r) => setTimeout(r, 20));
  const followers = await Promise.all(Array.from({ length: 3 }, () => h.get('/slow')));
  for (const f of followers) assert.notEqual(f.text, 'v1');
  release();
  assert.equal((await leader).text, 'v1');
  assert.equal(h.origin.count('/slow'), 4);
});

test('a follower whose client goes away stops waiting with SC_ERR_CLIENT_ABORTED', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const h = await startHarness(t, async (_req, res) => {
    await gate;
    send(res, 200, { 'cache-control': 'max-age=100' }, 'x');
  });
  const leader = h.get('/w');
  await new Promise((r) => setTimeout(r, 20));
  const ac = new AbortController();
  const follower = h.get('/w', { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 20));
  ac.abort();
  await assert.rejects(follower, { code: 'SC_ERR_CLIENT_ABORTED' });
  release();
  assert.equal((await leader).text, 'x');
});

test('concurrent revalidations of one stale entry make one conditional request', async (t) => {
  const h = await startHarness(t, async (req, res) => {
    await new Promise((r) => setTimeout(r, 30));
    if (req.headers['if-none-match'] === '"a"')
      return send(res, 304, { etag: '"a"', 'cache-control': 'max-age=10' });
    send(res, 200, { etag: '"a"', 'cache-control': 'max-age=10' }, 'body');
  });
  await h.get('/rv');
  await h.stage.idle();
  h.clock.advance(20_000);
  const replies = await Promise.all(Array.from({ length: 50 }, () => h.get('/rv')));
  assert.equal(h.origin.count('/rv'), 2);
  assert.ok(replies.every((r) => r.text === 'body'));
  assert.equal(replies.filter((r) => r.ex.cache?.outcome === 'revalidated').length, 1);
});
