/**
 * The hit memo (cache/hit-memo.ts) through the real proxy: it must change nothing a client can
 * see. Two sidecaches in front of the same origin, one with the memo and one without
 * (`cache.hitMemoEntries: 0`), get the same request sequences; every response is compared. The
 * memo's own counter shows that it did answer; purge, invalidation, expiry, credentials, Vary,
 * codings and conditionals are each checked against the memo-less twin.
 */
import assert from 'node:assert/strict';
import type { OutgoingHttpHeaders } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import { type Response, send } from '../../helpers/client.js';
import { waitFor } from '../../helpers/clock.js';
import { type Origin, startOrigin } from '../../helpers/counting-origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a client sees, minus what differs by instance or by the millisecond. */
function visible(r: Response): Record<string, unknown> {
  const headers: Record<string, unknown> = { ...r.headers };
  for (const h of ['date', 'via', 'server-timing', 'age', 'connection', 'keep-alive']) delete headers[h];
  // Age and the remaining ttl may tick over between the two instances' answers (each stored its
  // own copy a moment apart); whether they are there must not differ.
  if (typeof headers['cache-status'] === 'string') {
    headers['cache-status'] = headers['cache-status'].replace(/ttl=-?\d+/, 'ttl=N');
  }
  return { status: r.status, headers, hasAge: r.headers.age !== undefined, body: r.body.toString('base64') };
}

/** The value of an unlabelled series on /metrics; -1 when it is not there. */
async function metricValue(sc: TestSidecache, name: string): Promise<number> {
  const text = (await send(sc.adminUrl, '/metrics')).text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : -1;
}

const recalls = (sc: TestSidecache) => metricValue(sc, 'sidecache_cache_hit_memo_recalls_total');
const entries = (sc: TestSidecache) => metricValue(sc, 'sidecache_cache_entries');

