/**
 * Sampling: parent-based with a ratio of 0 exports only what the caller sampled, and the tail rule
 * (alwaysSample) exports failed and slow exchanges whatever head sampling said.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';
import { type OtlpReceiver, type OtlpSpan, startOtlpReceiver } from './otlp-receiver.js';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
// Well above what a plain request takes on a loaded machine: only /slow is slow.
const SLOW_MS = 1000;

describe('tracing: head sampling follows the caller; the tail rule keeps errors and slow calls', () => {
  let origin: TestOrigin;
  let receiver: OtlpReceiver;
  let sc: TestSidecache;

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      if (req.url?.startsWith('/slow')) await new Promise((r) => setTimeout(r, SLOW_MS + 100));
      res.writeHead(req.url?.startsWith('/fail') ? 503 : 200, { 'cache-control': 'no-store' });
      res.end('x');
    });
    receiver = await startOtlpReceiver();
    sc = await startTestSidecache({
      routes: [{ name: 'api', origin: origin.url }],
      tracing: {
        endpoint: receiver.url,
        sampler: 'parentbased_traceidratio',
        ratio: 0,
        alwaysSample: { errors: true, slowMs: SLOW_MS },
        queue: { delayMs: 20 },
      },
    });
  });
  after(async () => {
    await sc?.close();
    await receiver?.close();
    await origin?.close();
  });

  it('exports the sampled, the failed and the slow; not the rest', async () => {
    const get = async (path: string, traceparent?: string): Promise<number> => {
      const res = await fetch(`${sc.url}/api${path}`, traceparent ? { headers: { traceparent } } : {});
      await res.arrayBuffer();
      return res.status;
    };
    // Not sampled: no caller context at ratio 0, and a caller that did not sample.
    assert.equal(await get('/plain'), 200);
    assert.equal(await get('/unsampled', `00-${hex(16)}-${hex(8)}-00`), 200);
    // Sampled: by the caller, or by the tail rule.
    const sampledTrace = hex(16);
    assert.equal(await get('/sampled', `00-${sampledTrace}-${hex(8)}-01`), 200);
    assert.equal(await get('/fail'), 503);
    assert.equal(await get('/slow', `00-${hex(16)}-${hex(8)}-00`), 200);
    const path = (s: OtlpSpan): string => new URL(String(s.attributes['url.full'])).pathname;
    const servers = (all: OtlpSpan[]) => all.filter((s) => s.kind === 2);
    const spans = await receiver.waitFor((all) => servers(all).length >= 3);
    // The last three came after the first two, in the same or a later batch: wait one more batch.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(servers(spans).map(path).sort(), ['/fail', '/sampled', '/slow']);
    const sampled = servers(spans).find((s) => path(s) === '/sampled') as OtlpSpan;
    assert.equal(sampled.traceId, sampledTrace);
    const failed = servers(spans).find((s) => path(s) === '/fail') as OtlpSpan;
    assert.equal(failed.attributes['http.response.status_code'], 503);
    assert.equal((failed as unknown as { status: { code: number } }).status.code, 2, 'span status ERROR');
  });
});
