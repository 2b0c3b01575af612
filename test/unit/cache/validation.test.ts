import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { emitCacheHeaders, formatCacheStatus, formatHitMember } from '../../../src/cache/cache-status.js';
import { invalidatedUrls } from '../../../src/cache/invalidation.js';
import {
  clientCopyIsCurrent,
  conditionalHeaders,
  notModifiedMatches,
  updateHeaders,
} from '../../../src/cache/validation.js';

describe('validation (RFC 9111 §4.3)', () => {
  test('§4.3.1 conditional request carries ETag and Last-Modified', () => {
    assert.deepEqual(conditionalHeaders({ etag: '"v1"', 'last-modified': 'Sun, 06 Nov 1994 08:49:37 GMT' }), {
      'if-none-match': '"v1"',
      'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT',
    });
  });
  const matches: [string, Record<string, string>, Record<string, string>, boolean][] = [
    ['§4.3.4 same ETag selects the stored response', { etag: '"a"' }, { etag: '"a"' }, true],
    [
      '§4.3.4 weak and strong forms of one tag match (weak comparison)',
      { etag: 'W/"a"' },
      { etag: '"a"' },
      true,
    ],
    ['§4.3.4 another ETag does not', { etag: '"a"' }, { etag: '"b"' }, false],
    [
      '§4.3.4 Last-Modified must match when no ETag',
      { 'last-modified': 'x' },
      { 'last-modified': 'y' },
      false,
    ],
    ['§4.3.4 a 304 without validators applies', { etag: '"a"' }, {}, true],
  ];
  for (const [name, stored, nm, expected] of matches) {
    test(name, () => assert.equal(notModifiedMatches(stored, nm), expected));
  }
  test('§3.2 a 304 replaces stored fields, Cache-Control included, but not Content-Length', () => {
    const out = updateHeaders(
      { 'cache-control': 'max-age=1', 'content-length': '5', 'x-old': '1', etag: '"a"', age: '50' },
      {
        'cache-control': 'max-age=100',
        'content-length': '0',
        'x-new': '2',
        etag: '"a"',
        connection: 'x-hop',
        'x-hop': 'h',
      },
    );
    assert.equal(out['cache-control'], 'max-age=100');
    assert.equal(out['content-length'], '5');
    assert.equal(out['x-old'], '1');
    assert.equal(out['x-new'], '2');
    assert.equal(out['x-hop'], undefined);
    assert.equal(out['age'], undefined, 'a 304 without Age resets the stored Age');
  });
  const conds: [string, Record<string, string>, Record<string, string>, boolean][] = [
    ['§4.3.2 If-None-Match matching the stored ETag', { 'if-none-match': '"a", "b"' }, { etag: '"b"' }, true],
    ['§4.3.2 If-None-Match uses the weak comparison', { 'if-none-match': 'W/"b"' }, { etag: '"b"' }, true],
    ['§4.3.2 If-None-Match: * matches any stored response', { 'if-none-match': '*' }, {}, true],
    ['§4.3.2 If-None-Match not matching', { 'if-none-match': '"z"' }, { etag: '"b"' }, false],
    [
      '§4.3.2 If-None-Match takes precedence over If-Modified-Since',
      { 'if-none-match': '"z"', 'if-modified-since': 'Sun, 06 Nov 2094 08:49:37 GMT' },
      { etag: '"b"', 'last-modified': 'Sun, 06 Nov 1994 08:49:37 GMT' },
      false,
    ],
    [
      '§4.3.2 If-Modified-Since at or after Last-Modified',
      { 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' },
      { 'last-modified': 'Sun, 06 Nov 1994 08:49:37 GMT' },
      true,
    ],
    [
      '§4.3.2 If-Modified-Since before Last-Modified',
      { 'if-modified-since': 'Sat, 05 Nov 1994 08:49:37 GMT' },
      { 'last-modified': 'Sun, 06 Nov 1994 08:49:37 GMT' },
      false,
    ],
    [
      '§4.3.2 If-Modified-Since falls back to Date',
      { 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' },
      { date: 'Sun, 06 Nov 1994 08:00:00 GMT' },
      true,
    ],
    [
      // cache-tests conditional-lm-fresh-no-lm expects a 304 here; the stored Date is later than the
      // client's date, so its copy may be older than the stored one (RFC 9110 §13.1.3): 200.
      '§4.3.2 If-Modified-Since before the stored Date, no Last-Modified: not current',
      { 'if-modified-since': 'Sun, 06 Nov 1994 07:59:59 GMT' },
      { date: 'Sun, 06 Nov 1994 08:00:00 GMT' },
      false,
    ],
    [
      '§4.3.2 an invalid If-Modified-Since is ignored',
      { 'if-modified-since': 'soon' },
      { 'last-modified': 'Sun, 06 Nov 1994 08:49:37 GMT' },
      false,
    ],
  ];
  for (const [name, req, stored, expected] of conds) {
    test(name, () => assert.equal(clientCopyIsCurrent(req, stored), expected));
  }

  describe('§4.3.2 without Last-Modified or Date: the time the stored response was received', () => {
    const received = Date.parse('Sun, 06 Nov 1994 08:00:00 GMT') + 999; // within that second
    const ims = (date: string) => ({ 'if-modified-since': date });
    test('a client date at or after the receipt second: current (304)', () => {
      assert.equal(clientCopyIsCurrent(ims('Sun, 06 Nov 1994 08:00:00 GMT'), {}, received), true);
      assert.equal(clientCopyIsCurrent(ims('Sun, 06 Nov 1994 09:00:00 GMT'), {}, received), true);
    });
    test('a client date before it: not current (200)', () => {
      assert.equal(clientCopyIsCurrent(ims('Sun, 06 Nov 1994 07:59:59 GMT'), {}, received), false);
    });
    test('an invalid Date counts as none', () => {
      const stored = { date: 'yesterday' };
      assert.equal(clientCopyIsCurrent(ims('Sun, 06 Nov 1994 08:00:00 GMT'), stored, received), true);
      assert.equal(clientCopyIsCurrent(ims('Sun, 06 Nov 1994 07:00:00 GMT'), stored, received), false);
    });
    test('a valid Date is preferred to the receipt time', () => {
      const stored = { date: 'Sun, 06 Nov 1994 10:00:00 GMT' };
      assert.equal(clientCopyIsCurrent(ims('Sun, 06 Nov 1994 09:00:00 GMT'), stored, received), false);
    });
    test('with no receipt time known either, not current', () => {
      assert.equal(clientCopyIsCurrent(ims('Sun, 06 Nov 1994 09:00:00 GMT'), {}), false);
    });
  });
});

describe('invalidation (RFC 9111 §4.4)', () => {
  const target = new URL('https://a.test/items/1');
  const cases: [string, string, number, Record<string, string>, string[]][] = [
    ['§4.4 a successful POST invalidates the target', 'POST', 201, {}, ['https://a.test/items/1']],
    [
      '§4.4 and same-origin Location and Content-Location',
      'PUT',
      200,
      { location: '/items/2', 'content-location': 'https://a.test/items/3' },
      ['https://a.test/items/1', 'https://a.test/items/2', 'https://a.test/items/3'],
    ],
    [
      '§4.4 a cross-origin Location is not invalidated',
      'DELETE',
      204,
      { location: 'https://b.test/x' },
      ['https://a.test/items/1'],
    ],
    ['§4.4 an error status invalidates nothing', 'POST', 500, {}, []],
    ['§4.4 safe methods invalidate nothing', 'GET', 200, {}, []],
  ];
  for (const [name, method, status, headers, expected] of cases) {
    test(name, () =>
      assert.deepEqual(
        invalidatedUrls(method, target, status, headers).map((u) => u.href),
        expected,
      ),
    );
  }
});

describe('Cache-Status (RFC 9211)', () => {
  const cases: [string, Parameters<typeof formatCacheStatus>[1], string][] = [
    ['§2.1 hit with ttl', { hit: true, ttlS: 30 }, 'sidecache; hit; ttl=30'],
    [
      '§2.2 fwd=uri-miss with fwd-status and stored',
      { fwd: 'uri-miss', fwdStatus: 200, stored: true, ttlS: 60 },
      'sidecache; fwd=uri-miss; fwd-status=200; ttl=60; stored',
    ],
    ['§2.5 collapsed', { fwd: 'uri-miss', collapsed: true }, 'sidecache; fwd=uri-miss; collapsed'],
    [
      '§2.8 detail says why it was not stored',
      { fwd: 'uri-miss', fwdStatus: 200, detail: 'authorization' },
      'sidecache; fwd=uri-miss; fwd-status=200; detail=authorization',
    ],
    [
      '§2.4 negative ttl when stale',
      { hit: true, ttlS: -5, detail: 'stale-while-revalidate' },
      'sidecache; hit; ttl=-5; detail=stale-while-revalidate',
    ],
  ];
  for (const [name, e, expected] of cases)
    test(name, () => assert.equal(formatCacheStatus('sidecache', e), expected));
  test('the same member twice in a row, then one differing in any single field: each formatted right', () => {
    const base = { fwd: 'uri-miss', fwdStatus: 200, detail: 'no-store' } as const;
    const expectedBase = 'sidecache; fwd=uri-miss; fwd-status=200; detail=no-store';
    const variants: [Parameters<typeof formatCacheStatus>[1], string, string?][] = [
      [{ ...base, hit: true }, 'sidecache; hit; fwd=uri-miss; fwd-status=200; detail=no-store'],
      [{ ...base, fwd: 'vary-miss' }, 'sidecache; fwd=vary-miss; fwd-status=200; detail=no-store'],
      [{ ...base, fwdStatus: 404 }, 'sidecache; fwd=uri-miss; fwd-status=404; detail=no-store'],
      [{ ...base, ttlS: 5 }, 'sidecache; fwd=uri-miss; fwd-status=200; ttl=5; detail=no-store'],
      [{ ...base, stored: true }, 'sidecache; fwd=uri-miss; fwd-status=200; stored; detail=no-store'],
      [{ ...base, collapsed: true }, 'sidecache; fwd=uri-miss; fwd-status=200; collapsed; detail=no-store'],
      [{ ...base, detail: 'private' }, 'sidecache; fwd=uri-miss; fwd-status=200; detail=private'],
      [base, 'other; fwd=uri-miss; fwd-status=200; detail=no-store', 'other'],
    ];
    for (const [e, expected, name] of variants) {
      assert.equal(formatCacheStatus('sidecache', base), expectedBase);
      assert.equal(formatCacheStatus('sidecache', base), expectedBase);
      assert.equal(formatCacheStatus(name ?? 'sidecache', e), expected);
    }
  });
  test('§2 our member goes after those of caches nearer the origin; Age and Cache-Status can be switched off', () => {
    const h = emitCacheHeaders({ 'cache-status': 'cdn; hit' }, { hit: true }, 3, {
      name: 'sc',
      emitAge: true,
      emitCacheStatus: true,
    });
    assert.equal(h['cache-status'], 'cdn; hit, sc; hit');
    assert.equal(h['age'], '3');
    const off = emitCacheHeaders({}, { hit: true }, 3, {
      name: 'sc',
      emitAge: false,
      emitCacheStatus: false,
    });
    assert.deepEqual(off, {});
  });
  test("a plain hit's short format is the general one's", () => {
    for (const ttlS of [0, 1, 59, 3599, -3, 86_400]) {
      assert.equal(formatHitMember('sidecache', ttlS), formatCacheStatus('sidecache', { hit: true, ttlS }));
    }
  });
});
