/**
 * The in-memory CacheStore: an LRU bounded by bytes (`maxSizeBytes`) and by object size
 * (`maxEntryBytes`). Each variant is one LRU item; an index maps primary keys to their variants.
 * Entries past `deleteAt` (by the injected clock) are dropped when read.
 */
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../errors.js';
import {
  type CacheStore,
  type EvictionInfo,
  entrySizeBytes,
  type RemovalReason,
  type StoredResponse,
  type StoreStats,
} from './store.js';

export interface MemoryStoreOptions {
  readonly maxSizeBytes: number;
  readonly maxEntryBytes: number;
  readonly now?: () => number;
  /** Called for every entry that leaves the store (eviction, expiry, delete, replacement). */
  readonly onRemove?: (info: EvictionInfo) => void;
}

export interface MemoryStore extends CacheStore {
  /** Synchronous view for gauges: entries and bytes held now. */
  readonly size: StoreStats;
  /** Entries evicted to make room since creation. */
  readonly evictions: number;
}

const SEP = '\u0001';

export function createMemoryStore(opts: MemoryStoreOptions): MemoryStore {
  if (!Number.isInteger(opts.maxSizeBytes) || opts.maxSizeBytes < 1) {
    throw new ConfigError([`cache.maxSizeBytes: ${opts.maxSizeBytes} is not a positive integer`]);
  }
  if (
    !Number.isInteger(opts.maxEntryBytes) ||
    opts.maxEntryBytes < 0 ||
    opts.maxEntryBytes > opts.maxSizeBytes
  ) {
    throw new ConfigError([`cache.maxEntryBytes: ${opts.maxEntryBytes} must be between 0 and maxSizeBytes`]);
  }
  const now = opts.now ?? Date.now;
  /** primary key → variant keys. */
  const index = new Map<string, Set<string>>();
  let evictions = 0;
  const pendingReason = new Map<string, RemovalReason>();

  const lru = new LRUCache<string, StoredResponse>({
    maxSize: opts.maxSizeBytes,
    sizeCalculation: (e) => Math.max(1, entrySizeBytes(e)),
    dispose: (e, itemKey, why) => {
      if (why !== 'set') {
        const variants = index.get(e.key);
        variants?.delete(e.variantKey);
        if (variants?.size === 0) index.delete(e.key);
      }
      const reason: RemovalReason =
        pendingReason.get(itemKey) ?? (why === 'evict' ? 'evict' : why === 'set' ? 'replace' : 'delete');
      pendingReason.delete(itemKey);
      if (reason === 'evict') evictions++;
      opts.onRemove?.({ key: e.key, bytes: entrySizeBytes(e), reason });
    },
  });

  const itemKey = (key: string, variantKey: string): string => `${key}${SEP}${variantKey}`;

  function removeVariant(key: string, variantKey: string, reason: RemovalReason): boolean {
    const k = itemKey(key, variantKey);
    pendingReason.set(k, reason);
    const had = lru.delete(k);
    pendingReason.delete(k);
    return had;
  }

  function deleteKey(key: string): number {
    const variants = index.get(key);
    if (!variants) return 0;
    let n = 0;
    for (const v of [...variants]) if (removeVariant(key, v, 'delete')) n++;
    index.delete(key);
    return n;
  }

  return {
    async get(key) {
      const variants = index.get(key);
      if (!variants) return [];
      const t = now();
      const out: StoredResponse[] = [];
      for (const v of [...variants]) {
        const e = lru.get(itemKey(key, v));
        if (e === undefined) continue;
        if (e.deleteAt <= t) removeVariant(key, v, 'expire');
        else out.push(e);
      }
      return out;
    },
    async put(entry) {
      if (entry.body.byteLength > opts.maxEntryBytes) return false;
      const size = entrySizeBytes(entry);
      if (size > opts.maxSizeBytes) return false;
      const k = itemKey(entry.key, entry.variantKey);
      lru.set(k, entry);
      if (!lru.has(k)) return false;
      let variants = index.get(entry.key);
      if (!variants) {
        variants = new Set();
        index.set(entry.key, variants);
      }
      variants.add(entry.variantKey);
      return true;
    },
    async delete(key) {
      return deleteKey(key);
    },
    async deletePrefix(prefix) {
      let n = 0;
      for (const key of [...index.keys()]) if (key.startsWith(prefix)) n += deleteKey(key);
      return n;
    },
    async stats() {
      return { entries: lru.size, bytes: lru.calculatedSize };
    },
    get size() {
      return { entries: lru.size, bytes: lru.calculatedSize };
    },
    get evictions() {
      return evictions;
    },
  };
}
