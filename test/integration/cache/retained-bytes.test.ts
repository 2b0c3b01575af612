/**
 * Honest accounting: what the stored bodies keep alive never exceeds what the store counts. The
 * origin (a raw socket) sends each response in one write with a 12 KiB head (a padded Keep-Alive
 * field, which is not stored) and a 512-byte body, so the body reaches the cache as a 512-byte view
 * into a ~13 KiB socket read. Kept as it came, every stored body would pin the whole read (25x its
 * size) while the store counted 512 bytes: this test fails when the memory store stores the view.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { createMemoryStore } from '../../../src/cache/memory-store.js';
import { createCacheStage } from '../../../src/cache/stage.js';
import { makeExchange, readReply } from '../../helpers/exchange.js';
import { createOriginTerminal } from '../../helpers/origin-terminal.js';
import { startRawOrigin } from '../../helpers/raw-origin.js';

const MAX_SIZE_BYTES = 64 * 1024;
const RESPONSES = 120;
const BODY_BYTES = 512;

/** Sum of the distinct backing stores (ArrayBuffers) the given bodies keep alive. */
function retainedBytes(bodies: Iterable<Uint8Array>): number {
  const seen = new Set<ArrayBufferLike>();
  let n = 0;
  for (const b of bodies) {
    if (b.byteLength === 0 || seen.has(b.buffer)) continue;
    seen.add(b.buffer);
    n += b.buffer.byteLength;
  }
  return n;
}

/**
 * A raw origin answering every path with one write: its head (with `extraHead` lines) and a
 * `bodyBytes` body; and a cache stage with a memory store of `maxSizeBytes` in front of it.
 */
async function cachedRawOrigin(t: TestContext, bodyBytes: number, extraHead: string, maxSizeBytes: number) {
  const origin = await startRawOrigin((socket, path) => {
    const body = Buffer.alloc(bodyBytes, (path.length % 26) + 97);
    socket.end(
      Buffer.concat([
        Buffer.from(
          'HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncache-control: public, max-age=3600\r\n' +
            `connection: close\r\n${extraHead}content-length: ${bodyBytes}\r\n\r\n`,
          'latin1',
        ),
        body,
      ]),
    );
  });
  const terminal = createOriginTerminal();
  t.after(async () => {
    await terminal.close();
    await origin.close();
  });
  const store = createMemoryStore({ maxSizeBytes, maxEntryBytes: 16 * 1024 });
  const stage = createCacheStage({ maxSizeBytes, maxEntryBytes: 16 * 1024 }, { store });
  const pipeline = stage(terminal.next);
  const base = `http://127.0.0.1:${origin.port}`;
  return { store, stage, send: (path: string) => pipeline(makeExchange(`${base}${path}`)) };
}

test('retained bytes: bodies that arrive as slices of large socket reads never pin more than the store counts', {
  timeout: 60_000,
}, async (t) => {
  const pad = 'p'.repeat(12 * 1024);
  const { store, stage, send } = await cachedRawOrigin(
    t,
    BODY_BYTES,
    `keep-alive: timeout=5, pad=${pad}\r\n`,
    MAX_SIZE_BYTES,
  );
  let maxRetained = 0;
  for (let i = 0; i < RESPONSES; i++) {
    const r = await readReply(await send(`/r/${i}`));
    assert.equal(r.status, 200);
    assert.equal(r.text.length, BODY_BYTES);
    await stage.idle();
    const stored = [...store.list()];
    const retained = retainedBytes(stored.map((e) => e.body));
    maxRetained = Math.max(maxRetained, retained);
    assert.ok(
      retained <= store.size.bytes,
      `after ${i + 1} responses: ${stored.length} stored bodies keep ${retained} bytes alive, the store counts ${store.size.bytes}`,
    );
    assert.ok(store.size.bytes <= MAX_SIZE_BYTES);
  }
  const stats = await stage.stats();
  assert.ok(
    stats.entries > 10 && stats.entries < RESPONSES,
    `the store filled and evicted (${stats.entries} held)`,
  );
  assert.ok(maxRetained > 0);
  // Each body is in a buffer of its own, exactly its size.
  for (const e of store.list()) assert.equal(e.body.buffer.byteLength, BODY_BYTES);
});

test('retained bytes: a body that arrives a little short of its socket read is kept as it came, and the whole read counted', {
  timeout: 60_000,
}, async (t) => {
  const bodyBytes = 4096;
  const { store, stage, send } = await cachedRawOrigin(t, bodyBytes, '', 256 * 1024);
  for (let i = 0; i < 40; i++) {
    const r = await readReply(await send(`/v/${i}`));
    assert.equal(r.status, 200);
    assert.equal(r.text, String.fromCharCode((`/v/${i}`.length % 26) + 97).repeat(bodyBytes));
    await stage.idle();
    const stored = [...store.list()];
    assert.ok(retainedBytes(stored.map((e) => e.body)) <= store.size.bytes);
  }
  const stored = [...store.list()];
  // The read held the head too: the stored body is a view into it (not a copy), at most an eighth
  // (or 512 bytes) short of it, and the store counts the whole read.
  const views = stored.filter((e) => e.body.byteOffset > 0);
  assert.ok(views.length >= stored.length / 2, `${views.length} of ${stored.length} bodies kept as views`);
  for (const e of stored) {
    assert.equal(e.body.byteLength, bodyBytes);
    assert.ok(e.body.buffer.byteLength - bodyBytes <= 512, `a ${e.body.buffer.byteLength}-byte buffer kept`);
  }
});
