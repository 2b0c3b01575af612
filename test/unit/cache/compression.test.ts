import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  accepts,
  checkDecodable,
  contentCodings,
  decodedHeaders,
  planCoding,
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
