/**
 * The `system` resolver (getaddrinfo; only `localhost`, so no query leaves the machine), and the `doh` resolver (tangerine) against a
 * local RFC 8484 endpoint over plain HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { createDnsCache, type DnsLookupEvent, type DnsOptionsInput } from '../../../src/dns/index.js';
import { DnsError } from '../../../src/errors.js';
import { DnsZone, type ZoneRecord } from '../../helpers/dns-zone.js';
import { startDohServer, type TestDohServer } from '../../helpers/doh-server.js';

describe('system mode', () => {
  test('resolves localhost through the OS resolver, then from cache', async (t) => {
    const lookups: DnsLookupEvent[] = [];
    const cache = createDnsCache(
      { mode: 'system', family: 'ipv4only' },
      { onLookup: (e) => lookups.push(e) },
    );
    t.after(() => cache.close());
    assert.deepEqual(await cache.resolve('localhost'), [{ address: '127.0.0.1', family: 4 }]);
    await cache.resolve('localhost');
    assert.deepEqual(
      lookups.map((e) => [e.result, e.mode]),
      [
        ['miss', 'system'],
        ['hit', 'system'],
      ],
    );
  });
});

async function dohSetup(
  t: TestContext,
  records: Record<string, ZoneRecord>,
  options: Partial<DnsOptionsInput> = {},
) {
  const zone = new DnsZone(records);
  const server: TestDohServer = await startDohServer(zone);
  const lookups: DnsLookupEvent[] = [];
  const cache = createDnsCache(
    {
      mode: 'doh',
      doh: { servers: [server.address], protocol: 'http' },
      timeoutMs: 2_000,
      tries: 1,
      ...options,
    },
    { onLookup: (e) => lookups.push(e) },
  );
  t.after(async () => {
    await cache.close();
    await server.stop();
  });
  return { zone, server, cache, lookups };
}

describe('doh mode', () => {
  test('resolves A and AAAA through the local DoH endpoint, with TTLs, and caches', async (t) => {
    const { zone, server, cache, lookups } = await dohSetup(t, {
      'api.test': { A: ['10.0.0.1'], AAAA: ['fd00::1'], ttl: 60 },
    });
    assert.deepEqual(await cache.resolve('api.test'), [
      { address: '10.0.0.1', family: 4 },
      { address: 'fd00::1', family: 6 },
    ]);
    await cache.resolve('api.test');
    assert.equal(zone.received.doh, 2, 'one request per record type');
    assert.equal(server.methods.GET, 2);
    assert.deepEqual(
      lookups.map((e) => [e.result, e.mode]),
      [
        ['miss', 'doh'],
        ['hit', 'doh'],
      ],
    );
  });

  test('NXDOMAIN over DoH is ENOTFOUND and cached', async (t) => {
    const { zone, cache } = await dohSetup(t, {}, { family: 'ipv4only' });
    for (let i = 0; i < 2; i++) {
      const err = await cache.resolve('nope.test').then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof DnsError);
      assert.equal(err.detail.dnsCode, 'ENOTFOUND');
    }
    assert.equal(zone.count('nope.test'), 1);
  });

  test('a blackholed DoH server fails with ETIMEOUT within timeoutMs', async (t) => {
    const { zone, cache } = await dohSetup(
      t,
      { 'hole.test': { A: ['10.0.0.1'], behaviour: 'silent' } },
      {
        family: 'ipv4only',
        timeoutMs: 300,
        tries: 2,
      },
    );
    const started = performance.now();
    const err = await cache.resolve('hole.test').then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DnsError);
    assert.equal(err.detail.dnsCode, 'ETIMEOUT');
    assert.ok(performance.now() - started < 300 + 700);
    assert.ok(zone.count('hole.test') >= 1);
  });
});
