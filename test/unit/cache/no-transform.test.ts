import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasNoTransform } from '../../../src/cache/no-transform.js';

test('no-transform is found as a directive, not as part of another', () => {
  assert.equal(hasNoTransform('max-age=10, no-transform'), true);
  assert.equal(hasNoTransform(['max-age=10', 'No-Transform']), true);
  assert.equal(hasNoTransform('no-transform'), true);
  assert.equal(hasNoTransform('no-transformed'), false);
  assert.equal(hasNoTransform('x-no-transform'), false);
  assert.equal(hasNoTransform(undefined), false);
});
