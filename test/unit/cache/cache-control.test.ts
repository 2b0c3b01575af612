import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseDirectives,
  parseRequestDirectives,
  parseResponseDirectives,
  splitList,
} from '../../../src/cache/cache-control.js';
import { formatHttpDate, parseHttpDate } from '../../../src/cache/http-date.js';

describe('Cache-Control parsing (RFC 9111 §5.2)', () => {
  const cases: [string, string | string[], Record<string, string | true>][] = [
    [
      '§5.2 directive names are case-insensitive',
      'Max-Age=60, NO-STORE',
      { 'max-age': '60', 'no-store': true },
    ],
    [
      '§5.2 quoted arguments are unquoted',
      'no-cache="Set-Cookie, X-A", max-age=5',
      { 'no-cache': 'Set-Cookie, X-A', 'max-age': '5' },
    ],
    ['§4.2.1 first occurrence of a repeated directive wins', 'max-age=10, max-age=20', { 'max-age': '10' }],
    [
      'RFC 9110 §5.3 several field lines form one list',
      ['public', 'max-age=3'],
      { public: true, 'max-age': '3' },
    ],
    ['empty members are ignored', ' , max-age=1 ,, ', { 'max-age': '1' }],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => assert.deepEqual(Object.fromEntries(parseDirectives(input)), expected));
  }

  test('splitList keeps commas inside quoted strings', () => {
    assert.deepEqual(splitList('a, "b,c", d'), ['a', '"b,c"', 'd']);
  });
});

describe('response directives (RFC 9111 §5.2.2)', () => {
  const cases: [string, string, Partial<ReturnType<typeof parseResponseDirectives>>][] = [
    ['§5.2.2.1 max-age', 'max-age=60', { maxAge: 60 }],
    ['§5.2.2.1 max-age in quoted form is accepted', 'max-age="60"', { maxAge: 60 }],
    ['§1.2.2 invalid delta-seconds for max-age reads as 0 (stale)', 'max-age=abc', { maxAge: 0 }],
    ['§1.2.2 negative max-age reads as 0', 'max-age=-5', { maxAge: 0 }],
    [
      '§1.2.2 overflowing delta-seconds is capped at 2^31',
      'max-age=99999999999999',
      { maxAge: 2_147_483_648 },
    ],
    ['§5.2.2.10 s-maxage', 's-maxage=5', { sMaxAge: 5 }],
    ['§5.2.2.4 bare no-cache', 'no-cache', { noCache: true }],
    ['§5.2.2.4 qualified no-cache lists field names', 'no-cache="Set-Cookie"', { noCache: ['set-cookie'] }],
    ['§5.2.2.7 qualified private lists field names', 'private="x-user"', { private: ['x-user'] }],
    ['§5.2.2.2 must-revalidate', 'MUST-REVALIDATE', { mustRevalidate: true }],
    ['§5.2.2.8 proxy-revalidate', 'proxy-revalidate', { proxyRevalidate: true }],
    [
      'RFC 5861 §3 stale-while-revalidate',
      'max-age=1, stale-while-revalidate=30',
      { staleWhileRevalidate: 30 },
    ],
    ['RFC 5861 §4 stale-if-error; invalid value ignored', 'stale-if-error=x', { staleIfError: undefined }],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => {
      const d = parseResponseDirectives(input);
      for (const [k, v] of Object.entries(expected)) {
        assert.deepEqual((d as unknown as Record<string, unknown>)[k], v, k);
      }
    });
  }
});

describe('request directives (RFC 9111 §5.2.1)', () => {
  test('§5.2.1.2 max-stale without a value accepts any staleness', () => {
    assert.equal(parseRequestDirectives('max-stale').maxStale, Number.POSITIVE_INFINITY);
  });
  test('§5.2.1.2 max-stale with a value', () => {
    assert.equal(parseRequestDirectives('max-stale=10').maxStale, 10);
  });
  test('§5.2.1.1 max-age and §5.2.1.3 min-fresh', () => {
    const d = parseRequestDirectives('max-age=5, min-fresh=2');
    assert.equal(d.maxAge, 5);
    assert.equal(d.minFresh, 2);
  });
  test('§5.2.1.7 only-if-cached, §5.2.1.4 no-cache, §5.2.1.5 no-store', () => {
    const d = parseRequestDirectives('Only-If-Cached, No-Cache, no-store');
    assert.equal(d.onlyIfCached, true);
    assert.equal(d.noCache, true);
    assert.equal(d.noStore, true);
  });
  test('§5.4 Pragma: no-cache counts only without Cache-Control', () => {
    assert.equal(parseRequestDirectives(undefined, 'no-cache').noCache, true);
    assert.equal(parseRequestDirectives('max-age=5', 'no-cache').noCache, false);
  });
  test('invalid request max-age is ignored', () => {
    assert.equal(parseRequestDirectives('max-age=x').maxAge, undefined);
  });
});

describe('HTTP-date (RFC 9110 §5.6.7)', () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37);
  const cases: [string, string, number | undefined][] = [
    ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT', t],
    ['obsolete RFC 850 format', 'Sunday, 06-Nov-94 08:49:37 GMT', t],
    ['obsolete asctime format', 'Sun Nov  6 08:49:37 1994', t],
    ['"0" is invalid (RFC 9111 §5.3)', '0', undefined],
    ['ISO 8601 is not an HTTP-date', '1994-11-06T08:49:37Z', undefined],
    ['a non-existent day is invalid', 'Thu, 31 Feb 1994 08:49:37 GMT', undefined],
    ['a time zone other than GMT is invalid', 'Sun, 06 Nov 1994 08:49:37 PST', undefined],
    ['RFC 9111 §4.2 weekday matched case-insensitively', 'SUN, 06 Nov 1994 08:49:37 GMT', t],
    ['RFC 9111 §4.2 month matched case-insensitively', 'Sun, 06 NOV 1994 08:49:37 GMT', t],
    ['RFC 9111 §4.2 GMT matched case-insensitively', 'Sun, 06 Nov 1994 08:49:37 gMT', t],
    ['RFC 9111 §4.2 asctime month in lower case', 'Sun nov  6 08:49:37 1994', t],
  ];
  for (const [name, input, expected] of cases) test(name, () => assert.equal(parseHttpDate(input), expected));
  test('format and parse round-trip', () => assert.equal(parseHttpDate(formatHttpDate(t)), t));
});
