import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cacheUrl,
  cookieFallbackKey,
  credentialHash,
  normaliseFieldValue,
  primaryKey,
  urlKeyPrefix,
  variantKey,
  varyMatches,
  varyValues,
} from '../../../src/cache/key.js';

const policy = {
  keyQuery: { sort: false, ignore: [] as string[] },
  keyHeaders: [] as string[],
  credentialHeaders: [] as string[],
  credentialCookies: [] as string[],
};

describe('cache key (RFC 9111 §2, route policy)', () => {
  const urls: [string, string, Partial<typeof policy.keyQuery>, string][] = [
    ['§2 the fragment is not part of the key', 'https://a.test/x?b=1#frag', {}, 'https://a.test/x?b=1'],
    ['query kept as sent by default', 'https://a.test/x?b=2&a=1', {}, 'https://a.test/x?b=2&a=1'],
    [
      'route keyQuery.sort sorts parameters',
      'https://a.test/x?b=2&a=1&a=0',
      { sort: true },
      'https://a.test/x?a=0&a=1&b=2',
    ],
    [
      'route keyQuery.ignore drops parameters',
      'https://a.test/x?utm_source=z&a=1',
      { ignore: ['utm_source'] },
      'https://a.test/x?a=1',
    ],
    [
      'dropping every parameter leaves no "?"',
      'https://a.test/x?utm_source=z',
      { ignore: ['utm_source'] },
      'https://a.test/x',
    ],
    ['host is case-normalised by URL parsing', 'https://A.TEST/x', {}, 'https://a.test/x'],
  ];
  for (const [name, url, q, expected] of urls) {
    test(name, () =>
      assert.equal(cacheUrl(new URL(url), { keyQuery: { ...policy.keyQuery, ...q } }), expected),
    );
  }

  test('credentials: none gives null; Authorization gives a sha256', () => {
    assert.equal(credentialHash({}, policy), null);
    const h = credentialHash({ authorization: 'Bearer a' }, policy);
    assert.match(h ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(h, credentialHash({ authorization: 'Bearer b' }, policy));
  });
  test('credentials: configured headers and cookies count, other cookies do not', () => {
    const p = { ...policy, credentialHeaders: ['x-api-key'], credentialCookies: ['session'] };
    assert.notEqual(credentialHash({ 'x-api-key': 'k1' }, p), credentialHash({ 'x-api-key': 'k2' }, p));
    const s1 = credentialHash({ cookie: 'theme=dark; session=abc' }, p);
    assert.equal(s1, credentialHash({ cookie: 'session=abc; theme=light' }, p));
    assert.notEqual(s1, credentialHash({ cookie: 'session=xyz' }, p));
    assert.equal(credentialHash({ cookie: 'theme=dark' }, p), null);
  });
  test('cookies (issue 18): by default the whole Cookie header is a credential, hashed, never raw', () => {
    const u = new URL('https://a.test/x');
    const a = primaryKey(u, { cookie: 'session=AAA; theme=dark' }, policy);
    assert.notEqual(a, primaryKey(u, { cookie: 'session=BBB; theme=dark' }, policy));
    assert.notEqual(a, primaryKey(u, {}, policy));
    assert.ok(!a.includes('AAA') && !a.includes('session'), a);
    // Whitespace and several Cookie fields do not make another caller.
    assert.equal(a, primaryKey(u, { cookie: ['session=AAA', ' theme=dark '] as unknown as string }, policy));
    assert.equal(primaryKey(u, { cookie: ' ; ' }, policy), primaryKey(u, {}, policy));
    // The key where entries fetched without cookies live: the same request without its cookies.
    assert.equal(cookieFallbackKey(u, { cookie: 'session=AAA' }, policy), primaryKey(u, {}, policy));
    assert.equal(
      cookieFallbackKey(u, { cookie: 'session=AAA', authorization: 'Bearer t' }, policy),
      primaryKey(u, { authorization: 'Bearer t' }, policy),
    );
    assert.equal(cookieFallbackKey(u, {}, policy), null);
    // Named credential cookies isolate like Authorization (no fallback); cookies: ignore ignores the rest.
    assert.equal(
      cookieFallbackKey(u, { cookie: 'session=AAA' }, { ...policy, credentialCookies: ['session'] }),
      null,
    );
    const ignore = { ...policy, cookies: 'ignore' as const };
    assert.equal(primaryKey(u, { cookie: 'session=AAA' }, ignore), primaryKey(u, {}, ignore));
    assert.equal(cookieFallbackKey(u, { cookie: 'session=AAA' }, ignore), null);
  });
  test('with a secret the credential hash is an HMAC', () => {
    const plain = credentialHash({ authorization: 'Basic dTpw' }, policy);
    const keyed = credentialHash({ authorization: 'Basic dTpw' }, policy, 's3cret');
    assert.match(keyed ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(plain, keyed);
    assert.equal(keyed, credentialHash({ authorization: 'Basic dTpw' }, policy, 's3cret'));
  });
  test('primary key starts with the URL prefix so one URL can be purged', () => {
    const k = primaryKey(new URL('https://a.test/x'), { authorization: 't' }, policy);
    assert.ok(k.startsWith(urlKeyPrefix('https://a.test/x')));
    assert.ok(!k.includes('Bearer'));
  });
  test('route keyHeaders are part of the key', () => {
    const p = { ...policy, keyHeaders: ['x-tenant'] };
    const u = new URL('https://a.test/x');
    assert.notEqual(primaryKey(u, { 'x-tenant': 'a' }, p), primaryKey(u, { 'x-tenant': 'b' }, p));
  });
});

describe('Vary matching (RFC 9111 §4.1)', () => {
  test('§4.1 whitespace and line folding are normalised', () => {
    assert.equal(normaliseFieldValue(['gzip ,  br', 'zstd']), 'gzip,br,zstd');
  });
  test('§4.1 an absent field matches only an absent field', () => {
    const stored = { vary: ['accept'], varyValues: varyValues(['accept'], {}) };
    assert.equal(varyMatches(stored, {}), true);
    assert.equal(varyMatches(stored, { accept: 'text/html' }), false);
  });
  test('§4.1 values must match per field', () => {
    const fields = ['accept', 'accept-language'];
    const stored = {
      vary: fields,
      varyValues: varyValues(fields, { accept: 'a/b', 'accept-language': 'en' }),
    };
    assert.equal(varyMatches(stored, { accept: 'a/b', 'accept-language': 'en' }), true);
    assert.equal(varyMatches(stored, { accept: 'a/b', 'accept-language': 'fr' }), false);
  });
  test('§4.1 Vary: * never matches', () => {
    assert.equal(varyMatches({ vary: ['*'], varyValues: [null] }, {}), false);
  });
  test('variant keys differ for absent and empty values', () => {
    assert.notEqual(variantKey(['a'], [null]), variantKey(['a'], ['']));
  });
});
