/**
 * Partial content (RFC 9111 §3.3, §3.4) against real origins on loopback: 206 answers kept as
 * parts, later ranges they cover served from them, a part completed with a Range request for the
 * rest and combined only when validators match; hostile Content-Range never stored or combined.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

const BODY = Buffer.from(Array.from({ length: 100 }, (_, i) => String.fromCharCode(33 + (i % 90))).join(''));

interface OriginOptions {
  /** Validators on every answer (default: a strong ETag). */
  readonly validators?: (n: number) => Record<string, string>;
  /** The representation served for request n (default BODY). */
  readonly body?: (n: number) => Buffer;
}

/** An origin that honours one `bytes=a-b` / `bytes=a-` range (and If-Range by ETag) itself. */
function rangeOrigin(o: OriginOptions = {}) {
  return (req: IncomingMessage, res: ServerResponse, n: number): void => {
    const body = o.body?.(n) ?? BODY;
    const headers: Record<string, string> = {
      'cache-control': 'max-age=100',
      ...(o.validators?.(n) ?? { etag: '"v1"' }),
    };
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (m === null || (ifRange !== undefined && ifRange !== headers.etag)) {
      send(res, 200, headers, body);
      return;
    }
    const first = Number(m[1]);
    const last = m[2] === '' ? body.length - 1 : Math.min(Number(m[2]), body.length - 1);
    send(
      res,
      206,
      { ...headers, 'content-range': `bytes ${first}-${last}/${body.length}` },
      body.subarray(first, last + 1),
    );
  };
}

test('§3.3 a 206 is kept as a part; ranges it covers are served from it, others go to the origin and grow it', async (t) => {
  const h = await startHarness(t, rangeOrigin());
  const a = await h.get('/p', { headers: { range: 'bytes=0-49' } });
  assert.equal(a.status, 206);
  assert.equal(a.text, BODY.subarray(0, 50).toString());
  await h.stage.idle();
  for (const [range, first, last] of [
    ['bytes=10-19', 10, 19],
    ['bytes=40-', 40, 49], // not covered: the part ends at 49 and the representation at 99
  ] as const) {
    const r = await h.get('/p', { headers: { range } });
    if (range === 'bytes=40-') {
      assert.equal(r.ex.cache?.outcome, 'miss', range);
      continue;
    }
    assert.equal(r.status, 206, range);
    assert.equal(r.ex.cache?.outcome, 'hit', range);
    assert.equal(r.text, BODY.subarray(first, last + 1).toString(), range);
    assert.equal(r.headers['content-range'], `bytes ${first}-${last}/100`, range);
    assert.equal(r.headers['content-length'], String(last - first + 1), range);
    assert.match(cacheStatus(r), /^sidecache; hit.*detail=partial/);
  }
  await h.stage.idle();
  // 0-49 and 40-99 combined into the whole: stored as the complete 200.
  const suffix = await h.get('/p', { headers: { range: 'bytes=-5' } });
  assert.equal(suffix.ex.cache?.outcome, 'hit');
  assert.equal(suffix.text, BODY.subarray(95).toString());
  const whole = await h.get('/p');
  assert.equal(whole.status, 200);
  assert.equal(whole.ex.cache?.outcome, 'hit');
  assert.equal(whole.text, BODY.toString());
  assert.equal(h.origin.count('/p'), 2);
});

test('§3.4 a GET without Range completes a part from byte 0 with a Range for the rest, combined under a matching strong ETag', async (t) => {
  const h = await startHarness(t, rangeOrigin());
  await h.get('/c', { headers: { range: 'bytes=0-29' } });
  await h.stage.idle();
  const whole = await h.get('/c');
  assert.equal(whole.status, 200);
  assert.equal(whole.text, BODY.toString());
  assert.equal(whole.headers['content-length'], '100');
  assert.equal(whole.headers['content-range'], undefined);
  assert.equal(h.origin.seen[1]?.headers.range, 'bytes=30-');
  assert.equal(h.origin.seen[1]?.headers['if-range'], '"v1"');
  await h.stage.idle();
  const again = await h.get('/c');
  assert.equal(again.ex.cache?.outcome, 'hit');
  assert.equal(again.text, BODY.toString());
  assert.equal(h.origin.count('/c'), 2);
});

test('§3.4 a strong Last-Modified (60 s before Date) combines parts without an ETag', async (t) => {
  const lm = new Date(Date.now() - 3600_000).toUTCString();
  const h = await startHarness(t, rangeOrigin({ validators: () => ({ 'last-modified': lm }) }));
  h.clock.advance(0);
  await h.get('/lm', { headers: { range: 'bytes=0-29' } });
  await h.stage.idle();
  const whole = await h.get('/lm');
  assert.equal(whole.text, BODY.toString());
  assert.equal(h.origin.count('/lm'), 2, 'combined: no third fetch');
});

