/**
 * Range requests (RFC 9110 §14) against a real origin that counts requests: answered from a stored
 * complete 200 when it can be reused, passed on as they are otherwise (partial content: partial.test.ts).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

const BODY = '0123456789';
const LAST_MODIFIED = 'Tue, 01 Jan 2030 00:00:00 GMT';

/** An origin that serves BODY (max-age=100, a strong ETag) and honours one `bytes=a-b` range itself. */
function origin(req: IncomingMessage, res: ServerResponse, n: number): void {
  const headers = { 'cache-control': 'max-age=100', etag: `"v${n}"`, 'last-modified': LAST_MODIFIED };
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (m === null) {
    send(res, 200, headers, BODY);
    return;
  }
  const [first, last] = [Number(m[1]), Number(m[2])];
  send(
    res,
    206,
    { ...headers, 'content-range': `bytes ${first}-${last}/${BODY.length}` },
    BODY.slice(first, last + 1),
  );
}

test('RFC 9110 §14.2 single ranges are served as 206 from a stored 200, 416 when unsatisfiable', async (t) => {
  const h = await startHarness(t, origin);
  await h.get('/r');
  await h.stage.idle();
  const cases: [string, number, string, string][] = [
    ['bytes=0-1', 206, '01', 'bytes 0-1/10'],
    ['bytes=7-', 206, '789', 'bytes 7-9/10'],
    ['bytes=-3', 206, '789', 'bytes 7-9/10'],
    ['bytes=8-100', 206, '89', 'bytes 8-9/10'],
    ['bytes=10-', 416, '', 'bytes */10'],
  ];
  for (const [range, status, text, contentRange] of cases) {
    const r = await h.get('/r', { headers: { range } });
    assert.equal(r.status, status, range);
    assert.equal(r.text, text, range);
    assert.equal(r.headers['content-range'], contentRange, range);
    assert.equal(r.headers['content-length'], String(text.length), range);
    assert.equal(r.source, 'cache', range);
    assert.equal(r.ex.cache?.outcome, 'hit', range);
    assert.match(cacheStatus(r), /^sidecache; hit/);
  }
  // Several ranges may be answered with the whole representation (§14.2).
  const multi = await h.get('/r', { headers: { range: 'bytes=0-1, 4-5' } });
  assert.equal(multi.status, 200);
  assert.equal(multi.text, BODY);
  assert.equal(multi.headers['content-range'], undefined);
  assert.equal(h.origin.count('/r'), 1, 'every answer came from the store');
});

test('RFC 9110 §13.1.5 If-Range: a matching strong ETag or Last-Modified date gives 206, else the whole 200', async (t) => {
  const h = await startHarness(t, origin);
  await h.get('/ir');
  await h.stage.idle();
  const partial = async (ifRange: string) =>
    h.get('/ir', { headers: { range: 'bytes=0-1', 'if-range': ifRange } });
  assert.equal((await partial('"v1"')).status, 206);
  assert.equal((await partial(LAST_MODIFIED)).status, 206);
  const changed = await partial('"v0"');
  assert.equal(changed.status, 200);
  assert.equal(changed.text, BODY);
  assert.equal((await partial('W/"v1"')).status, 200, 'weak tags never match');
  assert.equal((await partial('Wed, 02 Jan 2030 00:00:00 GMT')).status, 200);
  assert.equal(h.origin.count('/ir'), 1);
});

test('a Range request on a miss is forwarded as it is; the 206 is passed on (and kept as a part: partial.test.ts)', async (t) => {
  const h = await startHarness(t, origin);
  const r = await h.get('/miss', { headers: { range: 'bytes=2-3' } });
  assert.equal(r.status, 206);
  assert.equal(r.text, '23');
  assert.equal(r.headers['content-range'], 'bytes 2-3/10');
  assert.match(cacheStatus(r), /fwd=uri-miss; fwd-status=206; detail=partial/);
  assert.equal(h.origin.seen[0]?.headers.range, 'bytes=2-3');
  await h.stage.idle();
  // Only a part was stored (not from byte 0): the next plain GET fetches the whole, and stores it.
  const full = await h.get('/miss');
  assert.equal(full.status, 200);
  assert.equal(full.ex.cache?.outcome, 'miss');
  assert.equal(h.origin.count('/miss'), 2);
  assert.equal(h.origin.seen[1]?.headers.range, undefined);
});

test('a Range request on a stale entry is forwarded as it is; a HEAD ignores Range', async (t) => {
  const h = await startHarness(t, origin);
  await h.get('/s');
  await h.stage.idle();
  const head = await h.get('/s', { method: 'HEAD', headers: { range: 'bytes=0-1' } });
  assert.equal(head.status, 200);
  assert.equal(head.ex.cache?.outcome, 'hit');
  h.clock.advance(200_000);
  const r = await h.get('/s', { headers: { range: 'bytes=0-1' } });
  assert.equal(r.status, 206);
  assert.equal(r.source, 'origin');
  assert.match(cacheStatus(r), /fwd=stale; fwd-status=206; detail=partial/);
  assert.equal(h.origin.count('/s'), 2);
  assert.equal(h.origin.seen[1]?.headers.range, 'bytes=0-1');
  assert.equal(h.origin.seen[1]?.headers['if-none-match'], undefined, 'not turned into a revalidation');
});

test('stale-while-revalidate with Range: 206 from the stale entry, background refresh without Range', async (t) => {
  const h = await startHarness(t, (_req, res, n) =>
    send(res, 200, { 'cache-control': 'max-age=1, stale-while-revalidate=100', etag: `"v${n}"` }, BODY),
  );
  await h.get('/swr');
  await h.stage.idle();
  h.clock.advance(5_000);
  const r = await h.get('/swr', { headers: { range: 'bytes=0-0' } });
  assert.equal(r.status, 206);
  assert.equal(r.text, '0');
  await h.stage.idle();
  assert.equal(h.origin.count('/swr'), 2);
  assert.equal(h.origin.seen[1]?.headers.range, undefined);
  assert.equal(h.origin.seen[1]?.headers['if-none-match'], '"v1"');
});

test('a Range request for a stored coded body the client cannot take gets the whole decoded 200, never a slice of the coding', async (t) => {
  const coded = gzipSync(Buffer.from(BODY.repeat(50)));
  // No Vary: Accept-Encoding (a careless origin), so the identity client's request matches the stored gzip variant.
  const h = await startHarness(t, (_req, res) =>
    send(res, 200, { 'cache-control': 'max-age=100', 'content-encoding': 'gzip', etag: '"g1"' }, coded),
  );
  await h.get('/coded', { headers: { 'accept-encoding': 'gzip' } });
  await h.stage.idle();
  const r = await h.get('/coded', { headers: { range: 'bytes=0-3', 'accept-encoding': 'identity' } });
  assert.equal(r.status, 200);
  assert.equal(r.text, BODY.repeat(50));
  assert.equal(r.headers['content-range'], undefined);
  assert.equal(r.headers['content-encoding'], undefined);
  // A client that takes gzip gets a slice of the stored (coded) bytes, as RFC 9110 §14.1 defines ranges.
  const g = await h.get('/coded', { headers: { range: 'bytes=0-3', 'accept-encoding': 'gzip' } });
  assert.equal(g.status, 206);
  assert.equal(g.headers['content-range'], `bytes 0-3/${coded.length}`);
  assert.equal(h.origin.count('/coded'), 1);
});
