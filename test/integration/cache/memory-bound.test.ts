/**
 * Issues 4 and 8: the cache's byte bound holds in real memory. Many distinct small responses
 * (32-byte bodies, where per-entry overhead dominates) are stored through the real stage, from a
 * real origin, with `maxSizeBytes` 1 MiB; in a child run with --expose-gc, the heap growth after
 * forced GCs must stay within 1.5x of the bound (plus 1 MiB of slack). With the old accounting
 * (body + key + header text + 64 bytes) the store held 4,315 such entries in 1 MiB, and the heap grew 6.7 MB
 * (1,560 B each): this test failed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChildScript } from '../../helpers/child-script.js';

const MAX_SIZE_BYTES = 1024 * 1024;
const ENTRIES = 6_000;

test('memory bound: heap growth stays within 1.5x of cache.maxSizeBytes under many distinct keys', {
  timeout: 60_000,
}, async () => {
  const { code, out } = await runChildScript(new URL('./memory-bound.child.ts', import.meta.url), {
    nodeFlags: ['--expose-gc'],
    args: [String(MAX_SIZE_BYTES), String(ENTRIES)],
    killAfterMs: 50_000,
  });
  assert.equal(code, 0, out);
  const line = /^RESULT (.*)$/m.exec(out)?.[1];
  assert.ok(line, out);
  const r = JSON.parse(line) as { entries: number; storeBytes: number; heapGrowthBytes: number };
  assert.ok(r.storeBytes <= MAX_SIZE_BYTES, `store counts ${r.storeBytes} bytes`);
  assert.ok(r.entries < ENTRIES, `the store evicted (holds ${r.entries} of ${ENTRIES})`);
  const bound = 1.5 * MAX_SIZE_BYTES + 1024 * 1024;
  assert.ok(
    r.heapGrowthBytes <= bound,
    `heap grew ${r.heapGrowthBytes} bytes for ${r.entries} entries (${(r.heapGrowthBytes / r.entries).toFixed(0)} B each), over ${bound}`,
  );
});
