import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import {
  accepts,
  checkDecodable,
  contentCodings,
  DecodedCopies,
  decodedHeaders,
  decodeWhole,
  planCoding,
  WHOLE_DECODE_MAX_CODED,
  WHOLE_DECODE_MAX_IDENTITY,
  withVaryAcceptEncoding,
} from '../../../src/cache/compression.js';

describe('Accept-Encoding (RFC 9110 §12.5.3)', () => {
  const cases: [string | undefined, string, boolean][] = [
    [undefined, 'gzip', false], // no header: identity only, as nginx gunzip and curl expect
    ['gzip', 'gzip', true],
    ['GZIP', 'gzip', true],
    ['x-gzip', 'gzip', true],
    ['gzip', 'x-gzip', true],
    ['br', 'gzip', false],
    ['gzip;q=0', 'gzip', false],
    ['gzip; q=0.5, br', 'gzip', true],
    ['*', 'br', true],
    ['*;q=0', 'br', false],
    ['gzip;q=0, *', 'gzip', false],
    ['identity', 'gzip', false],
    ['', 'gzip', false],
  ];
  for (const [ae, coding, want] of cases) {
    test(`${JSON.stringify(ae)} ${want ? 'accepts' : 'does not accept'} ${coding}`, () => {
      assert.equal(accepts(ae, coding), want);
    });
  }
});

describe('coding plans and headers', () => {
  test('content codings: identity and empty are none', () => {
    assert.deepEqual(contentCodings({}), []);
    assert.deepEqual(contentCodings({ 'content-encoding': 'identity' }), []);
    assert.deepEqual(contentCodings({ 'content-encoding': 'GZIP' }), ['gzip']);
  });
  test('several codings or an unknown one are left alone', () => {
    assert.equal(planCoding({ 'content-encoding': 'gzip, br' }, undefined).kind, 'as-is');
    assert.equal(planCoding({ 'content-encoding': 'zstd' }, undefined).kind, 'as-is');
    assert.equal(planCoding({}, undefined).kind, 'as-is');
  });
  test('decode when not accepted, send coded when accepted', () => {
    assert.deepEqual(planCoding({ 'content-encoding': 'br' }, 'gzip'), { kind: 'decode', coding: 'br' });
    assert.deepEqual(planCoding({ 'content-encoding': 'x-gzip' }, undefined), {
      kind: 'decode',
      coding: 'gzip',
    });
    assert.deepEqual(planCoding({ 'content-encoding': 'gzip' }, 'gzip, br'), {
      kind: 'coded',
      coding: 'gzip',
    });
  });
  test('decoded headers: no coding, length or ranges; weak ETag; Vary names Accept-Encoding once', () => {
    const h = decodedHeaders({
      'content-encoding': 'gzip',
      'content-length': '10',
      'accept-ranges': 'bytes',
      etag: '"a"',
      vary: 'Authorization',
    });
    assert.deepEqual(h, { etag: 'W/"a"', vary: 'Authorization, Accept-Encoding' });
    assert.equal(decodedHeaders({ etag: 'W/"b"' }).etag, 'W/"b"');
    // Decoded whole in memory: the decoded length replaces the coded one.
    assert.equal(
      decodedHeaders({ 'content-encoding': 'br', 'content-length': '10' }, 42)['content-length'],
      '42',
    );
    assert.equal(withVaryAcceptEncoding('accept-encoding'), 'accept-encoding');
    assert.equal(withVaryAcceptEncoding('*'), '*');
    assert.equal(withVaryAcceptEncoding(undefined), 'Accept-Encoding');
  });
});

describe('decode check before storing', () => {
  const body = Buffer.from('x'.repeat(10_000));
  test('a valid body resolves its identity size', async () => {
    assert.equal(await checkDecodable(gzipSync(body), 'gzip', 1e9), body.length);
  });
  test('a corrupt or truncated body resolves null', async () => {
    const gz = gzipSync(body);
    assert.equal(await checkDecodable(Buffer.from('not gzip at all'), 'gzip', 1e9), null);
    assert.equal(await checkDecodable(gz.subarray(0, gz.length - 8), 'gzip', 1e9), null);
  });
  test('a body that decodes past the bound (a bomb) resolves null', async () => {
    assert.equal(await checkDecodable(gzipSync(Buffer.alloc(1_000_000)), 'gzip', 100_000), null);
  });
});

describe('one-step decoding and decoded copies', () => {
  const body = Buffer.from(JSON.stringify({ items: Array.from({ length: 50 }, (_, i) => ({ id: i })) }));
  test('small bodies decode in one step; corrupt, oversized or bomb-like ones give null', () => {
    assert.ok(decodeWhole(gzipSync(body), 'gzip')?.equals(body));
    assert.ok(decodeWhole(brotliCompressSync(body), 'br')?.equals(body));
    assert.ok(decodeWhole(deflateSync(body), 'deflate')?.equals(body));
    assert.equal(decodeWhole(Buffer.from('not gzip at all'), 'gzip'), null);
    const gz = gzipSync(body);
    assert.equal(decodeWhole(gz.subarray(0, gz.length - 8), 'gzip'), null, 'truncated');
    assert.equal(decodeWhole(randomBytes(WHOLE_DECODE_MAX_CODED + 1), 'gzip'), null, 'too large coded');
    const bomb = gzipSync(Buffer.alloc(WHOLE_DECODE_MAX_IDENTITY + 1));
    assert.ok(bomb.length <= WHOLE_DECODE_MAX_CODED);
    assert.equal(decodeWhole(bomb, 'gzip'), null, 'decodes past the identity bound');
  });

  test('a copy is made once per stored body, and the bound evicts the oldest', () => {
    const copies = new DecodedCopies(3 * body.length);
    const stored = [gzipSync(body), gzipSync(body), gzipSync(body), gzipSync(body)];
    const first = copies.of(stored[0] as Buffer, 'gzip');
    assert.ok(first?.equals(body));
    assert.equal(copies.of(stored[0] as Buffer, 'gzip'), first, 'the same copy, not decoded again');
    assert.equal(copies.bytes, body.length);
    for (const s of stored.slice(1)) assert.ok(copies.of(s, 'gzip')?.equals(body));
    assert.equal(copies.bytes, 3 * body.length, 'held to the bound');
    const again = copies.of(stored[0] as Buffer, 'gzip');
    assert.ok(again?.equals(body));
    assert.notEqual(again, first, 'the oldest copy was evicted and is decoded afresh');
    // Other bytes with equal content never share a copy by accident of content.
    const other = Buffer.from(stored[1] as Buffer);
    assert.notEqual(copies.of(other, 'gzip'), copies.of(stored[1] as Buffer, 'gzip'));
  });
});