for (const [name, validators] of [
  ['another strong ETag', (n: number) => ({ etag: `"v${n}"` })],
  ['weak ETags', () => ({ etag: 'W/"v1"' })],
  ['no validators', () => ({})],
] as const) {
  test(`§3.4 parts with ${name} are never combined: the whole response is fetched instead`, async (t) => {
    const h = await startHarness(
      t,
      rangeOrigin({ validators, body: (n) => (n === 1 ? BODY : Buffer.from(BODY.toString().toUpperCase())) }),
    );
    await h.get('/m', { headers: { range: 'bytes=0-29' } });
    await h.stage.idle();
    const whole = await h.get('/m');
    assert.equal(whole.status, 200);
    // The answer is one representation: the latest one, whole (never bytes of one and the other).
    assert.equal(whole.text, BODY.toString().toUpperCase());
    // A strong ETag goes as If-Range: the origin itself answers the whole 200. Otherwise its 206 is
    // not combined and the whole response is fetched without Range.
    const ranges = h.origin.seen.map((x) => x.headers.range);
    assert.deepEqual(
      ranges,
      name === 'another strong ETag' ? ['bytes=0-29', 'bytes=30-'] : ['bytes=0-29', 'bytes=30-', undefined],
    );
  });
}

/** An origin answering every request with a 206 of its own making (head and body as given). */
function hostile(contentRange: string, body: string, extra: Record<string, string> = {}) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(206, {
      'cache-control': 'max-age=100',
      etag: '"h"',
      'content-range': contentRange,
      ...extra,
    });
    res.end(body);
  };
}

for (const [name, contentRange, body, extra] of [
  [
    'a body shorter than its Content-Range (no Content-Length)',
    'bytes 0-9/100',
    '01234',
    { 'transfer-encoding': 'chunked' },
  ],
  [
    'a body longer than its Content-Range (no Content-Length)',
    'bytes 0-3/100',
    '01234',
    { 'transfer-encoding': 'chunked' },
  ],
  ['a Content-Range past its length', 'bytes 0-4/3', '01234', {}],
  ['an unknown length', 'bytes 0-4/*', '01234', {}],
  ['a reversed range', 'bytes 4-0/10', '01234', {}],
  ['another unit', 'items 0-4/10', '01234', {}],
  ['two Content-Range values', 'bytes 0-4/10, bytes 5-9/10', '01234', {}],
  ['a coded part', 'bytes 0-4/10', '01234', { 'content-encoding': 'gzip' }],
] as const) {
  test(`a 206 with ${name} is passed on and never stored`, async (t) => {
    const h = await startHarness(t, hostile(contentRange, body, extra));
    const a = await h.get('/h', { headers: { range: 'bytes=0-4' } });
    assert.equal(a.status, 206);
    await h.stage.idle();
    const b = await h.get('/h', { headers: { range: 'bytes=0-2' } });
    assert.equal(b.ex.cache?.outcome, 'miss');
    assert.equal(h.origin.count('/h'), 2);
  });
}

test('a 206 whose Content-Length disagrees with its Content-Range is never stored', async (t) => {
  // Content-Length 5, Content-Range claims 6 bytes (4-9).
  const h = await startHarness(t, hostile('bytes 4-9/10', '01234'));
  await h.get('/cl', { headers: { range: 'bytes=-5' } });
  await h.stage.idle();
  const b = await h.get('/cl', { headers: { range: 'bytes=6-8' } });
  assert.equal(b.ex.cache?.outcome, 'miss');
  assert.equal(h.origin.count('/cl'), 2);
});

test('overlapping parts that disagree on a byte are never combined; the newer part replaces the older', async (t) => {
  const other = Buffer.from(BODY.toString().toLowerCase());
  const h = await startHarness(t, rangeOrigin({ body: (n) => (n === 1 ? BODY : other) }));
  await h.get('/o', { headers: { range: 'bytes=0-49' } });
  await h.stage.idle();
  await h.get('/o', { headers: { range: 'bytes=40-99' } });
  await h.stage.idle();
  // Not 0-99 combined from two representations: 0-9 is no longer held.
  const head = await h.get('/o', { headers: { range: 'bytes=0-9' } });
  assert.equal(head.ex.cache?.outcome, 'miss');
  await h.stage.idle();
  const whole = await h.get('/o');
  assert.equal(whole.text, other.toString());
});

test('a malformed Range from the client is passed on; an If-Range that does not hold is not answered from a part', async (t) => {
  const h = await startHarness(t, rangeOrigin());
  await h.get('/r', { headers: { range: 'bytes=0-49' } });
  await h.stage.idle();
  for (const range of ['bytes=20-10', 'bytes=abc', 'bytes=0-1,3-4', 'pages=1-2']) {
    const r = await h.get('/r', { headers: { range } });
    assert.notEqual(r.ex.cache?.outcome, 'hit', range);
  }
  const r = await h.get('/r', { headers: { range: 'bytes=0-9', 'if-range': '"v0"' } });
  assert.notEqual(r.ex.cache?.outcome, 'hit');
  const ok = await h.get('/r', { headers: { range: 'bytes=0-9', 'if-range': '"v1"' } });
  assert.equal(ok.ex.cache?.outcome, 'hit');
});

test('parts count against the store bounds: a part of a representation larger than maxEntryBytes is not kept', async (t) => {
  const h = await startHarness(t, rangeOrigin(), { options: { maxEntryBytes: 64 } });
  await h.get('/big', { headers: { range: 'bytes=0-9' } });
  await h.stage.idle();
  const b = await h.get('/big', { headers: { range: 'bytes=0-4' } });
  assert.equal(b.ex.cache?.outcome, 'miss');
  assert.equal(h.origin.count('/big'), 2);
});
