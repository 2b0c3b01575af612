import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/load.js';
import {
  BASE_RSS_BYTES,
  checkMemoryFit,
  expectedPeakRssBytes,
  explainMemory,
  largestCacheFor,
  readMemoryLimit,
} from '../../../src/config/memory-limit.js';
import { ConfigError } from '../../../src/errors.js';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'sidecache-memory-limit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A real file holding `text`, as cgroup v2's memory.max would. */
function limitFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('memory limit from the container', () => {
  it('reads bytes from memory.max; "max", an absent file or garbage mean no limit', () => {
    assert.equal(readMemoryLimit(limitFile('bytes', '536870912\n')), 512 * MiB);
    assert.equal(readMemoryLimit(limitFile('max', 'max\n')), null);
    assert.equal(readMemoryLimit(join(dir, 'absent')), null);
    assert.equal(readMemoryLimit(limitFile('garbage', '12k\n')), null);
    assert.equal(readMemoryLimit(limitFile('empty', '')), null);
  });

  it('cache.maxSizeBytes as a share of the limit file SIDECACHE_MEMORY_LIMIT_FILE names', () => {
    const file = limitFile('512m', String(512 * MiB));
    const yaml = limitFile('share.yaml', 'cache:\n  maxSizeBytes: "25%"\n');
    const { config } = loadConfig({ file: yaml, env: { SIDECACHE_MEMORY_LIMIT_FILE: file } });
    assert.equal(config.cache.maxSizeBytes, 128 * MiB);
    const fractional = limitFile('frac.yaml', 'cache:\n  maxSizeBytes: "12.5%"\n');
    assert.equal(
      loadConfig({ file: fractional, env: { SIDECACHE_MEMORY_LIMIT_FILE: file } }).config.cache.maxSizeBytes,
      64 * MiB,
    );
  });

  it('a share without a limit, or outside (0, 100], is a config error that says why', () => {
    const yaml = limitFile('share2.yaml', 'cache:\n  maxSizeBytes: "25%"\n');
    assert.throws(
      () => loadConfig({ file: yaml, env: { SIDECACHE_MEMORY_LIMIT_FILE: limitFile('max2', 'max') } }),
      (err: unknown) =>
        err instanceof ConfigError && /share of the container's memory limit.*gives none/.test(err.message),
    );
    const zero = limitFile('zero.yaml', 'cache:\n  maxSizeBytes: "0%"\n');
    assert.throws(
      () =>
        loadConfig({ file: zero, env: { SIDECACHE_MEMORY_LIMIT_FILE: limitFile('1g', String(1024 * MiB)) } }),
      (err: unknown) => err instanceof ConfigError && /above 0% and at most 100%/.test(err.message),
    );
  });

  it('the expected peak grows with the cap and a shared tier; a cache that cannot fit is refused', () => {
    const { config } = loadConfig({ env: {} });
    const small = { ...config, cache: { ...config.cache, maxSizeBytes: 32 * MiB } };
    const peak = expectedPeakRssBytes(small);
    assert.ok(peak > BASE_RSS_BYTES + 32 * MiB, `peak ${peak}`);
    assert.ok(
      expectedPeakRssBytes({
        ...small,
        cache: { ...small.cache, redis: { ...small.cache.redis, url: 'redis://127.0.0.1:6379' } },
      }) > peak,
    );
    assert.equal(
      expectedPeakRssBytes({ ...small, cache: { ...small.cache, enabled: false } }),
      BASE_RSS_BYTES,
    );
    checkMemoryFit(small, peak, 'memory.max'); // exactly enough
    checkMemoryFit(small, null, 'memory.max'); // no limit known: nothing to check
    assert.throws(
      () => checkMemoryFit(small, peak - 1, '/sys/fs/cgroup/memory.max'),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.code === 'SC_ERR_CONFIG' &&
        /expected peak RSS of .* over the container's memory limit .*lower cache.maxSizeBytes to at most/.test(
          err.message,
        ),
    );
    const largest = largestCacheFor(small, 256 * MiB);
    assert.ok(
      largest > 0 &&
        expectedPeakRssBytes({ ...small, cache: { ...small.cache, maxSizeBytes: largest } }) <= 256 * MiB,
    );
    assert.match(
      explainMemory(small, null, 'memory.max'),
      /expected peak RSS \d+(\.\d)? MiB .*no container memory limit found/,
    );
  });
});
