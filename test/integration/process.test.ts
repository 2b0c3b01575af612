import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { send } from '../helpers/client.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { spawnSidecache } from '../helpers/sidecache.js';

/** Peak resident memory of a process in MiB, from /proc. */
function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? Number.NaN);
  return kb / 1024;
}

describe('sidecache as a process', () => {
  let origin: TestOrigin;
  const BIG = 200 * 1024 * 1024;
  /** Bytes the origin has produced for the current /big response (it produces only on demand). */
  let produced = 0;

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(BIG), 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 120);
        produced = 0;
        Readable.from(
          (function* () {
            while (produced < BIG) {
              produced += chunk.length;
              yield chunk;
            }
          })(),
        ).pipe(res);
        return;
      }
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      await sleep(ms);
      res.end(`done after ${ms}`);
    });
  });
  after(() => origin?.close());

  it('streams a 200 MB response with flat memory', async () => {
    const sc = await spawnSidecache(['--route', `o=${origin.url}`]);
    try {
      // Warm up the code paths first, so the baseline includes what any request allocates.
      const warm = await fetch(`${sc.url}/o/slow?ms=0`);
      await warm.text();
      const baseline = peakRssMiB(sc.child.pid as number);
      const res = await fetch(`${sc.url}/o/big`);
      assert.equal(res.status, 200);
      let received = 0;
      // A deliberately slow-ish consumer exercises backpressure.
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) received += chunk.length;
      assert.equal(received, BIG);
      const peak = peakRssMiB(sc.child.pid as number);
      process.stdout.write(`# peak RSS growth ${(peak - baseline).toFixed(1)} MiB\n`);
      assert.ok(
        peak - baseline < 150, // full buffering would need 200 MiB or more; GC timing of transient buffers varies by Node version
        `peak RSS grew by ${(peak - baseline).toFixed(1)} MiB (baseline ${baseline.toFixed(1)})`,
      );
    } finally {
      assert.equal(await sc.stop(), 0);
    }
  });

  it('applies backpressure end to end: a stalled client stalls the origin', async () => {
    const sc = await spawnSidecache(['--route', `o=${origin.url}`]);
    try {
      const res = await fetch(`${sc.url}/o/big`);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      assert.ok(first.value && first.value.length > 0);
      // The client now reads nothing; the origin must stop producing once the buffers fill. How
      // long they take to fill depends on the machine's load: wait (bounded) until a 300 ms window
      // shows no progress, then check it stays stopped.
      let last = -1;
      for (let i = 0; i < 20 && produced !== last; i++) {
        last = produced;
        await sleep(300);
      }
      const atPause = produced;
      await sleep(500);
      assert.ok(
        produced < 48 * 1024 * 1024,
        `origin produced ${(produced / 1048576).toFixed(1)} MiB for a stalled client`,
      );
      assert.equal(produced, atPause, 'production stopped while the client was stalled');
      await reader.cancel();
    } finally {
      assert.equal(await sc.stop(), 0);
    }
  });

  it('on SIGTERM finishes the in-flight request, refuses new work, and exits 0', async () => {
    const sc = await spawnSidecache(['--route', `o=${origin.url}`]);
    const inflight = send(sc.url, '/o/slow?ms=800');
    await sleep(200);
    const exited = sc.stop('SIGTERM');
    await sleep(100);
    const ready = await fetch(`${sc.adminUrl}/readyz`).then(
      (r) => r.status,
      () => 'closed',
    );
    assert.ok(ready === 503 || ready === 'closed', `readyz while draining: ${ready}`);
    const res = await inflight;
    assert.equal(res.status, 200);
    assert.equal(res.text(), 'done after 800');
    assert.equal(await exited, 0);
    assert.match(sc.output(), /"abandoned":0/);
  });

  it('refuses a bad config with a message naming key, value and expectation, and exits non-zero', async () => {
    await assert.rejects(spawnSidecache(['--route', 'bad=ftp://x']), (err: Error) => {
      assert.match(err.message, /exited with 2/);
      assert.match(err.message, /routes\[0\]\.origin: "ftp:\/\/x": expected an http\(s\) URL/);
      return true;
    });
  });
});
