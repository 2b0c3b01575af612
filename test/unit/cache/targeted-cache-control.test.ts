import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseSfDictionary,
  policyView,
  targetedDirectives,
} from '../../../src/cache/targeted-cache-control.js';

describe('Structured Field Dictionary (RFC 8941 §4.2.2)', () => {
  test('members: bare keys are Boolean true; integers, strings, tokens, inner lists; parameters dropped', () => {
    const d = parseSfDictionary('max-age=60, no-store, private="set-cookie", a=tok;p=1, l=(1 2), b=?0');
    assert.ok(d !== null);
    assert.deepEqual(Object.fromEntries(d), {
      'max-age': { type: 'integer', value: 60 },
      'no-store': { type: 'boolean', value: true },
      private: { type: 'string', value: 'set-cookie' },
      a: { type: 'token', value: 'tok' },
      l: {
        type: 'inner-list',
        items: [
          { type: 'integer', value: 1 },
          { type: 'integer', value: 2 },
        ],
      },
      b: { type: 'boolean', value: false },
    });
  });
  test('the last occurrence of a key wins', () => {
    assert.deepEqual(parseSfDictionary('max-age=1, max-age=2')?.get('max-age'), {
      type: 'integer',
      value: 2,
    });
  });
  const invalid: [string, string][] = [
    ['unknown item type', 'max-age=10000, &&&&&'],
    ['upper-case key', 'MaX-aGe=3600'],
    ['space before =', 'max-age =100'],
    ['space after =', 'max-age= 100'],
    ['trailing comma', 'max-age=1,'],
    ['integer of 16 digits', 'max-age=1234567890123456'],
    ['unterminated string', 'private="a'],
  ];
  for (const [name, value] of invalid) {
    test(`not a Dictionary: ${name}`, () => assert.equal(parseSfDictionary(value), null));
  }
});

describe('targeted field directives (RFC 9213 §2.1)', () => {
  const cases: [string, string | undefined, string | null][] = [
    ['max-age as Cache-Control syntax', 'max-age=3600', 'max-age=3600'],
    ['extension directives are ignored', 'foobar, max-age=3600', 'max-age=3600'],
    [
      'an out-of-range max-age is clamped to 2^31 (RFC 9111 §1.2.2)',
      'max-age=99999999999',
      'max-age=2147483648',
    ],
    [
      'flags and qualified forms',
      'no-cache, private="x-a", must-revalidate',
      'no-cache, private="x-a", must-revalidate',
    ],
    ['Boolean false is absent', 'no-store=?0, max-age=5', 'max-age=5'],
    ['wrong type (String max-age): field ignored', 'max-age="10000"', null],
    ['wrong type (negative integer): field ignored', 'max-age=-1', null],
    ['wrong type (Integer no-store): field ignored', 'no-store=5', null],
    ['not a Dictionary: field ignored', 'max-age=10000, &&&&&', null],
    ['empty: field ignored', '  ', null],
    ['absent', undefined, null],
  ];
  for (const [name, value, expected] of cases) {
    test(name, () => assert.equal(targetedDirectives(value), expected));
  }
});

describe('policy view (RFC 9213 §2.1: first valid target wins, Cache-Control and Expires ignored)', () => {
  const targets = ['sidecache-cache-control', 'cdn-cache-control'];
  test('CDN-Cache-Control replaces Cache-Control and Expires', () => {
    const v = policyView(
      {
        'cache-control': 'no-store',
        expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
        'cdn-cache-control': 'max-age=60',
      },
      targets,
    );
    assert.equal(v.field, 'cdn-cache-control');
    assert.equal(v.headers['cache-control'], 'max-age=60');
    assert.equal(v.headers['expires'], undefined);
    assert.equal(v.headers['cdn-cache-control'], 'max-age=60', 'the field itself is kept');
  });
  test('the more specific target is used first', () => {
    const v = policyView(
      { 'cdn-cache-control': 'max-age=60', 'sidecache-cache-control': 'no-store' },
      targets,
    );
    assert.equal(v.field, 'sidecache-cache-control');
    assert.equal(v.headers['cache-control'], 'no-store');
  });
  test('an invalid first target falls through to the next, then to Cache-Control', () => {
    const next = policyView(
      { 'sidecache-cache-control': 'max-age="1"', 'cdn-cache-control': 'max-age=9' },
      targets,
    );
    assert.equal(next.field, 'cdn-cache-control');
    const headers = { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=10000, &&&&&' };
    const none = policyView(headers, targets);
    assert.equal(none.field, null);
    assert.equal(none.headers, headers);
  });
  test('fields not on the target list are ignored', () => {
    const headers = { 'cache-control': 'max-age=1', 'cdn-cache-control': 'max-age=60' };
    assert.equal(policyView(headers, ['sidecache-cache-control']).field, null);
  });
});
