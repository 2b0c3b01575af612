/**
 * Two sidecache instances sharing one real memcached: what one stores the other serves, a body
 * over the memcached limit stays in the instance that fetched it, and memcached killed
 * mid-traffic fails no request.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { send } from '../../helpers/client.js';
import { type Origin, startOrigin } from '../../helpers/counting-origin.js';
import {
  memcachedUnavailable,
  startTestMemcached,
  type TestMemcached,
} from '../../helpers/memcached-server.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const skip = memcachedUnavailable() ?? false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const status = (r: { headers: Record<string, unknown> }): string => String(r.headers['cache-status'] ?? '');

describe('shared tier: replicas on one memcached', { skip }, () => {
  let mc: TestMemcached;
  let origin: Origin;
  const keyPrefix = `it${randomBytes(4).toString('hex')}:`;
  const open: TestSidecache[] = [];

  async function replica(): Promise<TestSidecache> {
    const sc = await startTestSidecache({
      routes: [{ name: 'o', origin: origin.url }],
      cache: {
        memcached: {
          servers: [mc.server],
          keyPrefix,
          maxEntryBytes: 4_096,
          commandTimeoutMs: 200,
          connectTimeoutMs: 300,
        },
      },
    });
    open.push(sc);
    return sc;
  }

  /** Waits (bounded) until a replica has finished `n` shared-tier puts, read from its /metrics. */
  async function sharedPuts(sc: TestSidecache, n: number): Promise<void> {
    for (let waited = 0; waited < 10_000; waited += 20) {
      const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
      const m = /sidecache_cache_l2_duration_seconds_count\{op="put"\} (\d+)/.exec(text);
      if (m && Number(m[1]) >= n) return;
      await sleep(20);
    }
    assert.fail(`no ${n} shared-tier put(s) within 10 s`);
  }

  before(async () => {
    mc = await startTestMemcached();
    origin = await startOrigin(async (req, res) => {
      const url = req.url ?? '';
      res.writeHead(200, { 'cache-control': 'max-age=300', 'content-type': 'text/plain' });
      res.end(url.startsWith('/big') ? 'x'.repeat(10_000) : `body of ${url}`);
    });
  });
  after(async () => {
    for (const sc of open) await sc.close();
    await origin?.close();
    await mc?.close();
  });

  it('a response fetched through A is a hit through B', async () => {
    const a = await replica();
    const b = await replica();
    const first = await send(a.url, '/o/shared');
    assert.match(status(first), /fwd=uri-miss/);
    // A writes the shared tier after its client has the answer: wait for that put, so B finds the
    // entry (and is not told to wait for A's fill) however loaded the machine is.
    await sharedPuts(a, 1);
    const fromB = await send(b.url, '/o/shared');
    assert.equal(fromB.text(), 'body of /shared');
    assert.match(status(fromB), /; hit/);
    assert.equal(origin.count('/shared'), 1);
  });

  it('a body over maxEntryBytes stays in the instance that fetched it', async () => {
    const a = await replica();
    const b = await replica();
    await send(a.url, '/o/big');
    assert.match(status(await send(a.url, '/o/big')), /; hit/);
    const fromB = await send(b.url, '/o/big');
    assert.equal(fromB.text().length, 10_000);
    assert.match(status(fromB), /fwd=uri-miss/);
    assert.equal(origin.count('/big'), 2);
  });

  it('memcached killed mid-traffic fails no request', async (t) => {
    if (!mc.owned) return t.skip('MEMCACHED_SERVERS given: cannot stop that server');
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
    await mc.stop();
    const beforeOutage = served;
    await servedAtLeast(20);
    const duringOutage = served - beforeOutage;
    await mc.start();
    await servedAtLeast(10);
    stop = true;
    await traffic;
    assert.equal(failed, 0);
    assert.ok(duringOutage >= 20, `served ${duringOutage} while memcached was down`);

    // Back: the shared tier works again.
    for (let i = 0; i < 200; i++) {
      await send(a.url, `/o/after-${i}`);
      const r = await send(b.url, `/o/after-${i}`);
      if (/; hit/.test(status(r))) return;
      await sleep(20);
    }
    assert.fail('the shared tier did not recover after memcached came back');
  });
});
