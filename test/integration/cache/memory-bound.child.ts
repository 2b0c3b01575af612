/**
 * Child process of memory-bound.test.ts (run with --expose-gc): a real origin on 127.0.0.1 and a
 * cache stage with a small `maxSizeBytes` in front of it (through a real undici client); fills it
 * with many distinct small responses, then prints, after forced GCs, how much the heap (V8 heap +
 * external memory) grew over a baseline taken before the fill, with the store's own counts.
 * Usage: node --expose-gc --import tsx memory-bound.child.ts MAX_SIZE_BYTES ENTRIES
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCacheStage } from '../../../src/cache/stage.js';
import { makeExchange, readReply } from '../../helpers/exchange.js';
import { createOriginTerminal } from '../../helpers/origin-terminal.js';

const maxSizeBytes = Number(process.argv[2]);
const entries = Number(process.argv[3]);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const body = Buffer.from(`${JSON.stringify({ ok: true, pad: 'x'.repeat(11) })}\n`); // 32 bytes
const origin = createServer((_req, res) => {
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'cache-control': 'public, max-age=3600',
  });
  res.end(body);
});
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
const terminal = createOriginTerminal();
const stage = createCacheStage({ maxSizeBytes, maxEntryBytes: 65_536 });
const pipeline = stage(terminal.next);

async function fill(from: number, to: number): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const i = next++;
      const r = await readReply(await pipeline(makeExchange(`${url}/small/k${i}`)));
      if (r.status !== 200) throw new Error(`k${i}: status ${r.status}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await stage.idle();
  terminal.sent.length = 0; // the terminal records exchanges: not part of the cache
}

function heapBytes(): number {
  for (let i = 0; i < 4; i++) gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

// Warm-up (JIT, pools, lazily built state) on keys of their own, then purged: the baseline.
await fill(-2000, 0);
await stage.purgePrefix(url);
const before = heapBytes();
await fill(0, entries);
const after = heapBytes();
const stats = await stage.stats();
console.log(
  `RESULT ${JSON.stringify({ maxSizeBytes, sent: entries, entries: stats.entries, storeBytes: stats.bytes, heapGrowthBytes: after - before })}`,
);
await terminal.close();
origin.close();
origin.closeAllConnections();
