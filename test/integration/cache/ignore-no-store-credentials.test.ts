/**
 * The Stripe case (issue 19): an API that marks every answer `no-store` and is called with a
 * secret key. `ignoreNoStore` + `ttlMs` on the route stores those answers per credential (it
 * implies storePrivate): each caller gets its own hits, never another's. A `ttlMs` route without
 * it says why nothing was stored, in Cache-Status and in the report. A real origin on loopback that
 * answers with the caller's identity, and sidecache in-process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runReport } from '../../../src/commands/report.js';
import { send } from '../../helpers/client.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const KEY_A = 'Bearer sk_test_aaaaaaaaaaaaaaaa';
const KEY_B = 'Bearer sk_test_bbbbbbbbbbbbbbbb';

describe('ignoreNoStore on a route called with Authorization', () => {
  let origin: TestOrigin;
  let sc: TestSidecache;
  let served = 0;

  before(async () => {
    origin = await startOrigin((req, res) => {
      served++;
      res.writeHead(200, {
        'content-type': 'application/json',
        // What Stripe sends on every answer.
        'cache-control': 'no-cache, no-store',
      });
      res.end(JSON.stringify({ for: req.headers.authorization ?? null, n: served }));
    });
    sc = await startTestSidecache({
      routes: [
        { name: 'stripe', origin: origin.url, cache: { ttlMs: 60_000, ignoreNoStore: true } },
        { name: 'ttl-only', origin: origin.url, prefix: '/ttl-only/', cache: { ttlMs: 60_000 } },
      ],
      upstream: { warm: { connections: 0, minIdle: 0 } },
    } as never);
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  const get = (path: string, authorization?: string) =>
    send(sc.url, path, authorization === undefined ? {} : { headers: { authorization } });

  it('stores per credential: each caller gets its own hits, never the other caller’s', async () => {
    const a1 = await get('/stripe/v1/products', KEY_A);
    assert.equal(a1.status, 200, a1.text());
    assert.equal(a1.json().for, KEY_A);
    assert.match(String(a1.headers['cache-status']), /fwd=uri-miss; fwd-status=200; ttl=\d+/);
    const b1 = await get('/stripe/v1/products', KEY_B);
    assert.equal(b1.json().for, KEY_B, 'B is not served A’s entry');
    assert.match(String(b1.headers['cache-status']), /fwd=uri-miss; fwd-status=200; ttl=\d+/);
    const originBefore = served;
    for (let i = 0; i < 3; i++) {
      const a = await get('/stripe/v1/products', KEY_A);
      const b = await get('/stripe/v1/products', KEY_B);
      assert.match(String(a.headers['cache-status']), /; hit/);
      assert.match(String(b.headers['cache-status']), /; hit/);
      assert.deepEqual(a.json(), a1.json(), 'A gets A’s entry');
      assert.deepEqual(b.json(), b1.json(), 'B gets B’s entry');
    }
    assert.equal(served, originBefore, 'the hits asked the origin nothing');
    // A caller without the key gets neither entry.
    const anon = await get('/stripe/v1/products');
    assert.equal(anon.json().for, null);
    assert.doesNotMatch(String(anon.headers['cache-status']), /; hit/);
  });

  it('a ttlMs route without storePrivate says why it stored nothing, in Cache-Status and the report', async () => {
    for (let i = 0; i < 12; i++) {
      const r = await get('/ttl-only/v1/customers', KEY_A);
      assert.equal(r.json().for, KEY_A);
      assert.doesNotMatch(String(r.headers['cache-status']), /; hit/);
      if (i === 0) {
        // no-store (origin) is the first rule it fails; ignoreNoStore is what would store it.
        assert.match(
          String(r.headers['cache-status']),
          /detail="not stored: no-store \(set ignoreNoStore with ttlMs\)"/,
        );
      }
    }
    const text = await runReport({ admin: sc.adminUrl, json: false });
    assert.match(text, /ttl-only .*\n\s+not stored: .*no-store \d+ \(set ignoreNoStore with ttlMs\)/, text);
    assert.match(
      text,
      /- ttl-only: 0% hits, responses say no-store: .*set cache\.ignoreNoStore with cache\.ttlMs/,
      text,
    );
  });
});

describe('a ttlMs route whose answers do not say no-store, called with Authorization', () => {
  it('is not stored for want of storePrivate, and Cache-Status says so', async () => {
    const origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.end(String(req.headers.authorization));
    });
    const sc = await startTestSidecache({
      routes: [{ name: 'api', origin: origin.url, cache: { ttlMs: 60_000 } }],
      upstream: { warm: { connections: 0, minIdle: 0 } },
    } as never);
    try {
      const r = await send(sc.url, '/api/x', { headers: { authorization: KEY_A } });
      assert.match(
        String(r.headers['cache-status']),
        /detail="not stored: authorization \(set storePrivate\)"/,
      );
    } finally {
      await sc.close();
      await origin.close();
    }
  });
});
