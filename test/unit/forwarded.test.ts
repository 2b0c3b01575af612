import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { primaryKey } from '../../src/cache/key.js';
import { addForwardingHeaders, compileForwardedTrust } from '../../src/forwarded.js';

describe('forwarding headers (issue 18)', () => {
  test('trustForwarded: nobody by default, everyone with true, else the listed blocks', () => {
    assert.equal(compileForwardedTrust(false)('127.0.0.1'), false);
    assert.equal(compileForwardedTrust([])('127.0.0.1'), false);
    assert.equal(compileForwardedTrust(true)('203.0.113.9'), true);
    const trust = compileForwardedTrust(['10.0.0.0/8', '::1', '2001:db8::/32']);
    assert.equal(trust('10.20.30.40'), true);
    assert.equal(trust('11.0.0.1'), false);
    assert.equal(trust('::1'), true);
    assert.equal(trust('2001:db8:1::5'), true);
    assert.equal(trust('2001:db9::5'), false);
    // A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6 addresses.
    assert.equal(trust('::ffff:10.1.2.3'), true);
    assert.equal(trust('::ffff:11.1.2.3'), false);
    assert.equal(trust(undefined), false);
    assert.equal(trust('not an address'), false);
  });

  test("sidecache's own hop: X-Forwarded-For appended, -Proto set unless trusted, Forwarded extended", () => {
    const plain: Record<string, string | string[]> = {};
    addForwardingHeaders(plain, { address: '127.0.0.1', port: 1, protocol: 'https' });
    assert.deepEqual(plain, { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'https' });
    const trusted: Record<string, string | string[]> = {
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'https',
      forwarded: 'for=203.0.113.9;proto=https',
    };
    addForwardingHeaders(trusted, { address: '::1', port: 1, protocol: 'http' });
    assert.deepEqual(trusted, {
      'x-forwarded-for': '203.0.113.9, ::1',
      'x-forwarded-proto': 'https',
      forwarded: 'for=203.0.113.9;proto=https, for="[::1]";proto=http',
    });
  });

  test('forwarding headers a request carries are part of its cache key', () => {
    const policy = {
      keyQuery: { sort: false, ignore: [] },
      keyHeaders: [],
      credentialHeaders: [],
      credentialCookies: [],
    };
    const url = new URL('https://a.test/x');
    const plain = primaryKey(url, {}, policy);
    const proto = primaryKey(url, { 'x-forwarded-proto': 'https' }, policy);
    const host = primaryKey(url, { 'x-forwarded-host': 'evil.example' }, policy);
    assert.equal(plain, 'https://a.test/x\n-\n', 'no forwarding headers: the key as before');
    assert.notEqual(proto, plain);
    assert.notEqual(host, plain);
    assert.notEqual(host, proto);
  });
});
