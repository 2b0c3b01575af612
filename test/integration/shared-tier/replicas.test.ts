/**
 * Two sidecache instances sharing one real redis-server (in-process, free ports): what one stores
 * the other serves, a restarted instance keeps its cache, concurrent misses across replicas make
 * one origin request, purges reach every replica, and Redis failing is never an outage.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { send } from '../../helpers/client.js';
import { type Origin, startOrigin } from '../../helpers/counting-origin.js';
import { redisUnavailable, startTestRedis, type TestRedis } from '../../helpers/redis-server.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const skip = redisUnavailable() ?? false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const status = (r: { headers: Record<string, unknown> }): string => String(r.headers['cache-status'] ?? '');

describe('shared tier: replicas on one Redis', { skip }, () => {
  let redis: TestRedis;
  let origin: Origin;
  const keyPrefix = `it${randomBytes(4).toString('hex')}:`;
  const open: TestSidecache[] = [];

  /** Holds the origin's answer to /gated until the test opens it (the test bounds the wait). */
  let openGate = (): void => {};
  const crowdGate = new Promise<void>((resolve) => {
    openGate = resolve;
  });

  /** The sum of a metric's samples on a replica's /metrics. */
  async function metricSum(sc: TestSidecache, name: string): Promise<number> {
    const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
    }
    return sum;
  }

  async function replica(): Promise<TestSidecache> {
    const sc = await startTestSidecache({
      routes: [{ name: 'o', origin: origin.url }],
      cache: { redis: { url: redis.url, keyPrefix, commandTimeoutMs: 200, connectTimeoutMs: 500 } },
    });
    open.push(sc);
    // Wait for the command connection and the invalidation subscription.
    for (let i = 0; i < 100; i++) {
      const m = await fetch(`${sc.adminUrl}/readyz`);
      if (m.status === 200) break;
      await sleep(10);
    }
    await sleep(100);
    return sc;
  }

  before(async () => {
    redis = await startTestRedis();
    origin = await startOrigin(async (req, res) => {
      if ((req.url ?? '').startsWith('/gated')) await crowdGate;
      if ((req.url ?? '').startsWith('/slow')) await sleep(300);
      res.writeHead(200, { 'cache-control': 'max-age=300', 'content-type': 'text/plain' });
      res.end(`body of ${req.url}`);
    });
  });
  after(async () => {
    for (const sc of open) await sc.close();
    await origin?.close();
    await redis?.close();
  });

  it('a response fetched through A is a hit through B; a restarted A keeps it', async () => {
    const a = await replica();
    const b = await replica();
    const first = await send(a.url, '/o/shared');
    assert.equal(first.status, 200);
    assert.match(status(first), /fwd=uri-miss/);
    const fromB = await send(b.url, '/o/shared');
    assert.equal(fromB.text(), 'body of /shared');
    assert.match(status(fromB), /; hit/);
    assert.equal(origin.count('/shared'), 1);

    await a.close();
    const a2 = await replica(); // new process memory: L1 empty, L2 still has it
    const again = await send(a2.url, '/o/shared');
    assert.match(status(again), /; hit/);
    assert.equal(again.text(), 'body of /shared');
    assert.equal(origin.count('/shared'), 1);
  });

  it('100 concurrent misses over two replicas make one origin request', async () => {
    const a = await replica();
    const b = await replica();
    const gateTimer = setTimeout(openGate, 10_000);
    const pending = Promise.all(
      Array.from({ length: 100 }, (_, i) => send(i % 2 === 0 ? a.url : b.url, '/o/gated-crowd')),
    );
    // The origin answers only once every request is in flight at its replica, so B's crowd is
    // there while A's leader fetches, however slowly a loaded machine delivers them.
    for (let waited = 0; waited < 10_000; waited += 20) {
      const inFlight = await Promise.all([a, b].map((sc) => metricSum(sc, 'sidecache_in_flight_requests')));
      if (inFlight.every((n) => n >= 50)) break;
      await sleep(20);
    }
    await sleep(50);
    openGate();
    clearTimeout(gateTimer);
    const replies = await pending;
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.text(), 'body of /gated-crowd');
    }
    assert.equal(origin.count('/gated-crowd'), 1);
    // One replica's leader fetched; the other's waited for that fill, then read Redis.
    let waits = 0;
    for (const sc of [a, b]) {
      const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
      const m = /sidecache_cache_l2_lock_waits_total\{result="released"\} (\d+)/.exec(metrics);
      waits += m ? Number(m[1]) : 0;
    }
    assert.equal(waits, 1);
  });

  it('a purge through A is seen by B (its in-memory copy is dropped)', async () => {
    const a = await replica();
    const b = await replica();
    await send(a.url, '/o/purged');
    assert.match(status(await send(b.url, '/o/purged')), /; hit/); // now in B's L1 too
    const purge = await fetch(`${a.adminUrl}/purge?url=${encodeURIComponent(`${origin.url}/purged`)}`, {
      method: 'POST',
    });
    assert.equal(purge.status, 200);
    await sleep(50);
    const after = await send(b.url, '/o/purged');
    assert.match(status(after), /fwd=uri-miss/);
    assert.equal(origin.count('/purged'), 2);
  });

  it('a corrupt value in Redis is a miss', async () => {
    const a = await replica();
    await send(a.url, '/o/corrupt');
    const raw = new Redis(redis.url);
    try {
      for (const k of await raw.keys(`${keyPrefix}k:*corrupt*`)) {
        for (const f of await raw.hkeys(k)) await raw.hset(k, f, Buffer.from('not an entry'));
      }
    } finally {
      raw.disconnect();
    }
    const fresh = await replica();
    const r = await send(fresh.url, '/o/corrupt');
    assert.equal(r.status, 200);
    assert.equal(r.text(), 'body of /corrupt');
    assert.match(status(r), /fwd=uri-miss/);
    assert.equal(origin.count('/corrupt'), 2);
  });

  it('Redis killed mid-traffic fails no request; the tier recovers when Redis returns', async (t) => {
    if (!redis.owned) return t.skip('REDIS_URL given: cannot stop that server');
    const a = await replica();
    const b = await replica();
    let failed = 0;
    let served = 0;
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop; i++) {
        const rs = await Promise.allSettled([
          send(a.url, `/o/during-${i % 20}`),
          send(b.url, `/o/during-${(i + 7) % 20}`),
        ]);
        for (const r of rs) {
          if (r.status === 'fulfilled' && r.value.status === 200) served++;
          else failed++;
        }
      }
    })();
    // Counted, not timed: each phase lasts until enough requests went through it (bounded by a
    // cap), so a loaded machine cannot make the outage too short to exercise.
    const servedAtLeast = async (n: number) => {
      const target = served + n;
      for (let waited = 0; served < target && waited < 15_000; waited += 20) await sleep(20);
    };
    await servedAtLeast(10);
    await redis.stop();
    const beforeOutage = served;
    await servedAtLeast(20);
    const duringOutage = served - beforeOutage;
    await redis.start();
    await servedAtLeast(10);
    stop = true;
    await traffic;
    assert.equal(failed, 0);
    assert.ok(duringOutage >= 20, `served ${duringOutage} while Redis was down`);

    // Reconnected (retry back-off is at most 2 s): the shared tier works again.
    for (let i = 0; i < 300; i++) {
      await send(a.url, `/o/after-${i}`);
      const r = await send(b.url, `/o/after-${i}`);
      if (/; hit/.test(status(r))) return;
      await sleep(20);
    }
    assert.fail('the shared tier did not recover after Redis came back');
  });
});
