/**
 * Where upstream compression applies (issue 11), against a real origin that records what it
 * was asked: GET and HEAD only, not with Range, not when switched off globally or per route.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

const BODY = 'hello '.repeat(500);
const GZ = gzipSync(BODY);

const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
  const gzip = String(req.headers['accept-encoding'] ?? '').includes('gzip');
  if (req.headers['if-none-match'] === '"e"') {
    send(res, 304, { etag: '"e"', 'cache-control': 'max-age=100', vary: 'Accept-Encoding' });
    return;
  }
  res.writeHead(200, {
    'cache-control': 'max-age=100',
    etag: '"e"',
    vary: 'Accept-Encoding',
    ...(gzip ? { 'content-encoding': 'gzip', 'content-length': String(GZ.length) } : {}),
  });
  res.end(gzip ? GZ : BODY);
};

test('GET and HEAD ask for br, gzip; unsafe methods, Range and no-transform requests keep the client header', async (t) => {
  const h = await startHarness(t, handler);
  await h.get('/a', { headers: { 'accept-encoding': 'identity' } });
  await h.get('/b', { method: 'HEAD' });
  await h.get('/c', { method: 'POST', headers: { 'accept-encoding': 'identity' } });
  await h.get('/d', { headers: { range: 'bytes=0-9' } });
  await h.get('/e', { headers: { 'cache-control': 'max-age=0, no-transform', 'accept-encoding': 'gzip' } });
  assert.deepEqual(
    h.origin.seen.map((s) => [s.method, s.path, s.headers['accept-encoding']]),
    [
      ['GET', '/a', 'br, gzip'],
      ['HEAD', '/b', 'br, gzip'],
      ['POST', '/c', 'identity'],
      ['GET', '/d', undefined],
      ['GET', '/e', 'gzip'],
    ],
  );
});

test('switched off globally or for one route: the client header goes as it is', async (t) => {
  const off = await startHarness(t, handler, { options: { upstreamCompression: false } });
  await off.get('/a');
  assert.equal(off.origin.seen[0]?.headers['accept-encoding'], undefined);
  const route = await startHarness(t, handler, { policy: { upstreamCompression: false } });
  const r = await route.get('/a', { headers: { 'accept-encoding': 'deflate' } });
  assert.equal(route.origin.seen[0]?.headers['accept-encoding'], 'deflate');
  assert.equal(r.text, BODY);
  const codings = await startHarness(t, handler, { options: { upstreamCodings: ['gzip'] } });
  await codings.get('/a');
  assert.equal(codings.origin.seen[0]?.headers['accept-encoding'], 'gzip');
});

test('a coded entry refreshed by a 304 (refresh-ahead) keeps its coded body and is still decoded', async (t) => {
  const h = await startHarness(t, handler, { policy: { refreshAhead: { minHits: 1 } } });
  const first = await h.get('/r');
  assert.equal(first.text, BODY);
  await h.stage.idle();
  h.clock.advance(95_000);
  await h.get('/r');
  await h.stage.idle();
  assert.equal(h.origin.seen[1]?.headers['if-none-match'], '"e"');
  h.clock.advance(10_000);
  const later = await h.get('/r');
  assert.equal(later.ex.cache?.outcome, 'hit');
  assert.equal(later.text, BODY);
  assert.equal(later.headers['content-encoding'], undefined);
  const coded = await h.send('/r', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(coded.reply.headers['content-encoding'], 'gzip');
  assert.ok(Buffer.isBuffer(coded.reply.body) && coded.reply.body.equals(GZ));
});

/** An origin that codes when asked and marks every answer no-transform (RFC 9111 §5.2.2.6). */
function noTransformOrigin(body: string) {
  const coded = gzipSync(body);
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const gzip = String(req.headers['accept-encoding'] ?? '').includes('gzip');
    res.writeHead(200, {
      'cache-control': 'max-age=100, no-transform',
      etag: gzip ? '"gz"' : '"id"',
      vary: 'Accept-Encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(gzip ? coded : body);
  };
}

for (const [name, body] of [
  ['small (decoded in one step otherwise)', BODY],
  ['large (streamed otherwise)', 'x'.repeat(3) + 'no-transform '.repeat(60_000)],
] as const) {
  test(`no-transform response, ${name}: never decoded; a client without the coding gets the origin's answer to its own request`, async (t) => {
    const h = await startHarness(t, noTransformOrigin(body));
    const first = await h.get('/nt');
    assert.equal(first.text, body);
    assert.equal(first.headers['content-encoding'], undefined);
    assert.equal(first.headers['etag'], '"id"', 'the origin identity answer, not a weakened coded one');
    assert.equal(first.ex.cache?.detail, 'no-transform');
    await h.stage.idle();
    assert.deepEqual(
      h.origin.seen.map((s) => s.headers['accept-encoding']),
      ['br, gzip', undefined],
    );
    // The coded answer was stored all the same: a client taking gzip gets its bytes from the store.
    const coded = await h.send('/nt', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(coded.ex.cache?.outcome, 'hit');
    assert.equal(coded.reply.headers['content-encoding'], 'gzip');
    assert.ok(Buffer.isBuffer(coded.reply.body) && coded.reply.body.equals(gzipSync(body)));
    // Another identity client: the stored coded entry is not decoded for it either.
    const again = await h.get('/nt', { headers: { 'accept-encoding': 'identity' } });
    assert.equal(again.text, body);
    assert.equal(again.headers['content-encoding'], undefined);
    assert.equal(h.origin.seen.length, 3);
    assert.equal(h.origin.seen[2]?.headers['accept-encoding'], 'identity');
  });
}
