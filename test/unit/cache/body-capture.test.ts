/**
 * captureBody (cache/body-capture.ts): what it hands over for storage while the client reads the
 * stream. Chunks arrive as views into larger buffers, as socket reads do; a body with a
 * Content-Length is kept in one buffer of exactly that size, never in the chunks' buffers.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { captureBody } from '../../../src/cache/body-capture.js';

interface Outcome {
  readonly streamed: Buffer;
  readonly stored: Buffer | null;
  readonly overflow: boolean;
  readonly failed: Error | null;
}

/** Each chunk a view into a 64 KiB buffer of its own, at an offset, like a socket read. */
function viewsOf(body: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    const backing = Buffer.alloc(65536, 0x2a);
    body.copy(backing, 100, at, at + size);
    out.push(backing.subarray(100, 100 + size));
    at += size;
  }
  return out;
}

async function capture(
  chunks: readonly Buffer[],
  limit: number,
  expected: number | undefined,
): Promise<Outcome> {
  let stored: Buffer | null = null;
  let overflow = false;
  let failed: Error | null = null;
  const tee = captureBody(Readable.from(chunks, { objectMode: false }), limit, expected, {
    onComplete: (b) => {
      stored = b;
    },
    onOverflow: () => {
      overflow = true;
    },
    onFail: (err) => {
      failed = err;
    },
  });
  const got: Buffer[] = [];
  try {
    for await (const c of tee) got.push(c as Buffer);
  } catch {
    // the stream's error is the failure the events already reported
  }
  await new Promise((r) => setImmediate(r));
  return { streamed: Buffer.concat(got), stored, overflow, failed };
}

const body = Buffer.from(Array.from({ length: 40000 }, (_, i) => i % 251));

test('an announced length: the stored body is one buffer of exactly that size, equal to what streamed', async () => {
  const out = await capture(viewsOf(body, [10000, 1, 29999]), 1 << 20, body.length);
  assert.deepEqual(out.streamed, body);
  assert.ok(out.stored !== null, 'stored');
  const stored = out.stored as Buffer;
  assert.deepEqual(stored, body);
  assert.equal(stored.buffer.byteLength, body.length, 'no larger buffer is kept alive');
  assert.equal(out.failed, null);
});

test('a body that comes in one chunk is handed over as it came (the memory store judges the view)', async () => {
  const [chunk] = viewsOf(body, [body.length]);
  const out = await capture([chunk as Buffer], 1 << 20, body.length);
  assert.equal(out.stored, chunk, 'the same view, not a copy');
});

test('no announced length (chunked): the chunks are joined into a buffer of the body size', async () => {
  const out = await capture(viewsOf(body, [30000, 10000]), 1 << 20, undefined);
  const stored = out.stored as Buffer | null;
  assert.ok(stored !== null);
  assert.deepEqual(stored, body);
  assert.equal(stored.buffer.byteLength, body.length);
});

test('fewer bytes than announced: nothing is stored, the capture fails, the client sees an error', async () => {
  const out = await capture(viewsOf(body, [20000]), 1 << 20, body.length);
  assert.equal(out.stored, null);
  assert.match(String(out.failed), /ended after 20000 of 40000 bytes/);
});

test('more bytes than announced: nothing is stored and nothing is written past the announced size', async () => {
  for (const sizes of [[20000, 20000], [35000, 5000], [40000]]) {
    const out = await capture(viewsOf(body, sizes), 1 << 20, 30000);
    assert.equal(out.stored, null, `chunks ${sizes}`);
    assert.match(String(out.failed), /ended after 40000 of 30000 bytes/);
  }
});

test('over the limit, announced or not: the body streams whole and nothing is stored', async () => {
  for (const expected of [body.length, undefined]) {
    const out = await capture(viewsOf(body, [20000, 20000]), 30000, expected);
    assert.equal(out.overflow, true);
    assert.equal(out.stored, null);
    assert.deepEqual(out.streamed, body);
  }
});
