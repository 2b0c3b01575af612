/**
 * The cache stage wired into the real proxy: real origin (counting requests per path), sidecache
 * in-process on free ports, real HTTP clients (node:http and curl). Reverse and forward modes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { send } from '../../helpers/client.js';
import { type Origin, startOrigin } from '../../helpers/counting-origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FULL = 'f'.repeat(100);

function cacheStatus(r: { headers: Record<string, unknown> }): string {
  return String(r.headers['cache-status'] ?? '');
}

describe('cache through the proxy', () => {
  let origin: Origin;
  let sc: TestSidecache;

  before(async () => {
    origin = await startOrigin(async (req, res, n) => {
      const path = (req.url ?? '/').split('?', 1)[0] as string;
      if (path === '/etag') {
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { etag: '"v1"', 'cache-control': 'no-cache' }).end();
          return;
        }
        res.writeHead(200, { etag: '"v1"', 'cache-control': 'no-cache', 'content-type': 'text/plain' });
        res.end('etag body');
        return;
      }
      if (path === '/slow') {
        await sleep(300);
        res.writeHead(200, { 'cache-control': 'max-age=60' }).end('slow body');
        return;
      }
      if (path === '/me') {
        res.writeHead(200, { 'cache-control': 'public, max-age=60' });
        res.end(`user ${req.headers.authorization ?? 'anonymous'}`);
        return;
      }
      if (path === '/trunc') {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(FULL.length) });
        if (n === 1) {
          res.write(FULL.slice(0, 50));
          await sleep(20);
          res.socket?.destroy();
          return;
        }
        res.end(FULL);
        return;
      }
      if (path === '/trunc-chunked') {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.write(FULL.slice(0, 50));
        await sleep(20);
        if (n === 1) res.socket?.destroy();
        else res.end(FULL.slice(50));
        return;
      }
      if (path.startsWith('/timed')) {
        // A measurable fetch time: saved time is derived from it, never a constant.
        await sleep(30);
        res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`timed ${n}`);
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.end(`${path} #${n}`);
    });
    sc = await startTestSidecache({
      routes: [
        { name: 'r', origin: origin.url },
        { name: 'off', origin: origin.url, prefix: '/off/', cache: { enabled: false } },
      ],
    });
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  it('a repeated GET on a reverse route is a hit: Cache-Status hit, Age, no second origin request', async () => {
    const first = await send(sc.url, '/r/fresh');
    assert.equal(first.status, 200);
    assert.match(cacheStatus(first), /^sidecache; fwd=uri-miss; fwd-status=200; ttl=\d+$/);
    const second = await send(sc.url, '/r/fresh');
    assert.equal(second.text(), '/fresh #1');
    assert.match(cacheStatus(second), /^sidecache; hit; ttl=\d+$/);
    assert.match(String(second.headers.age), /^\d+$/);
    assert.equal(origin.count('/fresh'), 1);
  });

  it('forward-proxy requests to a route origin are cached, and share entries with the reverse route', async () => {
    const first = await send(sc.url, `${origin.url}/fwd?a=1`);
    assert.match(cacheStatus(first), /fwd=uri-miss/);
    const second = await send(sc.url, `${origin.url}/fwd?a=1`);
    assert.match(cacheStatus(second), /^sidecache; hit/);
    assert.ok(second.headers.age !== undefined);
    const reverse = await send(sc.url, '/r/fwd?a=1');
    assert.match(cacheStatus(reverse), /^sidecache; hit/);
    assert.equal(reverse.text(), '/fwd #1');
    assert.equal(origin.count('/fwd?a=1'), 1);
  });

  it('revalidates with If-None-Match; a 304 from the origin is served as the stored 200', async () => {
    const first = await send(sc.url, '/r/etag');
    assert.equal(first.text(), 'etag body');
    const second = await send(sc.url, '/r/etag');
    assert.equal(second.status, 200);
    assert.equal(second.text(), 'etag body');
    assert.match(cacheStatus(second), /fwd=stale; fwd-status=304/);
    const seen = origin.seen.filter((s) => s.path === '/etag');
    assert.equal(seen.length, 2);
    assert.equal(seen[1]?.headers['if-none-match'], '"v1"');
    // The client's own validator: revalidated upstream, then answered 304 by the cache.
    const conditional = await send(sc.url, '/r/etag', { headers: { 'if-none-match': '"v1"' } });
    assert.equal(conditional.status, 304);
    assert.equal(conditional.body.length, 0);
  });

  it('200 concurrent misses through the real front make exactly one origin request', async () => {
    const replies = await Promise.all(Array.from({ length: 200 }, () => send(sc.url, '/r/slow')));
    assert.equal(origin.count('/slow'), 1);
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.text(), 'slow body');
    }
    // Requests that arrive after the leader stored the response are plain hits; the rest collapse.
    const collapsed = replies.filter((r) => /collapsed/.test(cacheStatus(r))).length;
    const hits = replies.filter((r) => /^sidecache; hit/.test(cacheStatus(r))).length;
    assert.equal(collapsed + hits, 199);
    assert.ok(collapsed >= 1);
  });

  it('isolates credentials: a response fetched with one Authorization is never served to another', async () => {
    const a1 = await send(sc.url, '/r/me', { headers: { authorization: 'Bearer token-a' } });
    const b1 = await send(sc.url, '/r/me', { headers: { authorization: 'Bearer token-b' } });
    const none = await send(sc.url, '/r/me');
    const a2 = await send(sc.url, '/r/me', { headers: { authorization: 'Bearer token-a' } });
    const b2 = await send(sc.url, '/r/me', { headers: { authorization: 'Bearer token-b' } });
    assert.equal(a1.text(), 'user Bearer token-a');
    assert.equal(b1.text(), 'user Bearer token-b');
    assert.equal(none.text(), 'user anonymous');
    assert.equal(a2.text(), 'user Bearer token-a');
    assert.equal(b2.text(), 'user Bearer token-b');
    assert.match(cacheStatus(a2), /^sidecache; hit/);
    assert.match(cacheStatus(b2), /^sidecache; hit/);
    assert.equal(origin.count('/me'), 3);
  });

  for (const path of ['/trunc', '/trunc-chunked']) {
    it(`a truncated origin body is never cached (${path})`, async () => {
      const first = await send(sc.url, `/r${path}`).then(
        (r) => r.body.length,
        () => 'error',
      );
      assert.notEqual(first, FULL.length, 'the client must not get a complete-looking body');
      const second = await send(sc.url, `/r${path}`);
      assert.equal(second.text(), FULL);
      assert.match(cacheStatus(second), /fwd=uri-miss/);
      assert.equal(origin.count(path), 2);
      const third = await send(sc.url, `/r${path}`);
      assert.match(cacheStatus(third), /^sidecache; hit/);
      assert.equal(third.text(), FULL);
    });
  }

  it('a route with cache.enabled: false bypasses the cache', async () => {
    const first = await send(sc.url, '/off/plain');
    const second = await send(sc.url, '/off/plain');
    assert.equal(second.text(), '/plain #2');
    assert.match(cacheStatus(second), /fwd=bypass; fwd-status=200; detail=disabled/);
    assert.equal(first.headers.age, undefined);
    assert.equal(origin.count('/plain'), 2);
  });

  it('POST /purge on the admin listener removes by url, prefix and route', async () => {
    await send(sc.url, '/r/p/one');
    assert.match(cacheStatus(await send(sc.url, '/r/p/one')), /hit/);
    const byUrl = await send(sc.adminUrl, `/purge?url=${encodeURIComponent(`${origin.url}/p/one`)}`, {
      method: 'POST',
    });
    assert.equal(byUrl.status, 200);
    assert.deepEqual(byUrl.json(), { purged: 1, url: `${origin.url}/p/one`, route: 'r' });
    assert.match(cacheStatus(await send(sc.url, '/r/p/one')), /fwd=uri-miss/);
    assert.equal(origin.count('/p/one'), 2);

    await send(sc.url, '/r/p/two');
    await send(sc.url, '/r/q/three');
    const byPrefix = await send(sc.adminUrl, `/purge?prefix=${encodeURIComponent(`${origin.url}/p/`)}`, {
      method: 'POST',
    });
    assert.deepEqual(byPrefix.json(), { purged: 2, prefix: `${origin.url}/p/` });
    assert.match(cacheStatus(await send(sc.url, '/r/q/three')), /hit/);

    const byRoute = await send(sc.adminUrl, '/purge?route=r', { method: 'POST' });
    assert.equal(byRoute.status, 200);
    assert.ok((byRoute.json().purged as number) >= 1);
    assert.match(cacheStatus(await send(sc.url, '/r/q/three')), /fwd=uri-miss/);
  });

  it('POST /purge refuses anything else with a precise message', async () => {
    const cases: Array<[string, string, number, RegExp]> = [
      ['GET', '/purge?route=r', 405, /purge takes POST/],
      ['POST', '/purge', 400, /exactly one of \?url=/],
      ['POST', '/purge?route=r&url=http://x/', 400, /exactly one of/],
      ['POST', '/purge?route=r&route=off', 400, /exactly one of/],
      ['POST', '/purge?path=/x', 400, /unknown parameter "path"/],
      ['POST', '/purge?url=not-a-url', 400, /url: "not-a-url" is not an absolute URL/],
      ['POST', '/purge?url=ftp://x/y', 400, /is not an http\(s\) URL/],
      ['POST', '/purge?prefix=', 400, /prefix: empty value/],
      ['POST', '/purge?route=nope', 400, /route: "nope" is not a configured route \(routes: r, off\)/],
    ];
    for (const [method, target, status, message] of cases) {
      const res = await send(sc.adminUrl, target, { method });
      assert.equal(res.status, status, `${method} ${target}`);
      assert.match(String(res.json().error), message, `${method} ${target}`);
    }
  });

  it('/metrics shows lookups by result, entries, bytes, saved seconds from measured fetch time, avoided requests', async () => {
    await send(sc.url, '/r/timed/a');
    for (let i = 0; i < 3; i++) assert.match(cacheStatus(await send(sc.url, '/r/timed/a')), /hit/);
    const text = (await send(sc.adminUrl, '/metrics')).text();
    const value = (re: RegExp): number => {
      const m = re.exec(text);
      assert.ok(m, `${re} not found in /metrics`);
      return Number(m[1]);
    };
    assert.ok(value(/^sidecache_cache_lookups_total\{route="r",result="hit"\} (\S+)$/m) >= 3);
    assert.ok(value(/^sidecache_cache_lookups_total\{route="r",result="miss"\} (\S+)$/m) >= 1);
    assert.ok(value(/^sidecache_cache_lookups_total\{route="r",result="coalesced"\} (\S+)$/m) >= 1);
    assert.ok(value(/^sidecache_cache_lookups_total\{route="off",result="bypass"\} (\S+)$/m) >= 2);
    assert.ok(value(/^sidecache_upstream_requests_avoided_total\{route="r"\} (\S+)$/m) >= 3);
    // Three hits of a ≥ 30 ms fetch save at least ~90 ms minus serving time.
    assert.ok(value(/^sidecache_saved_seconds_total\{kind="cache",route="r"\} (\S+)$/m) > 0.05);
    assert.ok(value(/^sidecache_cache_entries (\S+)$/m) >= 1);
    assert.ok(value(/^sidecache_cache_size_bytes (\S+)$/m) > 0);
    assert.match(text, /^sidecache_cache_evictions_total 0$/m);
    assert.ok(value(/^sidecache_requests_total\{[^}]*cache="hit"[^}]*\} (\S+)$/m) >= 1);
  });

  it('curl as a client: miss, then hit', async (t) => {
    try {
      await run('curl', ['--version']);
    } catch {
      t.skip('curl is not installed');
      return;
    }
    const url = `${sc.url}/r/curl`;
    const first = await run('curl', ['-sS', '--fail', '-D', '-', '-o', '/dev/null', url]);
    assert.match(first.stdout, /^cache-status: sidecache; fwd=uri-miss; fwd-status=200; ttl=\d+\r$/m);
    const second = await run('curl', ['-sS', '--fail', '-D', '-', url]);
    assert.match(second.stdout, /^cache-status: sidecache; hit; ttl=\d+\r$/m);
    assert.match(second.stdout, /^age: \d+\r$/m);
    assert.match(second.stdout, /\/curl #1$/);
    assert.equal(origin.count('/curl'), 1);
  });
});

describe('cache limits, switches and per-route overrides through the proxy', () => {
  let origin: Origin;
  const started: TestSidecache[] = [];
  const start = async (config: Parameters<typeof startTestSidecache>[0]) => {
    const sc = await startTestSidecache(config);
    started.push(sc);
    return sc;
  };

  before(async () => {
    origin = await startOrigin((req, res, n) => {
      const path = (req.url ?? '/').split('?', 1)[0] as string;
      if (path.startsWith('/v1/')) {
        // Stripe's way: everything no-cache, no-store, whoever asks.
        res.writeHead(200, { 'cache-control': 'no-cache, no-store', 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            path,
            n,
            auth: req.headers.authorization ?? null,
            account: req.headers['stripe-account'] ?? null,
          }),
        );
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`${path} #${n} ${'x'.repeat(900)}`);
    });
  });
  after(async () => {
    for (const sc of started) await sc.close();
    await origin?.close();
  });

  it('evicts least recently used entries when the memory bound is reached, and counts evictions', async () => {
    const sc = await start({
      routes: [{ name: 'r', origin: origin.url }],
      cache: { maxSizeBytes: 4096, maxEntryBytes: 2048 },
    });
    for (let i = 0; i < 8; i++) await send(sc.url, `/r/e${i}`);
    const text = (await send(sc.adminUrl, '/metrics')).text();
    const evicted = Number(/^sidecache_cache_evictions_total (\S+)$/m.exec(text)?.[1]);
    assert.ok(evicted >= 4, `evictions: ${evicted}`);
    const bytes = Number(/^sidecache_cache_size_bytes (\S+)$/m.exec(text)?.[1]);
    assert.ok(bytes <= 4096, `bytes: ${bytes}`);
    assert.match(cacheStatus(await send(sc.url, '/r/e0')), /fwd=uri-miss/);
  });

  it('cache.enabled: false (what --no-cache sets): no Cache-Status, and purge answers 409', async () => {
    const sc = await start({ routes: [{ name: 'r', origin: origin.url }], cache: { enabled: false } });
    await send(sc.url, '/r/nocache');
    const second = await send(sc.url, '/r/nocache');
    assert.equal(second.headers['cache-status'], undefined);
    assert.equal(origin.count('/nocache'), 2);
    const purge = await send(sc.adminUrl, '/purge?route=r', { method: 'POST' });
    assert.equal(purge.status, 409);
    assert.match(String(purge.json().error), /cache is off/);
  });

  it('ignoreNoStore with ttlMs stores no-store answers per credential and key header; POST never', async () => {
    const sc = await start({
      routes: [
        {
          name: 'stripe',
          origin: origin.url,
          cache: {
            ttlMs: 60_000,
            ignoreNoStore: true,
            storePrivate: true,
            keyHeaders: ['stripe-account', 'stripe-version'],
          },
        },
        { name: 'plain', origin: origin.url, prefix: '/plain/' },
      ],
    });
    const get = (auth: string, account?: string) =>
      send(sc.url, '/stripe/v1/prices', {
        headers: { authorization: auth, ...(account ? { 'stripe-account': account } : {}) },
      });
    const a1 = await get('Bearer sk_a');
    const a2 = await get('Bearer sk_a');
    assert.match(cacheStatus(a1), /^sidecache; fwd=uri-miss; fwd-status=200; ttl=\d+$/);
    assert.match(cacheStatus(a2), /^sidecache; hit/);
    assert.deepEqual(JSON.parse(a2.text()), JSON.parse(a1.text()));
    const b = await get('Bearer sk_b');
    assert.equal(JSON.parse(b.text()).auth, 'Bearer sk_b');
    const acct = await get('Bearer sk_a', 'acct_1');
    assert.equal(JSON.parse(acct.text()).account, 'acct_1');
    assert.equal(origin.count('/v1/prices'), 3);
    const post = await send(sc.url, '/stripe/v1/prices', {
      method: 'POST',
      headers: { authorization: 'Bearer sk_a' },
    });
    assert.match(cacheStatus(post), /fwd=bypass/);
    // The same answer on a route without the override is not stored.
    await send(sc.url, '/plain/v1/charges', { headers: { authorization: 'Bearer sk_a' } });
    const again = await send(sc.url, '/plain/v1/charges', { headers: { authorization: 'Bearer sk_a' } });
    assert.match(cacheStatus(again), /detail=/);
    assert.equal(origin.count('/v1/charges'), 2);
  });

  it('paths: overrides apply to matching origin paths only', async () => {
    const sc = await start({
      routes: [
        {
          name: 'stripe',
          origin: origin.url,
          cache: {
            storePrivate: true,
            paths: [{ prefix: '/v1/products', ttlMs: 60_000, ignoreNoStore: true }],
          },
        },
      ],
    });
    const auth = { authorization: 'Bearer sk_p' };
    await send(sc.url, '/stripe/v1/products/prod_1', { headers: auth });
    const hit = await send(sc.url, '/stripe/v1/products/prod_1', { headers: auth });
    assert.match(cacheStatus(hit), /^sidecache; hit/);
    await send(sc.url, '/stripe/v1/customers/cus_1', { headers: auth });
    const miss = await send(sc.url, '/stripe/v1/customers/cus_1', { headers: auth });
    assert.match(cacheStatus(miss), /detail=/);
    assert.equal(origin.count('/v1/products/prod_1'), 1);
    assert.equal(origin.count('/v1/customers/cus_1'), 2);
  });
});
