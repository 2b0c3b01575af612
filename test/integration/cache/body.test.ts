/** Bodies: only complete bodies are stored; large ones stream through; the store stays bounded. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EvictionInfo } from '../../../src/cache/store.js';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';
import { readReply } from '../../helpers/exchange.js';

const BIG = 'b'.repeat(100_000);

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a truncated origin body (${framing}) reaches the client as an error and is never stored`, async (t) => {
    const h = await startHarness(t, (_req, res, n) => {
      if (n === 1) {
        res.writeHead(200, {
          'cache-control': 'max-age=100',
          ...(framing === 'content-length' ? { 'content-length': '10000' } : {}),
        });
        res.write('x'.repeat(5000));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      send(res, 200, { 'cache-control': 'max-age=100' }, 'complete');
    });
    const first = await h.send('/t');
    await assert.rejects(readReply(first.reply));
    await h.stage.idle();
    assert.equal(first.ex.cache?.stored, false);
    assert.equal(first.ex.cache?.detail, 'incomplete');
    const second = await h.get('/t');
    assert.equal(second.text, 'complete');
    assert.equal(h.origin.count('/t'), 2);
  });
}

test('a body larger than maxEntryBytes streams through in full and is not stored', async (t) => {
  const h = await startHarness(
    t,
    (req, res) => {
      res.writeHead(200, {
        'cache-control': 'max-age=100',
        ...(req.url === '/len' ? { 'content-length': String(BIG.length) } : {}),
      });
      // Many writes: a chunked body whose size is known only at the end.
      for (let i = 0; i < BIG.length; i += 10_000) res.write(BIG.slice(i, i + 10_000));
      res.end();
    },
    { options: { maxEntryBytes: 10_000 } },
  );
  for (const path of ['/chunked', '/len']) {
    const r = await h.get(path);
    await h.stage.idle();
    assert.equal(r.text.length, BIG.length);
    assert.equal(r.ex.cache?.stored, false);
    assert.equal(r.ex.cache?.detail, 'too-large');
    const again = await h.get(path);
    assert.equal(again.text.length, BIG.length);
    assert.equal(again.ex.cache?.stored, false);
    assert.ok(['hit-for-miss', 'too-large'].includes(String(again.ex.cache?.detail)));
    assert.equal(h.origin.count(path), 2);
  }
  const withLength = await h.get('/len');
  assert.match(cacheStatus(withLength), /detail=hit-for-miss|detail="not stored: too-large/);
  assert.equal((await h.stage.stats()).entries, 0);
});

test('the memory store stays within maxSizeBytes under many distinct keys and counts evictions', async (t) => {
  const removed: EvictionInfo[] = [];
  const h = await startHarness(
    t,
    (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=100' }, `${n}`.padEnd(1000, '.')),
    {
      options: { maxSizeBytes: 60_000, maxEntryBytes: 5_000 },
      deps: { observer: { onRemove: (e) => removed.push(e) } },
    },
  );
  for (let i = 0; i < 300; i++) {
    await h.get(`/k${i}`);
    if (i % 50 === 0) await h.stage.idle();
  }
  await h.stage.idle();
  const stats = await h.stage.stats();
  assert.ok(stats.bytes <= 60_000, `bytes ${stats.bytes}`);
  assert.ok(stats.entries > 10 && stats.entries < 60, `entries ${stats.entries}`);
  assert.ok(removed.filter((r) => r.reason === 'evict').length >= 300 - stats.entries);
  assert.equal((await h.get('/k299')).ex.cache?.outcome, 'hit');
  assert.notEqual((await h.get('/k0')).ex.cache?.outcome, 'hit');
});
