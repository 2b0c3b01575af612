/**
 * countBoundedLru: the entry bound of lru-cache's `max`, least recently used first out, without
 * arrays of that length allocated up front.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countBoundedLru } from '../../../src/cache/count-lru.js';

test('holds at most maxEntries, dropping the least recently used first', () => {
  const lru = countBoundedLru<string, number>(3);
  for (const k of ['a', 'b', 'c']) lru.set(k, 1);
  assert.equal(lru.get('a'), 1); // a is now the most recent
  lru.set('d', 1);
  assert.equal(lru.size, 3);
  assert.deepEqual([...lru.keys()].sort(), ['a', 'c', 'd']);
  lru.set('d', 2); // a replacement is not one more entry
  assert.equal(lru.size, 3);
  for (let i = 0; i < 100; i++) lru.set(`k${i}`, i);
  assert.equal(lru.size, 3);
  assert.equal(countBoundedLru<string, number>(0).set('x', 1).size, 1, 'a bound below 1 is 1');
});