describe('hit memo', () => {
  let origin: Origin;
  let memo: TestSidecache;
  let plain: TestSidecache;

  before(async () => {
    origin = await startOrigin((req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0] as string;
      const h = req.headers;
      if (path.endsWith('/short')) {
        res.writeHead(200, { 'cache-control': 'max-age=2', etag: '"s"' }).end('short-lived');
        return;
      }
      if (path.endsWith('/vary')) {
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
        res.end(`lang ${h['accept-language'] ?? 'none'}`);
        return;
      }
      if (path.endsWith('/me')) {
        res.writeHead(200, { 'cache-control': 'public, max-age=60' });
        res.end(`user ${h.authorization ?? 'anonymous'}`);
        return;
      }
      if (path.endsWith('/gz')) {
        const body = Buffer.from('{"coded":true}'.repeat(20));
        if (/gzip/.test(String(h['accept-encoding'] ?? ''))) {
          res.writeHead(200, {
            'cache-control': 'max-age=60',
            'content-encoding': 'gzip',
            vary: 'Accept-Encoding',
          });
          res.end(gzipSync(body));
        } else {
          res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' }).end(body);
        }
        return;
      }
      if (req.method === 'POST') {
        res.writeHead(204).end();
        return;
      }
      if (h['if-none-match'] === '"e"') {
        res.writeHead(304, { etag: '"e"', 'cache-control': 'max-age=60' }).end();
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"e"', 'content-type': 'text/plain' });
      res.end(`body of ${path}`);
    });
    const routes = [{ name: 'r', origin: origin.url }];
    memo = await startTestSidecache({ routes });
    plain = await startTestSidecache({ routes, cache: { hitMemoEntries: 0 } });
  });
  after(async () => {
    await memo?.close();
    await plain?.close();
    await origin?.close();
  });

  /** Sends the same request to both and asserts that their clients see the same response. */
  async function both(path: string, headers: OutgoingHttpHeaders = {}, method = 'GET'): Promise<Response> {
    const a = await send(memo.url, path, { headers, method });
    const b = await send(plain.url, path, { headers, method });
    assert.deepEqual(visible(a), visible(b), `${method} ${path} ${JSON.stringify(headers)}`);
    return a;
  }

  it('answers a repeated hit from the memo, exactly as the pipeline does', async () => {
    const before = await recalls(memo);
    const first = await both('/r/plain');
    assert.match(String(first.headers['cache-status']), /fwd=uri-miss; fwd-status=200; ttl=\d+$/);
    for (let i = 0; i < 4; i++) {
      const r = await both('/r/plain');
      assert.match(String(r.headers['cache-status']), /^sidecache; hit; ttl=\d+$/);
      // Headers are added to each reply's own copy: one timing, never accumulated on the entry.
      assert.match(
        String(r.headers['server-timing']),
        /^cache;dur=[\d.]+;desc="hit", total;dur=[\d.]+;desc="to headers"$/,
      );
      assert.equal(r.text(), 'body of /plain');
    }
    // The first two hits are decided by the pipeline (an entry is remembered on its second hit);
    // the next two are recalled.
    assert.equal((await recalls(memo)) - before, 2);
    assert.equal(await recalls(plain), 0);
    assert.equal(origin.count('/plain'), 2); // one per instance
  });

  it('forward-proxy (absolute-form) requests are remembered and recalled the same way', async () => {
    const before = await recalls(memo);
    for (let i = 0; i < 4; i++) {
      const r = await both(`${origin.url}/fwd`);
      assert.equal(r.text(), 'body of /fwd');
    }
    assert.equal((await recalls(memo)) - before, 1);
    // A reverse-route request for the same origin URL shares the stored response, not the memo key.
    const viaRoute = await both('/r/fwd');
    assert.match(String(viaRoute.headers['cache-status']), /^sidecache; hit/);
  });

  it('never crosses credentials: each token, and none, gets its own answer', async () => {
    const a = { authorization: 'Bearer token-a' };
    const b = { authorization: 'Bearer token-b' };
    const seq: OutgoingHttpHeaders[] = [a, a, a, b, b, {}, {}, a, b, {}, a, b, b, {}, {}, a];
    for (const headers of seq) {
      const r = await both('/r/me', headers);
      assert.equal(r.text(), `user ${headers.authorization ?? 'anonymous'}`);
    }
    assert.ok((await recalls(memo)) > 3);
  });

  it('Vary: each language gets its own variant (and a second variant turns the memo off for that URL)', async () => {
    for (const lang of ['en', 'en', 'en', 'fr', 'fr', 'en', undefined, 'fr']) {
      const headers = lang === undefined ? {} : { 'accept-language': lang };
      const r = await both('/r/vary', headers);
      assert.equal(r.text(), `lang ${lang ?? 'none'}`);
    }
  });

  it('codings: a stored gzip body is sent coded to gzip clients and decoded to the others', async () => {
    // The miss: its client may have its answer before the gzip body has passed the decode check
    // and been stored, so both instances are waited for (else the next request may be collapsed
    // onto the fill in one of them and be a hit in the other).
    const before = [await entries(memo), await entries(plain)] as const;
    await both('/r/gz');
    await waitFor(
      async () => (await entries(memo)) > before[0] && (await entries(plain)) > before[1],
      5000,
      'the gzip entry stored in both',
    );
    const seq: OutgoingHttpHeaders[] = [
      {},
      { 'accept-encoding': 'gzip' },
      { 'accept-encoding': 'gzip' },
      {},
      { 'accept-encoding': 'br' },
    ];
    for (const headers of seq) {
      const r = await both('/r/gz', headers);
      const coded = r.headers['content-encoding'] === 'gzip';
      assert.equal(coded, headers['accept-encoding'] === 'gzip');
    }
  });

  it('requests with conditionals, Range, Cache-Control or a body take the pipeline', async () => {
    await both('/r/cond');
    await both('/r/cond');
    const notModified = await both('/r/cond', { 'if-none-match': '"e"' });
    assert.equal(notModified.status, 304);
    const part = await both('/r/cond', { range: 'bytes=0-3' });
    assert.equal(part.status, 206);
    assert.equal(part.text(), 'body');
    const before = origin.count('/cond');
    const revalidated = await both('/r/cond', { 'cache-control': 'no-cache' });
    assert.equal(revalidated.status, 200);
    assert.equal(origin.count('/cond') - before, 2); // each instance asked the origin
    await both('/r/cond', { 'x-anything': 'else' });
  });

  it('a purge, an invalidating POST and expiry are seen at once', async () => {
    for (let i = 0; i < 3; i++) await both('/r/gone');
    assert.equal(origin.count('/gone'), 2);
    // An unsafe request to the URL invalidates it (RFC 9111 §4.4).
    await both('/r/gone', {}, 'POST');
    const afterPost = await both('/r/gone');
    assert.match(String(afterPost.headers['cache-status']), /fwd=uri-miss/);
    assert.equal(origin.count('/gone'), 6); // per instance: the first GET, the POST, the GET after it
    await both('/r/gone');
    // Purge on the admin listener.
    for (const sc of [memo, plain]) {
      const purged = await send(sc.adminUrl, `/purge?url=${encodeURIComponent(`${origin.url}/gone`)}`, {
        method: 'POST',
      });
      assert.equal(purged.status, 200);
    }
    const afterPurge = await both('/r/gone');
    assert.match(String(afterPurge.headers['cache-status']), /fwd=uri-miss/);
    // max-age=2: fresh (the memo answers), then stale (revalidated, never a memo hit). Checked per
    // instance: each stored its copy at its own moment, so near expiry their answers may differ.
    const recalled = await recalls(memo);
    for (const sc of [memo, plain]) {
      for (let i = 0; i < 4; i++) await send(sc.url, '/r/short');
    }
    assert.ok((await recalls(memo)) - recalled >= 1, 'the memo answered the fresh entry');
    await sleep(2_100);
    for (const sc of [memo, plain]) {
      const stale = await send(sc.url, '/r/short');
      assert.doesNotMatch(String(stale.headers['cache-status']), /; hit/);
      assert.equal(stale.text(), 'short-lived');
    }
  });

  it('a config reload forgets every remembered decision', async () => {
    const other = await startOrigin((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' }).end('from the new origin');
    });
    const sc = await startTestSidecache({ routes: [{ name: 'r', origin: origin.url }] });
    try {
      for (let i = 0; i < 4; i++) assert.equal((await send(sc.url, '/r/moved')).text(), 'body of /moved');
      assert.equal(await recalls(sc), 1);
      const outcome = sc.instance.reload(() =>
        compileRuntime(
          parseConfig({
            listen: '127.0.0.1:0',
            admin: { listen: '127.0.0.1:0' },
            log: { level: 'silent' },
            routes: [{ name: 'r', origin: other.url }],
          }),
        ),
      );
      assert.equal(outcome.result, 'ok', JSON.stringify(outcome));
      assert.equal((await send(sc.url, '/r/moved')).text(), 'from the new origin');
      assert.equal(other.count('/moved'), 1);
    } finally {
      await sc.close();
      await other.close();
    }
  });
});
