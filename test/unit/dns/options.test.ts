import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DNS_DEFAULTS, dnsOverridesFromFlags, dnsSchema, parseDnsOptions } from '../../../src/dns/options.js';
import { SidecacheError } from '../../../src/errors.js';

function issues(input: unknown): string[] {
  try {
    parseDnsOptions(input);
  } catch (err) {
    assert.ok(err instanceof SidecacheError);
    assert.equal(err.code, 'SC_ERR_CONFIG');
    return err.message.split('\n');
  }
  return [];
}

describe('dnsSchema', () => {
  test('defaults follow unbound / CoreDNS / RFC 8767', () => {
    assert.deepEqual(DNS_DEFAULTS, {
      mode: 'system',
      servers: [],
      doh: { servers: ['1.1.1.1', '1.0.0.1'], protocol: 'https', caFile: null },
      minTtlMs: 5_000,
      maxTtlMs: 86_400_000,
      systemTtlMs: 30_000,
      negativeTtlMs: 30_000,
      maxNegativeTtlMs: 3_600_000,
      staleTtlMs: 3_600_000,
      staleAnswerAfterMs: 1_800,
      staleRecheckMs: 30_000,
      prefetchRatio: 0.1,
      maxEntries: 10_000,
      timeoutMs: 5_000,
      tries: 3,
      family: 'ipv4first',
      hosts: {},
    });
  });

  test('every key has a description', () => {
    for (const [key, schema] of Object.entries(dnsSchema.shape)) {
      assert.ok(schema.description, `${key} has no description`);
    }
  });

  test('accepts nameservers as IP, IP:PORT, [IPv6]:PORT and bare IPv6', () => {
    const o = parseDnsOptions({
      mode: 'udp',
      servers: ['10.0.0.2', '10.0.0.2:5353', '[::1]:53', '::1', '[fd00::2]'],
    });
    assert.equal(o.servers.length, 5);
  });

  test('rejects nameservers that are not IP literals, and bad ports, naming the path', () => {
    const lines = issues({ servers: ['dns.example:53', '10.0.0.1:99999', '::1:53x', '[::1'] });
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /^dns\.servers\[0\]: "dns\.example:53": .*not an IP address/);
    assert.match(lines[1]!, /^dns\.servers\[1\]: .*between 1 and 65535/);
    assert.match(lines[3]!, /^dns\.servers\[3\]: .*missing "\]"/);
  });

  test('DoH servers may be host names', () => {
    const o = parseDnsOptions({
      mode: 'doh',
      doh: { servers: ['dns.example', 'dns.example:8443', '[::1]:443'] },
    });
    assert.deepEqual(o.doh, {
      servers: ['dns.example', 'dns.example:8443', '[::1]:443'],
      protocol: 'https',
      caFile: null,
    });
  });

  test('rejects unknown keys, min > max and negative > its cap', () => {
    assert.match(issues({ minTTL: 1 }).join('\n'), /minTTL/);
    assert.match(
      issues({ minTtlMs: 10, maxTtlMs: 5 }).join('\n'),
      /dns\.minTtlMs: .*not be greater than maxTtlMs/,
    );
    assert.match(issues({ negativeTtlMs: 10, maxNegativeTtlMs: 5 }).join('\n'), /dns\.negativeTtlMs/);
  });

  test('static hosts: names to one or several IPs', () => {
    const o = parseDnsOptions({
      hosts: { 'api.example.com': '10.0.0.5', 'v6.example': ['fd00::5', '10.0.0.6'] },
    });
    assert.deepEqual(o.hosts['v6.example'], ['fd00::5', '10.0.0.6']);
    assert.match(
      issues({ hosts: { 'api.example.com': 'not-an-ip' } }).join('\n'),
      /hosts\.api\.example\.com/,
    );
    assert.deepEqual(issues({ hosts: { 'bad name!': '10.0.0.1' } }), [
      'dns.hosts: "bad name!" is not a host name',
    ]);
  });
});

describe('dnsOverridesFromFlags', () => {
  test('--dns implies udp, like docker', () => {
    assert.deepEqual(dnsOverridesFromFlags({ dns: ['10.0.0.2', '10.0.0.3:53'] }), {
      mode: 'udp',
      servers: ['10.0.0.2', '10.0.0.3:53'],
    });
    assert.deepEqual(dnsOverridesFromFlags({ dns: '10.0.0.2' }), { mode: 'udp', servers: ['10.0.0.2'] });
  });

  test('--dns-mode alone, and --dns with --dns-mode doh', () => {
    assert.deepEqual(dnsOverridesFromFlags({ dnsMode: 'system' }), { mode: 'system' });
    assert.deepEqual(dnsOverridesFromFlags({ dnsMode: 'doh', dns: ['1.1.1.1'] }), {
      mode: 'doh',
      doh: { servers: ['1.1.1.1'] },
    });
    assert.deepEqual(dnsOverridesFromFlags({}), {});
  });
});
