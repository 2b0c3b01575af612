/**
 * The memory sidecache may use, from its container, and what a config is expected to need.
 *
 * - The limit: cgroup v2's `memory.max` (bytes, or `max` for none), read once at start; absent
 *   (not in a cgroup v2 container) or `max` means no limit is known.
 * - `cache.maxSizeBytes` may be given as a share of that limit (`"25%"`): resolved here, before the
 *   config is validated, so the rest of the code sees bytes.
 * - The expected peak RSS of a config (`expectedPeakRssBytes`), from the figures `npm run
 *   bench:memory` measures (docs/BENCHMARKS.md, "Memory"): the process's own needs at idle and
 *   under load, plus the cache's cap and what a full store costs beside its count (V8 heap slack,
 *   dropped bodies not yet collected, allocator fragmentation), plus the decoded-copies budget.
 *   `serve` refuses to start when that exceeds the limit; `check-config` prints it.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

export const CGROUP_MEMORY_MAX_FILE = '/sys/fs/cgroup/memory.max';

const MiB = 1024 * 1024;

/** The file the limit is read from: SIDECACHE_MEMORY_LIMIT_FILE (e.g. cgroup v1's) or memory.max. */
export function memoryLimitFile(env: Readonly<Record<string, string | undefined>>): string {
  const given = env.SIDECACHE_MEMORY_LIMIT_FILE?.trim();
  return given ? given : CGROUP_MEMORY_MAX_FILE;
}

/**
 * The process's own needs with an empty cache, under load (code, V8 heap, sockets): idle RSS is
 * about 65 MiB with the launcher's environment and flags; a hit load or a fill adds V8 heap and
 * buffers.
 */
export const BASE_RSS_BYTES = 96 * MiB;
/**
 * What a full cache costs per byte of its cap, beside the base: `npm run bench:memory` peaks of
 * 108-112 MiB with a 32 MiB cap (8 KiB, 512 B and 1 MiB fills; the expected peak with the
 * decoded-copies budget is 144 MiB) and 208-223 MiB with a 128 MiB cap (8 KiB and 512 B fills;
 * expected 288 MiB), idle about 65 MiB.
 */
export const CACHE_RSS_FACTOR = 1.25;
/**
 * A shared tier's in-process part beside the cap: its client's code and connections (a Redis tier's
 * idle RSS is 5 MiB above none). Its writes in flight and memcached's key index are inside the cap
 * (shared-tier.ts), and the fills peak no higher with a tier than without (107-109 MiB at 32 MiB).
 */
export const SHARED_TIER_RSS_BYTES = 8 * MiB;

/**
 * The memory limit in `file` (cgroup v2 `memory.max` by default): bytes, or null when the file is
 * absent or unreadable, says `max`, or holds something else.
 */
export function readMemoryLimit(file: string = CGROUP_MEMORY_MAX_FILE): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
  if (!/^\d+$/.test(text)) return null;
  const bytes = Number(text);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : null;
}

const SHARE = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/;

/** `"25%"` → 0.25; null when `value` is not a share (a number, or another string). */
export function parseShare(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = SHARE.exec(value);
  return m ? Number(m[1]) / 100 : null;
}

/**
 * Replaces a share in `cache.maxSizeBytes` of a merged, not yet validated config object by bytes
 * of `limitBytes`. Throws ConfigError when it is a share and no limit is known, or the share is
 * not within (0, 100]. Anything else is left for the schema to judge.
 */
export function resolveMemoryShares(input: unknown, limitBytes: number | null, limitFile: string): unknown {
  if (typeof input !== 'object' || input === null) return input;
  const cache = (input as { cache?: unknown }).cache;
  if (typeof cache !== 'object' || cache === null) return input;
  const given = (cache as { maxSizeBytes?: unknown }).maxSizeBytes;
  const share = parseShare(given);
  if (share === null) return input;
  if (!(share > 0 && share <= 1)) {
    throw new ConfigError([`cache.maxSizeBytes: "${given}" must be a share above 0% and at most 100%`]);
  }
  if (limitBytes === null) {
    throw new ConfigError([
      `cache.maxSizeBytes: "${given}" is a share of the container's memory limit, but ${limitFile} gives none (absent, or "max"); give bytes instead`,
    ]);
  }
  return { ...input, cache: { ...cache, maxSizeBytes: Math.floor(limitBytes * share) } };
}

