import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactUrl } from '../../../src/admin/cache-list.js';

describe('redactUrl', () => {
  it('replaces user:password in the authority', () => {
    assert.equal(
      redactUrl('https://alice:s3cret@collector.example:4318/v1/traces'),
      'https://<redacted>@collector.example:4318/v1/traces',
    );
    assert.equal(redactUrl('http://token@h/x?a=1'), 'http://<redacted>@h/x?a=1');
  });
  it('keeps an @ that is in the path or query, not the authority', () => {
    assert.equal(redactUrl('https://h/users/@me?q=a@b'), 'https://h/users/@me?q=a@b');
  });
  it('replaces credential-like query values and keeps the rest as sent', () => {
    assert.equal(
      redactUrl('https://h/x?api_key=abc&page=2&Token=z'),
      'https://h/x?api_key=<redacted>&page=2&Token=<redacted>',
    );
    assert.equal(redactUrl('https://h/plain'), 'https://h/plain');
  });
});
