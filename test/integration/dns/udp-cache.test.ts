/**
 * The DNS cache in `udp` mode against a real nameserver on 127.0.0.1 (UDP and TCP on a free port).
 * TTL arithmetic uses a hand-moved clock; only waiting (deadlines, stale timer, prefetch timer) is real.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import {
  createDnsCache,
  type DnsCache,
  type DnsLookupEvent,
  type DnsOptionsInput,
  type DnsQueryEvent,
  dnsErrorFrom,
} from '../../../src/dns/index.js';
import { DnsError } from '../../../src/errors.js';
import { type ManualClock, manualClock, waitFor } from '../../helpers/clock.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { DnsZone, type ZoneRecord } from '../../helpers/dns-zone.js';

interface Setup {
  server: TestDnsServer;
  zone: DnsZone;
  cache: DnsCache;
  clock: ManualClock;
  lookups: DnsLookupEvent[];
  queries: DnsQueryEvent[];
}

async function setup(
  t: TestContext,
  records: Record<string, ZoneRecord>,
  options: Partial<DnsOptionsInput> = {},
  useManualClock = true,
): Promise<Setup> {
  const zone = new DnsZone(records);
  const server = await startDnsServer(zone);
  const clock = manualClock();
  const lookups: DnsLookupEvent[] = [];
  const queries: DnsQueryEvent[] = [];
  const cache = createDnsCache(
    { mode: 'udp', servers: [server.address], timeoutMs: 2_000, tries: 2, ...options },
    {
      ...(useManualClock ? { now: clock.now } : {}),
      onLookup: (e) => lookups.push(e),
      onQuery: (e) => queries.push(e),
    },
  );
  t.after(async () => {
    await cache.close();
    await server.stop();
  });
  return { server, zone, cache, clock, lookups, queries };
}

const addresses = (list: readonly { address: string }[]) => list.map((a) => a.address);

async function rejectsWithDnsCode(p: Promise<unknown>, dnsCode: string): Promise<DnsError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DnsError, `expected a DnsError, got ${String(err)}`);
    assert.equal(err.code, 'SC_ERR_DNS');
    assert.equal(err.detail.dnsCode, dnsCode);
    return err;
  }
  assert.fail(`expected a rejection with ${dnsCode}`);
}

describe('udp mode: answers and order', () => {
  test('A and AAAA, all addresses, in the configured family order', async (t) => {
    const records = { 'api.test': { A: ['10.0.0.1', '10.0.0.2'], AAAA: ['fd00::1'] } };
    const { cache } = await setup(t, records);
    assert.deepEqual(await cache.resolve('api.test'), [
      { address: '10.0.0.1', family: 4 },
      { address: '10.0.0.2', family: 4 },
      { address: 'fd00::1', family: 6 },
    ]);
    assert.deepEqual(addresses(await cache.resolve('api.test', { family: 6 })), ['fd00::1']);
    const v6first = await setup(t, records, { family: 'ipv6first' });
    assert.deepEqual(addresses(await v6first.cache.resolve('API.test.')), [
      'fd00::1',
      '10.0.0.1',
      '10.0.0.2',
    ]);
    const v4only = await setup(t, records, { family: 'ipv4only' });
    assert.deepEqual(addresses(await v4only.cache.resolve('api.test')), ['10.0.0.1', '10.0.0.2']);
    assert.equal(v4only.zone.count('api.test', 'AAAA'), 0);
  });

  test('a truncated UDP answer is asked again over TCP', async (t) => {
    const { cache, zone } = await setup(t, { 'big.test': { A: ['10.0.0.9'], behaviour: 'truncate' } });
    assert.deepEqual(addresses(await cache.resolve('big.test', { family: 4 })), ['10.0.0.9']);
    assert.ok(zone.received.tcp >= 1, 'the answer came over TCP');
  });
});

describe('udp mode: TTL', () => {
  test('the record TTL is honoured', async (t) => {
    const { cache, zone, clock, lookups } = await setup(
      t,
      { 'ttl.test': { A: ['10.0.0.1'], ttl: 60 } },
      {
        prefetchRatio: 0,
        family: 'ipv4only',
      },
    );
    await cache.resolve('ttl.test');
    clock.advance(59_000);
    await cache.resolve('ttl.test');
    assert.equal(zone.count('ttl.test', 'A'), 1);
    assert.deepEqual(
      lookups.map((e) => e.result),
      ['miss', 'hit'],
    );
    clock.advance(2_000);
    await cache.resolve('ttl.test');
    assert.equal(zone.count('ttl.test', 'A'), 2, 'expired after 60 s');
  });

  test('a short TTL is raised to minTtlMs', async (t) => {
    const { cache, zone, clock } = await setup(
      t,
      { 'short.test': { A: ['10.0.0.1'], ttl: 1 } },
      {
        minTtlMs: 5_000,
        prefetchRatio: 0,
        family: 'ipv4only',
      },
    );
    await cache.resolve('short.test');
    clock.advance(4_000);
    await cache.resolve('short.test');
    assert.equal(zone.count('short.test'), 1, 'still cached after 4 s although the TTL was 1 s');
    clock.advance(2_000);
    await cache.resolve('short.test');
    assert.equal(zone.count('short.test'), 2);
  });

  test('a long TTL is lowered to maxTtlMs', async (t) => {
    const { cache, zone, clock } = await setup(
      t,
      { 'long.test': { A: ['10.0.0.1'], ttl: 7 * 86_400 } },
      {
        maxTtlMs: 10_000,
        prefetchRatio: 0,
        family: 'ipv4only',
      },
    );
    await cache.resolve('long.test');
    clock.advance(11_000);
    await cache.resolve('long.test');
    assert.equal(zone.count('long.test'), 2, 're-asked after maxTtlMs although the TTL was a week');
  });

  test('a hit reports the duration of the last real lookup as saved time', async (t) => {
    const { cache, zone, lookups } = await setup(
      t,
      { 'saved.test': { A: ['10.0.0.1'] } },
      { family: 'ipv4only' },
    );
    zone.delayMs = 30;
    await cache.resolve('saved.test');
    await cache.resolve('saved.test');
    const [miss, hit] = lookups;
    assert.equal(miss?.result, 'miss');
    assert.equal(hit?.result, 'hit');
    assert.equal(hit?.mode, 'udp');
    assert.ok((hit?.savedMs ?? 0) >= 25, `savedMs ${hit?.savedMs} reflects the 30 ms answer`);
    assert.equal(miss?.savedMs, 0);
  });
});

describe('udp mode: de-duplication', () => {
  test('100 concurrent cold lookups send one query per record type', async (t) => {
    const { cache, zone } = await setup(t, { 'cold.test': { A: ['10.0.0.1'], AAAA: ['fd00::1'] } });
    zone.delayMs = 20;
    const results = await Promise.all(Array.from({ length: 100 }, () => cache.resolve('cold.test')));
    assert.equal(results.length, 100);
    for (const r of results) assert.deepEqual(addresses(r), ['10.0.0.1', 'fd00::1']);
    assert.equal(zone.count('cold.test', 'A'), 1);
    assert.equal(zone.count('cold.test', 'AAAA'), 1);
  });
});

describe('udp mode: prefetch', () => {
  test('a hit in the last 10% of the TTL refreshes in the background; nobody waits', async (t) => {
    const { cache, zone, clock, lookups } = await setup(
      t,
      { 'pre.test': { A: ['10.0.0.1'], ttl: 10 } },
      {
        family: 'ipv4only',
        minTtlMs: 0,
      },
    );
    await cache.resolve('pre.test');
    zone.set('pre.test', { A: ['10.0.0.2'], ttl: 10 });
    clock.advance(9_500);
    // Still answered from cache (old address), and a refresh goes out.
    assert.deepEqual(addresses(await cache.resolve('pre.test')), ['10.0.0.1']);
    await waitFor(() => lookups.some((e) => e.result === 'prefetch'), 5_000, 'the prefetch');
    assert.equal(zone.count('pre.test'), 2);
    // Past the first TTL: a hit on the refreshed answer, no new query.
    clock.advance(5_000);
    assert.deepEqual(addresses(await cache.resolve('pre.test')), ['10.0.0.2']);
    assert.equal(zone.count('pre.test'), 2);
    assert.deepEqual(
      lookups.map((e) => e.result),
      ['miss', 'hit', 'prefetch', 'hit'],
    );
  });

  test('a name used during its TTL is refreshed by a timer before it expires', async (t) => {
    // Real clock: TTL 1 s, prefetch timer at 0.9 s.
    const { cache, zone, lookups } = await setup(
      t,
      { 'timer.test': { A: ['10.0.0.1'], ttl: 1 } },
      { family: 'ipv4only', minTtlMs: 0 },
      false,
    );
    await cache.resolve('timer.test');
    await cache.resolve('timer.test'); // used since stored
    await waitFor(() => zone.count('timer.test') === 2, 5_000, 'the timer prefetch');
    await waitFor(() => lookups.some((e) => e.result === 'prefetch'), 1_000, 'the prefetch event');
    assert.equal(lookups.filter((e) => e.result === 'miss').length, 1, 'no lookup waited for the refresh');
  });

  test('an unused name is not refreshed', async (t) => {
    const { cache, zone } = await setup(
      t,
      { 'idle.test': { A: ['10.0.0.1'], ttl: 1 } },
      { family: 'ipv4only', minTtlMs: 0 },
      false,
    );
    await cache.resolve('idle.test');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal(zone.count('idle.test'), 1);
  });
});

describe('udp mode: keepFresh (keep-warm route origins)', () => {
  test('a name kept fresh is refreshed before every expiry although nobody asks for it', async (t) => {
    // Real clock: TTL 1 s, prefetch timer at 0.9 s of each TTL.
    const { cache, zone, lookups } = await setup(
      t,
      { 'kept.test': { A: ['10.0.0.1'], ttl: 1 }, 'other.test': { A: ['10.0.0.2'], ttl: 1 } },
      { family: 'ipv4only', minTtlMs: 0 },
      false,
    );
    cache.keepFresh(['KEPT.test.']);
    await cache.resolve('kept.test');
    await cache.resolve('other.test');
    // Two refreshes in a row: each stored answer schedules the next one.
    await waitFor(() => zone.count('kept.test') >= 3, 5_000, 'two timer prefetches');
    assert.equal(zone.count('other.test'), 1, 'a name not kept fresh is left to expire');
    assert.equal(lookups.filter((e) => e.result === 'miss').length, 2);
    // Dropped from the set: no more refreshes after the one already scheduled.
    cache.keepFresh([]);
    const n = zone.count('kept.test');
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    assert.ok(zone.count('kept.test') <= n + 1, `kept refreshing: ${zone.count('kept.test')} > ${n + 1}`);
  });
});

describe('udp mode: serve-stale (RFC 8767)', () => {
  test('when the nameserver dies, the last good answer is served and the failure counted', async (t) => {
    const { cache, server, clock, lookups, queries } = await setup(
      t,
      { 'stale.test': { A: ['10.0.0.1'], ttl: 10 } },
      {
        family: 'ipv4only',
        prefetchRatio: 0,
        timeoutMs: 500,
        staleAnswerAfterMs: 1_500,
        staleTtlMs: 60_000,
      },
    );
    await cache.resolve('stale.test');
    await server.stop();
    clock.advance(15_000);
    assert.deepEqual(addresses(await cache.resolve('stale.test')), ['10.0.0.1']);
    const stale = lookups.at(-1);
    assert.equal(stale?.result, 'stale');
    assert.ok(stale?.dnsCode, 'the failure that made it stale is reported');
    assert.equal(queries.filter((q) => q.outcome === 'failure').length, 1);
    // Within staleRecheckMs: stale at once, no new query.
    clock.advance(1_000);
    await cache.resolve('stale.test');
    assert.equal(lookups.at(-1)?.result, 'stale');
    assert.equal(queries.filter((q) => q.outcome === 'failure').length, 1);
    // Past staleTtlMs: the lookup fails.
    clock.advance(60_000);
    const err = await cache.resolve('stale.test').then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DnsError);
    assert.equal(lookups.at(-1)?.result, 'error');
  });

  test('when a refresh is slower than staleAnswerAfterMs, stale is served and the refresh lands later', async (t) => {
    const { cache, zone, clock, lookups, queries } = await setup(
      t,
      { 'slow.test': { A: ['10.0.0.1'], ttl: 10 } },
      {
        family: 'ipv4only',
        prefetchRatio: 0,
        staleAnswerAfterMs: 50,
      },
    );
    await cache.resolve('slow.test');
    zone.set('slow.test', { A: ['10.0.0.2'], ttl: 10 });
    zone.delayMs = 300;
    clock.advance(11_000);
    assert.deepEqual(addresses(await cache.resolve('slow.test')), ['10.0.0.1']);
    assert.equal(lookups.at(-1)?.result, 'stale');
    assert.equal(lookups.at(-1)?.dnsCode, undefined);
    await waitFor(
      () => queries.some((q) => q.trigger === 'refresh' && q.outcome === 'answer'),
      5_000,
      'the refresh to answer',
    );
    // The refresh has landed: the new address is a plain hit.
    assert.deepEqual(addresses(await cache.resolve('slow.test')), ['10.0.0.2']);
    assert.equal(lookups.at(-1)?.result, 'hit');
    assert.equal(zone.count('slow.test'), 2);
  });

  test('an NXDOMAIN refresh replaces a stale answer (no stale for a name that is gone)', async (t) => {
    const { cache, zone, clock } = await setup(
      t,
      { 'gone.test': { A: ['10.0.0.1'], ttl: 10 } },
      {
        family: 'ipv4only',
        prefetchRatio: 0,
      },
    );
    await cache.resolve('gone.test');
    zone.set('gone.test', { behaviour: 'nxdomain' });
    clock.advance(11_000);
    await rejectsWithDnsCode(cache.resolve('gone.test'), 'ENOTFOUND');
  });
});

describe('udp mode: negative caching', () => {
  test('NXDOMAIN is cached: the repeat sends no query, and is re-asked after negativeTtlMs', async (t) => {
    const { cache, zone, clock, lookups } = await setup(t, {}, { negativeTtlMs: 10_000 });
    const err = await rejectsWithDnsCode(cache.resolve('nope.test'), 'ENOTFOUND');
    assert.equal(err.detail.host, 'nope.test');
    assert.equal(err.status, 502);
    assert.equal(zone.count('nope.test'), 2, 'A and AAAA asked once each');
    await rejectsWithDnsCode(cache.resolve('nope.test'), 'ENOTFOUND');
    assert.equal(zone.count('nope.test'), 2, 'answered from the negative cache');
    assert.deepEqual(
      lookups.map((e) => [e.result, e.dnsCode]),
      [
        ['error', 'ENOTFOUND'],
        ['negative', 'ENOTFOUND'],
      ],
    );
    clock.advance(10_001);
    await rejectsWithDnsCode(cache.resolve('nope.test'), 'ENOTFOUND');
    assert.equal(zone.count('nope.test'), 4);
  });

  test('NODATA for one family is cached; the other family still answers', async (t) => {
    const { cache, zone, lookups } = await setup(t, { 'v4.test': { A: ['10.0.0.1'] } });
    assert.deepEqual(addresses(await cache.resolve('v4.test')), ['10.0.0.1']);
    assert.deepEqual(addresses(await cache.resolve('v4.test')), ['10.0.0.1']);
    assert.equal(zone.count('v4.test', 'AAAA'), 1);
    assert.deepEqual(
      lookups.map((e) => e.result),
      ['miss', 'hit'],
    );
    await rejectsWithDnsCode(cache.resolve('v4.test', { family: 6 }), 'ENODATA');
    assert.equal(lookups.at(-1)?.result, 'negative');
  });

  test('SERVFAIL is not cached and fails with ESERVFAIL', async (t) => {
    const { cache, zone } = await setup(
      t,
      { 'broken.test': { behaviour: 'servfail' } },
      { family: 'ipv4only' },
    );
    await rejectsWithDnsCode(cache.resolve('broken.test'), 'ESERVFAIL');
    const asked = zone.count('broken.test');
    await rejectsWithDnsCode(cache.resolve('broken.test'), 'ESERVFAIL');
    assert.ok(zone.count('broken.test') > asked, 'asked again');
  });
});

describe('udp mode: static hosts and IP literals', () => {
  test('static hosts and IP literals never send a query', async (t) => {
    const { cache, zone, lookups } = await setup(
      t,
      {},
      {
        hosts: { 'api.example.com': '10.0.0.5', 'dual.example': ['fd00::5', '10.0.0.6'] },
      },
    );
    assert.deepEqual(await cache.resolve('api.example.com'), [{ address: '10.0.0.5', family: 4 }]);
    assert.deepEqual(addresses(await cache.resolve('DUAL.example.')), ['10.0.0.6', 'fd00::5']);
    assert.deepEqual(await cache.resolve('192.0.2.7'), [{ address: '192.0.2.7', family: 4 }]);
    assert.deepEqual(await cache.resolve('[::1]'), [{ address: '::1', family: 6 }]);
    await rejectsWithDnsCode(cache.resolve('api.example.com', { family: 6 }), 'ENODATA');
    assert.equal(zone.total, 0);
    assert.deepEqual(
      lookups.map((e) => e.result),
      ['static', 'static', 'error'],
    );
  });
});

describe('udp mode: timeouts', () => {
  test('a blackholed nameserver fails the lookup with ETIMEOUT within timeoutMs', async (t) => {
    const { cache, zone } = await setup(
      t,
      { 'hole.test': { A: ['10.0.0.1'] } },
      { timeoutMs: 300, tries: 2 },
    );
    zone.behaviour = 'silent';
    zone.set('hole.test', { A: ['10.0.0.1'], behaviour: 'silent' });
    const started = performance.now();
    await rejectsWithDnsCode(cache.resolve('hole.test'), 'ETIMEOUT');
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 300 + 700, `gave up after ${Math.round(elapsed)} ms`);
    assert.ok(zone.count('hole.test') >= 1);
  });

  test('our own timer bounds a lookup even when the resolver would wait longer', async (t) => {
    // tries: 1 gives c-ares the whole budget for its single try; our deadline still fires at timeoutMs.
    const { cache, zone } = await setup(
      t,
      { 'hole.test': { A: ['10.0.0.1'], behaviour: 'silent' } },
      {
        timeoutMs: 200,
        tries: 1,
        family: 'ipv4only',
      },
    );
    const started = performance.now();
    await rejectsWithDnsCode(cache.resolve('hole.test'), 'ETIMEOUT');
    assert.ok(performance.now() - started < 200 + 700);
    assert.equal(zone.count('hole.test'), 1);
  });
});

describe('udp mode: bounds and lifecycle', () => {
  test('the cache holds at most maxEntries answers', async (t) => {
    const records = {
      'a.test': { A: ['10.0.0.1'] },
      'b.test': { A: ['10.0.0.2'] },
      'c.test': { A: ['10.0.0.3'] },
    };
    const { cache } = await setup(t, records, { maxEntries: 2, family: 'ipv4only' });
    for (const name of Object.keys(records)) await cache.resolve(name);
    assert.equal(cache.size, 2);
  });

  test('after close(), lookups fail with ECANCELLED', async (t) => {
    const { cache } = await setup(t, { 'x.test': { A: ['10.0.0.1'] } });
    await cache.resolve('x.test');
    await cache.close();
    assert.equal(cache.size, 0);
    await rejectsWithDnsCode(cache.resolve('x.test'), 'ECANCELLED');
  });

  test('a name that is not a host name fails with EBADNAME without a query', async (t) => {
    const { cache, zone } = await setup(t, {});
    await rejectsWithDnsCode(cache.resolve('bad name'), 'EBADNAME');
    assert.equal(zone.total, 0);
  });
});

describe('udp mode: lookup() for net.connect / undici', () => {
  const call = (cache: DnsCache, host: string, options: object) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family: unknown }>((resolve) =>
      cache.lookup(host, options, (err, address, family) => resolve({ err, address, family })),
    );

  test('honours all and family', async (t) => {
    const { cache } = await setup(t, { 'api.test': { A: ['10.0.0.1', '10.0.0.2'], AAAA: ['fd00::1'] } });
    assert.deepEqual(await call(cache, 'api.test', { all: true }), {
      err: null,
      address: [
        { address: '10.0.0.1', family: 4 },
        { address: '10.0.0.2', family: 4 },
        { address: 'fd00::1', family: 6 },
      ],
      family: undefined,
    });
    assert.deepEqual(await call(cache, 'api.test', {}), { err: null, address: '10.0.0.1', family: 4 });
    assert.deepEqual(await call(cache, 'api.test', { family: 6 }), {
      err: null,
      address: 'fd00::1',
      family: 6,
    });
    assert.deepEqual(await call(cache, 'api.test', { family: 'IPv6', all: true }), {
      err: null,
      address: [{ address: 'fd00::1', family: 6 }],
      family: undefined,
    });
  });

  test('an error carries the DNS code, and the DnsError as its cause', async (t) => {
    const { cache } = await setup(t, {});
    const { err } = await call(cache, 'nope.test', { all: true });
    assert.ok(err);
    assert.equal(err.code, 'ENOTFOUND');
    const dnsErr = dnsErrorFrom(err);
    assert.ok(dnsErr instanceof DnsError);
    assert.deepEqual(dnsErr.detail, { dnsCode: 'ENOTFOUND', host: 'nope.test' });
  });
});
