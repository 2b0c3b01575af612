import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideRange, ifRangeHolds, partialReply } from '../../../src/cache/range.js';

describe('Range (RFC 9110 §14.1.2, §14.2) on a 10-byte representation', () => {
  const cases: [string, string | undefined, ReturnType<typeof decideRange>][] = [
    ['§14.1.2 int-range', 'bytes=0-1', { kind: 'partial', first: 0, last: 1 }],
    ['§14.1.2 open-ended int-range', 'bytes=3-', { kind: 'partial', first: 3, last: 9 }],
    ['§14.1.2 suffix-range', 'bytes=-4', { kind: 'partial', first: 6, last: 9 }],
    [
      '§14.1.2 a suffix longer than the representation is all of it',
      'bytes=-50',
      { kind: 'partial', first: 0, last: 9 },
    ],
    ['§14.1.2 last-pos past the end is clamped', 'bytes=5-100', { kind: 'partial', first: 5, last: 9 }],
    ['§14.1.2 unit names are case-insensitive', 'Bytes=1-1', { kind: 'partial', first: 1, last: 1 }],
    ['§14.1.1 first-pos past the end is unsatisfiable', 'bytes=10-', { kind: 'unsatisfiable' }],
    ['§14.1.1 a zero suffix is unsatisfiable', 'bytes=-0', { kind: 'unsatisfiable' }],
    ['§14.2 several ranges: the whole representation', 'bytes=0-1, 4-5', { kind: 'full' }],
    ['§14.2 another unit is ignored', 'items=0-1', { kind: 'full' }],
    ['§14.2 last < first is invalid, ignored', 'bytes=5-1', { kind: 'full' }],
    ['§14.2 garbage is ignored', 'bytes=a-b', { kind: 'full' }],
    ['absent', undefined, { kind: 'full' }],
  ];
  for (const [name, value, expected] of cases) {
    test(name, () => assert.deepEqual(decideRange(value, 10), expected));
  }
  test('§14.1.1 an empty representation is sent whole', () => {
    assert.deepEqual(decideRange('bytes=0-', 0), { kind: 'full' });
  });
});

describe('If-Range (RFC 9110 §13.1.5)', () => {
  const stored = { etag: '"v1"', 'last-modified': 'Tue, 01 Jan 2030 00:00:00 GMT' };
  test('absent: holds', () => assert.equal(ifRangeHolds(undefined, stored), true));
  test('matching strong ETag: holds', () => assert.equal(ifRangeHolds('"v1"', stored), true));
  test('other ETag: does not hold', () => assert.equal(ifRangeHolds('"v2"', stored), false));
  test('weak ETags never match', () => {
    assert.equal(ifRangeHolds('W/"v1"', stored), false);
    assert.equal(ifRangeHolds('W/"v1"', { etag: 'W/"v1"' }), false);
    assert.equal(ifRangeHolds('"v1"', { etag: 'W/"v1"' }), false);
  });
  test('a date equal to Last-Modified holds; another date or no Last-Modified does not', () => {
    assert.equal(ifRangeHolds('Tue, 01 Jan 2030 00:00:00 GMT', stored), true);
    assert.equal(ifRangeHolds('Wed, 02 Jan 2030 00:00:00 GMT', stored), false);
    assert.equal(ifRangeHolds('Tue, 01 Jan 2030 00:00:00 GMT', { etag: '"v1"' }), false);
  });
});

describe('partial replies from a stored 200', () => {
  const body = Buffer.from('0123456789');
  const headers = { 'content-type': 'text/plain', etag: '"v1"', 'content-length': '10' };
  test('§15.3.7 206 with Content-Range, Content-Length and the stored fields', () => {
    const r = partialReply({ range: 'bytes=2-4' }, 200, headers, body);
    assert.equal(r?.status, 206);
    assert.equal(r?.headers['content-range'], 'bytes 2-4/10');
    assert.equal(r?.headers['content-length'], '3');
    assert.equal(r?.headers['etag'], '"v1"');
    assert.equal(r?.body.toString(), '234');
  });
  test('§15.5.17 416 with Content-Range bytes */length', () => {
    const r = partialReply({ range: 'bytes=20-' }, 200, headers, body);
    assert.equal(r?.status, 416);
    assert.equal(r?.headers['content-range'], 'bytes */10');
    assert.equal(r?.body.byteLength, 0);
  });
  test('the whole response (null) for a failed If-Range, several ranges, or a stored non-200', () => {
    assert.equal(partialReply({ range: 'bytes=0-1', 'if-range': '"v0"' }, 200, headers, body), null);
    assert.equal(partialReply({ range: 'bytes=0-1,3-4' }, 200, headers, body), null);
    assert.equal(partialReply({ range: 'bytes=0-1' }, 404, headers, body), null);
  });
});
