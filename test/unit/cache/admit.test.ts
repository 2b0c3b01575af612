/**
 * admit (cache/admit.ts) through the stage with a fake `next`: an origin answer without a body is
 * stored before its head goes out, so its own Cache-Status can already say `stored`; the stored
 * entry then answers the next request, with an empty body, without the origin.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCacheStage, policyByRoute } from '../../../src/cache/stage.js';
import type { Next, Reply } from '../../../src/exchange.js';
import { makeExchange, manualClock } from '../../helpers/exchange.js';

test('a storable answer without a body is stored at once: Cache-Status says stored, the next request hits', async () => {
  const clock = manualClock();
  let asked = 0;
  const next: Next = async () => {
    asked++;
    return {
      status: 200,
      statusText: 'OK',
      headers: {
        'cache-control': 'max-age=60',
        'content-length': '0',
        date: new Date(clock.now()).toUTCString(),
      },
      body: null,
      source: 'origin',
    } satisfies Reply;
  };
  const stage = createCacheStage({}, { now: clock.now, policyFor: policyByRoute({ r: {} }) });
  const pipeline = stage(next);
  const url = 'http://127.0.0.1:9/empty';
  const first = makeExchange(url, { route: { name: 'r' } });
  const miss = await pipeline(first);
  assert.equal(miss.body, null);
  assert.deepEqual(first.cache, { outcome: 'miss', stored: true });
  assert.match(
    String(miss.headers['cache-status']),
    /^sidecache; fwd=uri-miss; fwd-status=200; ttl=(59|60); stored$/,
  );
  const second = makeExchange(url, { route: { name: 'r' } });
  const hit = await pipeline(second);
  assert.equal(asked, 1);
  assert.equal(second.cache?.outcome, 'hit');
  assert.ok(Buffer.isBuffer(hit.body));
  assert.equal((hit.body as Buffer).byteLength, 0);
  await stage.idle();
});
