import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport } from '../../../src/commands/report.js';
import { parsePromText } from '../../../src/metrics/prom-text.js';
import { summarise } from '../../../src/metrics/summary.js';

const SCRAPE = `
# TYPE sidecache_requests_total counter
sidecache_requests_total{route="github",method="GET",status_class="2xx",cache="hit",reason="cache_hit"} 30
# TYPE sidecache_upstream_compressed_bytes_total counter
sidecache_upstream_compressed_bytes_total 25000
# TYPE sidecache_upstream_identity_bytes_total counter
sidecache_upstream_identity_bytes_total 100000
# TYPE sidecache_refresh_ahead_total counter
sidecache_refresh_ahead_total{result="not_modified"} 7
sidecache_refresh_ahead_total{result="replaced"} 2
sidecache_refresh_ahead_total{result="not_stored"} 0
sidecache_refresh_ahead_total{result="error"} 1
# TYPE sidecache_refresh_ahead_deferred_total counter
sidecache_refresh_ahead_deferred_total 3
# TYPE sidecache_refresh_ahead_hits_total counter
sidecache_refresh_ahead_hits_total 40
`;

test('the summary and report show the compression ratio and refresh-ahead results', () => {
  const s = summarise(parsePromText(SCRAPE), undefined);
  assert.equal(s.warmth.compressionRatio, 0.25);
  assert.deepEqual(s.warmth.refreshAhead, { not_modified: 7, replaced: 2, not_stored: 0, error: 1 });
  assert.equal(s.warmth.refreshAheadHits, 40);
  const text = formatReport(s, 'http://127.0.0.1:9090');
  assert.match(
    text,
    /compression {2}upstream bodies at 25\.0% of identity size \(24\.4 KiB received for 97\.7 KiB; 73\.2 KiB saved\)/,
  );
  assert.match(
    text,
    /refresh-ahead 10 revalidated before expiry \(304: 7, 200: 2, not stored: 0, errors: 1; 3 deferred\); 40 hits kept fresh/,
  );
});

test('nothing is said about either without data', () => {
  const s = summarise(parsePromText(''), undefined);
  assert.equal(s.warmth.compressionRatio, null);
  const text = formatReport(s, 'http://127.0.0.1:9090');
  assert.doesNotMatch(text, /compression|refresh-ahead/);
});
