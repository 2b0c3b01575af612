import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { varyMatches, varyValues } from '../../../src/cache/key.js';
import { fieldMatches, parseWeightedList, varyValue } from '../../../src/cache/vary-normalise.js';

const AL = 'accept-language';
const AE = 'accept-encoding';

describe('Vary normalisation by meaning (RFC 9111 §4.1, RFC 9110 §12.4.2)', () => {
  test('Accept-Language: case, order within a weight, whitespace and weight spelling do not matter', () => {
    const base = varyValue(AL, 'en, de');
    for (const v of ['de, en', 'eN, De', ' en ,   de', 'de;q=1, en;q=1.000', ['de', 'EN']]) {
      assert.equal(varyValue(AL, v), base, String(v));
    }
    assert.equal(varyValue(AL, 'en;q=0.50, de'), 'de,en;q=0.5');
  });
  test('Accept-Language: different weights or members stay different', () => {
    const base = varyValue(AL, 'en, de');
    for (const v of ['en, de;q=0.9', 'en', 'en, de, fr', 'en, de;q=0']) {
      assert.notEqual(varyValue(AL, v), base, v);
    }
  });
  test('a value outside the grammar is compared by bytes (generic form), never parsed', () => {
    assert.equal(parseWeightedList('en;q=2', /^[a-z]+$/), null);
    assert.equal(parseWeightedList('en, EN', /^[a-z]+$/), null);
    assert.equal(parseWeightedList('en;q=0.5;x=1', /^[a-z]+$/), null);
    assert.equal(varyValue(AL, 'en;q=2, de'), 'en;q=2,de');
    assert.notEqual(varyValue(AL, 'de, en;q=2'), varyValue(AL, 'en;q=2, de'));
  });
  test('Accept-Encoding: codings compared by meaning', () => {
    assert.equal(varyValue(AE, 'GZIP, br'), varyValue(AE, 'br,gzip'));
    assert.equal(varyValue(AE, 'br;q=1.0, gzip'), varyValue(AE, 'gzip, br'));
    assert.notEqual(varyValue(AE, 'gzip;q=0, br'), varyValue(AE, 'gzip, br'));
  });
  test('other fields: only whitespace and field lines are normalised', () => {
    assert.equal(varyValue('foo', ['1', '2']), '1,2');
    assert.notEqual(varyValue('foo', '2, 1'), varyValue('foo', '1, 2'));
  });
  test('canonical forms are fixed points (the fast path of fieldMatches relies on it)', () => {
    for (const v of ['fr;q=0.5, DE;q=1.0, en-GB;q=0.25', 'en;q=2, de']) {
      const once = varyValue(AL, v);
      assert.equal(varyValue(AL, once ?? undefined), once);
    }
  });
});

describe('selection (RFC 9110 §12.5.4)', () => {
  const stored = (lang: string | undefined) => ({
    vary: [AL],
    varyValues: varyValues([AL], { [AL]: 'en, de' }),
    headers: lang === undefined ? {} : { 'content-language': lang },
  });
  test('a stored answer in the single favourite language of the request is reused', () => {
    assert.equal(varyMatches(stored('de'), { [AL]: 'fr;q=0.5, de;q=1.0' }), true);
    assert.equal(varyMatches(stored('DE'), { [AL]: 'de' }), true);
  });
  test('not when the favourite is tied, another language, absent, or the stored answer has no single language', () => {
    assert.equal(varyMatches(stored('de'), { [AL]: 'fr, de' }), false);
    assert.equal(varyMatches(stored('de'), { [AL]: 'fr;q=0.9, de;q=0.5' }), false);
    assert.equal(varyMatches(stored('de'), { [AL]: 'de-CH' }), false);
    assert.equal(varyMatches(stored('de'), { [AL]: '*' }), false);
    assert.equal(varyMatches(stored('de'), {}), false);
    assert.equal(varyMatches(stored(undefined), { [AL]: 'de' }), false);
    assert.equal(varyMatches(stored('de, en'), { [AL]: 'de' }), false);
    assert.equal(varyMatches(stored('de'), { [AL]: 'de;q=1, de;q=0' }), false);
  });
  test('without stored headers, only equal normalised values match', () => {
    assert.equal(fieldMatches(AL, varyValue(AL, 'en'), 'de', undefined), false);
    assert.equal(fieldMatches(AL, varyValue(AL, 'en, de'), 'DE,EN', undefined), true);
  });
  test('Accept-Encoding: a stored coding the request accepts is reused, one it refuses is not', () => {
    const coded = {
      vary: [AE],
      varyValues: varyValues([AE], { [AE]: 'gzip, br' }),
      headers: { 'content-encoding': 'gzip' },
    };
    assert.equal(varyMatches(coded, { [AE]: 'gzip' }), true);
    assert.equal(varyMatches(coded, { [AE]: 'x-gzip' }), true);
    assert.equal(varyMatches(coded, { [AE]: 'br' }), false);
    assert.equal(varyMatches(coded, { [AE]: 'gzip;q=0, *' }), false);
    assert.equal(varyMatches(coded, {}), false);
    const plain = { vary: [AE], varyValues: varyValues([AE], { [AE]: 'gzip' }), headers: {} };
    assert.equal(varyMatches(plain, { [AE]: 'br' }), true);
    assert.equal(varyMatches(plain, { [AE]: 'br, identity;q=0' }), false);
    assert.equal(varyMatches(plain, { [AE]: 'br, *;q=0' }), false);
  });
});
