/**
 * createDnsCache with an in-memory Resolver (the module's own interface, not the network): how the
 * outcomes of A and AAAA combine, and that our deadline applies to any resolver.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createDnsCache, type Resolver } from '../../../src/dns/index.js';
import { DnsError } from '../../../src/errors.js';

type Script = Record<string, string[] | string | 'hang'>;

/** Answers `TYPE name` from a table: a list of addresses, an error code, or 'hang' (never answers). */
function scriptedResolver(script: Script): Resolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    mode: 'udp',
    asked,
    query(name, type, signal) {
      const key = `${type} ${name}`;
      asked.push(key);
      const step = script[key] ?? 'ENOTFOUND';
      if (step === 'hang') {
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      }
      if (typeof step === 'string') return Promise.reject(Object.assign(new Error(step), { code: step }));
      return Promise.resolve({ addresses: step, ttlMs: 60_000 });
    },
    async close() {},
  };
}

async function dnsCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DnsError);
    return String(err.detail.dnsCode);
  }
  return 'resolved';
}

describe('createDnsCache: combining A and AAAA', () => {
  test('one family failing does not fail the lookup', async () => {
    const resolver = scriptedResolver({ 'A x.test': ['10.0.0.1'], 'AAAA x.test': 'ESERVFAIL' });
    const cache = createDnsCache({ family: 'ipv6first' }, { resolver });
    assert.deepEqual(await cache.resolve('x.test'), [{ address: '10.0.0.1', family: 4 }]);
    await cache.close();
  });

  test('a nameserver failure is reported before NODATA, NXDOMAIN before NODATA', async () => {
    const a = createDnsCache(
      {},
      { resolver: scriptedResolver({ 'A x.test': 'ENODATA', 'AAAA x.test': 'ESERVFAIL' }) },
    );
    assert.equal(await dnsCode(a.resolve('x.test')), 'ESERVFAIL');
    const b = createDnsCache(
      {},
      { resolver: scriptedResolver({ 'A x.test': 'ENODATA', 'AAAA x.test': 'ENOTFOUND' }) },
    );
    assert.equal(await dnsCode(b.resolve('x.test')), 'ENOTFOUND');
    await Promise.all([a.close(), b.close()]);
  });

  test('the deadline applies to an injected resolver too', async () => {
    const cache = createDnsCache(
      { timeoutMs: 50, family: 'ipv4only' },
      { resolver: scriptedResolver({ 'A x.test': 'hang' }) },
    );
    assert.equal(await dnsCode(cache.resolve('x.test')), 'ETIMEOUT');
    await cache.close();
  });

  test('bad options throw a ConfigError at creation', () => {
    assert.throws(
      () => createDnsCache({ mode: 'carrier-pigeon' }),
      (err: unknown) => err instanceof Error && (err as { code?: string }).code === 'SC_ERR_CONFIG',
    );
  });
});