export interface MemoryShape {
  readonly cache: {
    readonly enabled: boolean;
    readonly maxSizeBytes: number;
    readonly redis: { readonly url: string | null };
    readonly memcached: { readonly servers: readonly string[] };
  };
}

/** The decoded-copies budget the cache stage keeps beside the store (stage.ts). */
function decodedCopiesBytes(maxSizeBytes: number): number {
  return Math.min(64 * MiB, Math.floor(maxSizeBytes / 4));
}

/** Expected peak RSS of a process running `config` under load, in bytes (see the file comment). */
export function expectedPeakRssBytes(config: MemoryShape): number {
  const { cache } = config;
  if (!cache.enabled) return BASE_RSS_BYTES;
  const tier = cache.redis.url !== null || cache.memcached.servers.length > 0 ? SHARED_TIER_RSS_BYTES : 0;
  return Math.ceil(
    BASE_RSS_BYTES + CACHE_RSS_FACTOR * cache.maxSizeBytes + decodedCopiesBytes(cache.maxSizeBytes) + tier,
  );
}

/** The largest `cache.maxSizeBytes` whose expected peak fits in `limitBytes` (0 when none does). */
export function largestCacheFor(config: MemoryShape, limitBytes: number): number {
  let lo = 0;
  let hi = limitBytes;
  const fits = (size: number) =>
    expectedPeakRssBytes({ ...config, cache: { ...config.cache, maxSizeBytes: size } }) <= limitBytes;
  if (!fits(0)) return 0;
  for (let i = 0; i < 64 && hi - lo > MiB; i++) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return Math.floor(lo / MiB) * MiB;
}

/** `n` bytes as MiB with one decimal. */
export function mib(n: number): string {
  return `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB`;
}

/**
 * Throws ConfigError when the config's expected peak RSS does not fit in `limitBytes` (a limit
 * of null: nothing to check).
 */
export function checkMemoryFit(config: MemoryShape, limitBytes: number | null, limitFile: string): void {
  if (limitBytes === null) return;
  const peak = expectedPeakRssBytes(config);
  if (peak <= limitBytes) return;
  const largest = largestCacheFor(config, limitBytes);
  throw new ConfigError([
    `memory: the configured cache (cache.maxSizeBytes ${mib(config.cache.maxSizeBytes)}) needs an expected peak RSS of ${mib(peak)}, ` +
      `over the container's memory limit of ${mib(limitBytes)} (${limitFile}); ` +
      (largest > 0
        ? `lower cache.maxSizeBytes to at most ${mib(largest)} (or a share such as "${Math.max(1, Math.floor((largest / limitBytes) * 100))}%"), or raise the limit`
        : `raise the limit to at least ${mib(expectedPeakRssBytes({ ...config, cache: { ...config.cache, maxSizeBytes: 0 } }))} plus the cache`),
  ]);
}

/** One line for check-config: the expected peak and the limit it is checked against. */
export function explainMemory(config: MemoryShape, limitBytes: number | null, limitFile: string): string {
  const peak = expectedPeakRssBytes(config);
  const limit =
    limitBytes === null
      ? `no container memory limit found (${limitFile}); give the container at least this`
      : `container memory limit ${mib(limitBytes)} (${limitFile}): ${peak <= limitBytes ? 'fits' : 'DOES NOT FIT'}`;
  return `memory: expected peak RSS ${mib(peak)} (cache.maxSizeBytes ${mib(config.cache.maxSizeBytes)}); ${limit}`;
}
