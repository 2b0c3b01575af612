/**
 * Two tiers behind one CacheStore: L1 in this process (the memory store) in front of L2 shared by
 * every replica (the Redis store). A lookup tries L1, then L2, and an L2 hit fills L1; a store
 * writes both (L2 refuses bodies over its own limit: those stay L1-only); deletes reach both, and
 * L2 broadcasts them so that every other replica drops its L1 copy.
 *
 * L2 failing is never an outage: its errors are reported by the Redis store's observer, and here
 * they become a miss, a write to L1 only, or a delete of L1 only.
 *
 * With an L2 that cannot broadcast invalidations (memcached), `l1TtlMs` caps how long an entry
 * lives in L1, so another replica's purge reaches this one's memory within that time.
 *
 * L2 writes in flight are bounded in bytes (`maxPendingL2Bytes`, counted as body bytes plus
 * L2_WRITE_OVERHEAD each): while an L2 that is slower than the traffic holds that budget, a new
 * write is not sent (the entry stays in L1 alone) and `onWriteDropped` counts it. Never a queue
 * that grows, never a wait: each write holds its entry and its encoded copies until L2 answers.
 * Once it has, L1's reclaimer counts those copies as dropped bytes (memory-store.ts `discarded`):
 * they live outside the V8 heap and are freed only by a full GC.
 *
 * Known limit: when L1 holds some variants of a key, L2 is not asked for others (a Vary miss then
 * goes to the origin, and its response is stored in both tiers).
 */
import type { MemoryStore } from './memory-store.js';
import type { RemoteInvalidation } from './redis-store.js';
import type { CacheStore, FillCoordinator, StoredResponse } from './store.js';

/** What the tiered store needs from L2 (the Redis store, the memcached store). */
export interface SharedL2Store extends CacheStore {
  readonly fill: FillCoordinator;
  /** Present when L2 tells of other processes' deletions (Redis pub/sub). */
  onRemoteInvalidation?(listener: RemoteInvalidation): void;
  close(): Promise<void>;
}

export interface TieredStore extends CacheStore {
  readonly fill: FillCoordinator;
  /** The in-process tier, or null when `l1` is off. */
  readonly l1: MemoryStore | null;
  readonly l2: SharedL2Store;
  close(): Promise<void>;
}

/** What an L2 write is counted to hold beside its body (metadata, encoding, the command). */
export const L2_WRITE_OVERHEAD = 1024;
/** Most bytes of L2 writes in flight. */
export const MAX_PENDING_L2_BYTES = 4 * 1024 * 1024;

/**
 * The L2 writes' share of a cache budget of `maxSizeBytes` (shared-tier.ts takes it out of L1's,
 * so L1 and the writes in flight together stay within the budget): an eighth, at most
 * MAX_PENDING_L2_BYTES.
 */
export function pendingL2BytesFor(maxSizeBytes: number): number {
  return Math.min(MAX_PENDING_L2_BYTES, Math.floor(maxSizeBytes / 8));
}

export function createTieredStore(tiers: {
  l1: MemoryStore | null;
  l2: SharedL2Store;
  /** Longest time an entry stays in L1 (null: as long as it may be kept). */
  l1TtlMs?: number | null;
  now?: () => number;
  /**
   * Most bytes of L2 writes in flight; beyond it a write is left out (one write is always let
   * through when none is in flight). Default MAX_PENDING_L2_BYTES.
   */
  maxPendingL2Bytes?: number;
  /** Told of each L2 write left out because of `maxPendingL2Bytes`, with its counted bytes. */
  onWriteDropped?: (bytes: number) => void;
}): TieredStore {
  const { l1, l2 } = tiers;
  const maxPending = tiers.maxPendingL2Bytes ?? MAX_PENDING_L2_BYTES;
  let pendingBytes = 0;
  const l1TtlMs = tiers.l1TtlMs ?? null;
  const now = tiers.now ?? Date.now;
  const nearCopy = (e: StoredResponse): StoredResponse =>
    l1TtlMs === null || e.deleteAt <= now() + l1TtlMs ? e : { ...e, deleteAt: now() + l1TtlMs };
  /** L2 reads in flight by key: concurrent L1 misses of one key make one Redis round trip. */
  const reading = new Map<string, Promise<readonly StoredResponse[]>>();

  if (l1 !== null && l2.onRemoteInvalidation) {
    l2.onRemoteInvalidation((kind, key) => {
      const done = kind === 'key' ? l1.delete(key) : l1.deletePrefix(key);
      done.catch(() => {});
    });
  }

  function readL2(key: string): Promise<readonly StoredResponse[]> {
    const known = reading.get(key);
    if (known !== undefined) return known;
    const p = (async () => {
      try {
        const found = await l2.get(key);
        if (l1 !== null) for (const e of found) await l1.put(nearCopy(e));
        return found;
      } catch {
        return []; // counted by the Redis store's observer
      } finally {
        reading.delete(key);
      }
    })();
    reading.set(key, p);
    return p;
  }

  return {
    fill: l2.fill,
    l1,
    l2,
    // L1 answers before L2 is asked (get below), so a hit the memo remembers came from L1.
    ...(l1 !== null ? { peekOnly: (key: string) => l1.peekOnly(key), list: () => l1.list() } : {}),
    async get(key) {
      if (l1 !== null) {
        const near = await l1.get(key);
        if (near.length > 0) return near;
      }
      return readL2(key);
    },
    async put(entry) {
      const nearOk = l1 !== null ? await l1.put(nearCopy(entry)) : false;
      const cost = entry.body.byteLength + L2_WRITE_OVERHEAD;
      if (pendingBytes > 0 && pendingBytes + cost > maxPending) {
        tiers.onWriteDropped?.(cost);
        return nearOk;
      }
      pendingBytes += cost;
      try {
        const farOk = await l2.put(entry).catch(() => false);
        return nearOk || farOk;
      } finally {
        pendingBytes -= cost;
        // The write's encoded copies (outside the V8 heap) are garbage now.
        l1?.discarded(cost);
      }
    },
    async delete(key) {
      const near = l1 !== null ? await l1.delete(key) : 0;
      const far = await l2.delete(key).catch(() => 0);
      return Math.max(near, far);
    },
    async deletePrefix(prefix) {
      const near = l1 !== null ? await l1.deletePrefix(prefix) : 0;
      const far = await l2.deletePrefix(prefix).catch(() => 0);
      return Math.max(near, far);
    },
    async stats() {
      if (l1 !== null) return l1.stats();
      return l2.stats().catch(() => ({ entries: 0, bytes: 0 }));
    },
    close: () => l2.close(),
  };
}
