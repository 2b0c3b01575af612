import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatAuthority,
  formatNameserver,
  parseServerAddress,
} from '../../../src/config/nameserver-address.js';

const ok: [string, boolean, { host: string; port: number | null; family: 0 | 4 | 6 }, string, string][] = [
  ['1.1.1.1', false, { host: '1.1.1.1', port: null, family: 4 }, '1.1.1.1', '1.1.1.1'],
  ['10.0.0.2:5353', false, { host: '10.0.0.2', port: 5353, family: 4 }, '10.0.0.2:5353', '10.0.0.2:5353'],
  ['[::1]:53', false, { host: '::1', port: 53, family: 6 }, '[::1]:53', '[::1]:53'],
  ['::1', false, { host: '::1', port: null, family: 6 }, '::1', '[::1]'],
  [
    'dns.example:8443',
    true,
    { host: 'dns.example', port: 8443, family: 0 },
    'dns.example:8443',
    'dns.example:8443',
  ],
];
for (const [text, allowHostName, parsed, nameserver, authority] of ok) {
  test(`parses ${text}`, () => {
    const p = parseServerAddress(text, allowHostName);
    assert.deepEqual(p, parsed);
    assert.ok(typeof p !== 'string');
    assert.equal(formatNameserver(p), nameserver);
    assert.equal(formatAuthority(p), authority);
  });
}

const bad: [string, boolean, RegExp][] = [
  ['dns.example', false, /not an IP address/],
  ['10.0.0.1:0', false, /between 1 and 65535/],
  ['10.0.0.1:x', false, /not a number/],
  ['[::1', false, /missing "\]"/],
  ['[10.0.0.1]:53', false, /not an IPv6 address/],
  ['fd00::1:53:', false, /IPv6 address with a port/],
  ['bad_name!', true, /not an IP address or host name/],
];
for (const [text, allowHostName, message] of bad) {
  test(`rejects ${text}`, () => {
    const p = parseServerAddress(text, allowHostName);
    assert.equal(typeof p, 'string');
    assert.match(p as string, message);
  });
}
