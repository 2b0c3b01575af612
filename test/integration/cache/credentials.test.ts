/**
 * Credential isolation: a response fetched with one credential is never served to a request with
 * another credential or none, in every combination of route setting, credential kind and response
 * Cache-Control. Where storing is allowed, the entry is keyed by a hash of the credential.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, test } from 'node:test';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

const RESPONSES = [
  'public, max-age=60',
  's-maxage=60',
  'must-revalidate, max-age=60',
  'max-age=60',
  'private, max-age=60',
];
type Kind = 'authorization' | 'header' | 'cookie';
const KINDS: Kind[] = ['authorization', 'header', 'cookie'];

function credential(kind: Kind, who: 'A' | 'B' | null): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = { cookie: 'theme=dark' };
  if (who === null) return headers;
  if (kind === 'authorization') headers['authorization'] = `Bearer token-${who}`;
  if (kind === 'header') headers['x-api-key'] = `key-${who}`;
  if (kind === 'cookie') headers['cookie'] = `theme=dark; session=sess-${who}`;
  return headers;
}

function identity(h: IncomingHttpHeaders): string {
  const cookie = /session=([^;]+)/.exec(String(h.cookie ?? ''))?.[1];
  return String(h.authorization ?? h['x-api-key'] ?? cookie ?? 'anon');
}

function expectStored(kind: Kind, cc: string, storePrivate: boolean): boolean {
  if (cc.startsWith('private')) return storePrivate;
  if (kind !== 'authorization') return true;
  // RFC 9111 §3.5: with Authorization a shared cache stores only public, s-maxage, must-revalidate.
  return storePrivate || !cc.startsWith('max-age');
}

for (const storePrivate of [false, true]) {
  describe(`credential isolation, storePrivate=${storePrivate}`, () => {
    for (const kind of KINDS) {
      test(`${kind} credentials never cross, for every Cache-Control`, async (t) => {
        const h = await startHarness(
          t,
          (req, res) => {
            const cc = RESPONSES[Number(new URL(req.url!, 'http://x').searchParams.get('cc'))]!;
            send(
              res,
              200,
              { 'cache-control': cc, etag: `"${identity(req.headers)}"` },
              `for:${identity(req.headers)}`,
            );
          },
          { policy: { storePrivate, credentialHeaders: ['X-Api-Key'], credentialCookies: ['session'] } },
        );
        for (const [i, cc] of RESPONSES.entries()) {
          const path = `/me?cc=${i}`;
          const order: ('A' | 'B' | null)[] = [null, 'A', 'B', 'A', 'B', null];
          for (const who of order) {
            const headers = credential(kind, who);
            const r = await h.get(path, { headers });
            await h.stage.idle();
            assert.equal(r.text, `for:${identity(headers)}`, `${cc}: ${who ?? 'anon'} got ${r.text}`);
          }
          const again = await h.get(path, { headers: credential(kind, 'A') });
          const stored = expectStored(kind, cc, storePrivate);
          assert.equal(again.ex.cache?.outcome === 'hit', stored, `${kind} ${cc}: stored=${stored}`);
          if (kind === 'authorization' && cc === 'max-age=60' && !storePrivate) {
            assert.match(
              cacheStatus(again),
              /fwd=uri-miss; fwd-status=200; detail="not stored: authorization \(set storePrivate\)"/,
            );
          }
        }
      });
    }
  });
}

test('two tokens fetching concurrently do not coalesce into each other', async (t) => {
  const h = await startHarness(t, async (req, res) => {
    await new Promise((r) => setTimeout(r, 30));
    send(res, 200, { 'cache-control': 'public, max-age=60' }, `for:${identity(req.headers)}`);
  });
  const replies = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      h.get('/c', { headers: { authorization: `Bearer token-${i % 2 ? 'A' : 'B'}` } }),
    ),
  );
  for (const [i, r] of replies.entries()) assert.equal(r.text, `for:Bearer token-${i % 2 ? 'A' : 'B'}`);
  assert.equal(h.origin.count('/c'), 2);
});

describe('cookies (issue 18): by default a Cookie header keys what it fetched', () => {
  for (const [i, cc] of RESPONSES.entries()) {
    test(`Cookie headers never cross: ${cc}`, async (t) => {
      const h = await startHarness(t, (req, res) => {
        send(
          res,
          200,
          { 'cache-control': cc, etag: `"${identity(req.headers)}"` },
          `for:${identity(req.headers)}`,
        );
      });
      const cookie = (who: 'A' | 'B'): IncomingHttpHeaders => ({ cookie: `theme=dark; session=sess-${who}` });
      for (const who of ['A', 'B', 'A', 'B'] as const) {
        const r = await h.get(`/me?cc=${i}`, { headers: cookie(who) });
        await h.stage.idle();
        assert.equal(r.text, `for:sess-${who}`, `${cc}: ${who} got ${r.text}`);
      }
      const plain = await h.get(`/me?cc=${i}`);
      assert.equal(plain.text, 'for:anon', `${cc}: a request without cookies got ${plain.text}`);
      const again = await h.get(`/me?cc=${i}`, { headers: cookie('A') });
      assert.equal(again.text, 'for:sess-A');
      assert.equal(again.ex.cache?.outcome === 'hit', !cc.startsWith('private'), `${cc}: A's own entry`);
    });
  }

  test('an entry fetched without cookies answers cookie requests only while it needs no origin', async (t) => {
    const h = await startHarness(t, (req, res) => {
      send(
        res,
        200,
        { 'cache-control': 'max-age=10, stale-while-revalidate=30', etag: `"${identity(req.headers)}"` },
        `for:${identity(req.headers)}`,
      );
    });
    assert.equal((await h.get('/s')).text, 'for:anon');
    const fresh = await h.get('/s', { headers: { cookie: 'session=sess-A' } });
    assert.equal(fresh.text, 'for:anon');
    assert.equal(fresh.ex.cache?.outcome, 'hit');
    // Stale within stale-while-revalidate: a refresh would carry this request's cookie and store
    // its answer where requests without cookies read, so the cookie request misses instead.
    h.clock.advance(15_000);
    const stale = await h.get('/s', { headers: { cookie: 'session=sess-B' } });
    await h.stage.idle();
    assert.equal(stale.text, 'for:sess-B');
    assert.equal(stale.ex.cache?.outcome, 'miss');
    assert.equal(stale.ex.cache?.detail, 'cookie');
    assert.match(cacheStatus(stale), /fwd=uri-miss; fwd-status=200; ttl=\d+; detail=cookie/);
    const plain = await h.get('/s');
    await h.stage.idle();
    assert.equal(plain.text, 'for:anon', 'the entry without cookies kept its answer');
    // Past every stale window: revalidation is not done with a cookie request's headers either.
    h.clock.advance(60_000);
    const old = await h.get('/s', { headers: { cookie: 'session=sess-C' } });
    assert.equal(old.text, 'for:sess-C');
    assert.equal((await h.get('/s')).text, 'for:anon');
    for (const r of h.origin.seen.filter((q) => q.headers['if-none-match'] !== undefined)) {
      assert.equal(
        r.headers.cookie,
        undefined,
        'a conditional request for the shared entry carried a cookie',
      );
    }
  });

  test('a stale entry fetched without cookies answers a cookie request that accepts it stale (max-stale), without the origin', async (t) => {
    const h = await startHarness(t, (req, res) => {
      send(
        res,
        200,
        { 'cache-control': 'max-age=10', etag: `"${identity(req.headers)}"` },
        `for:${identity(req.headers)}`,
      );
    });
    assert.equal((await h.get('/m')).text, 'for:anon');
    h.clock.advance(15_000);
    const asked = h.origin.seen.length;
    const stale = await h.get('/m', {
      headers: { cookie: 'session=sess-A', 'cache-control': 'max-stale=60' },
    });
    assert.equal(stale.text, 'for:anon');
    assert.equal(stale.ex.cache?.outcome, 'stale');
    assert.equal(stale.ex.cache?.detail, 'max-stale');
    assert.match(cacheStatus(stale), /^sidecache; hit; ttl=-\d+; detail=max-stale$/);
    assert.equal(h.origin.seen.length, asked, 'the origin was asked');
    // Without max-stale it would need the origin: the cookie request misses under its own key.
    const own = await h.get('/m', { headers: { cookie: 'session=sess-A' } });
    assert.equal(own.text, 'for:sess-A');
    assert.equal(own.ex.cache?.outcome, 'miss');
  });

  test('cookies: ignore shares answers whatever the cookies; credentials still isolate', async (t) => {
    const h = await startHarness(
      t,
      (req, res) => send(res, 200, { 'cache-control': 'public, max-age=60' }, `for:${identity(req.headers)}`),
      { policy: { cookies: 'ignore' } },
    );
    assert.equal((await h.get('/i', { headers: { cookie: 'session=sess-A' } })).text, 'for:sess-A');
    const b = await h.get('/i', { headers: { cookie: 'session=sess-B' } });
    assert.equal(b.text, 'for:sess-A');
    assert.equal(b.ex.cache?.outcome, 'hit');
    const auth = await h.get('/i', {
      headers: { cookie: 'session=sess-B', authorization: 'Bearer token-A' },
    });
    assert.equal(auth.text, 'for:Bearer token-A');
  });
});
