/**
 * The in-memory CacheStore: an LRU bounded by bytes (`maxSizeBytes`) and by object size
 * (`maxEntryBytes`). Each variant is one LRU item: the variant of a response that varies on nothing
 * (nearly all of them) under its primary key itself, any other under the primary key and its variant
 * key; an index maps the primary keys that have such other variants to their variant keys.
 *
 * Only those keys are indexed: a second Map over every key doubled the hash tables a full store
 * holds and rebuilds. V8 grows a Map's table to twice the live entries once the deleted ones fill it,
 * and then builds a new table every (capacity − live) insertions: for 18,000 entries a 1.75 MiB
 * table, two at once (lru-cache's and the index), each new one held beside the old until the next
 * full GC (seen as a 3.5 MiB step in the heap every 47,000 stores of a 512 B fill).
 * Entries past `deleteAt` (by the injected clock) are dropped when read.
 *
 * Bytes are what an entry really holds in the process (`entrySizeBytes`, measured), and `put`
 * keeps an entry compact (`compactEntry`): its body in a buffer that wastes little (a body that
 * arrived as a view into a much larger socket read, or into Node's shared 8 KiB pool, is copied
 * into its own right-sized buffer; a view into a read a little larger than it is kept, and the
 * whole read counted), flat key strings shared by the entry, the index and the LRU, and
 * one shared empty array for the Vary fields of the (usual) entry that varies on nothing.
 */
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../errors.js';
import { createReclaimer, reclaimThresholdBytes } from './reclaim.js';
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
  /** Ask V8 for a full GC after a sixteenth of the cap has left the store (reclaim.ts); default true. */
  readonly reclaim?: boolean;
}

export interface MemoryStore extends CacheStore {
  /** Synchronous view for gauges: entries and bytes held now. */
  readonly size: StoreStats;
  /** Entries evicted to make room since creation. */
  readonly evictions: number;
  /**
   * The live response stored under `key` when it is the only variant there, else undefined; a
   * use, like `get` (recency is updated). Synchronous, for the hit memo (hit-memo.ts).
   */
  peekOnly(key: string): StoredResponse | undefined;
  list(): Iterable<StoredResponse>;
  /**
   * Buffers made outside the V8 heap for this store's entries are now garbage (a shared tier's
   * encoded copy of an entry it wrote): counted like bytes that left the store, towards the
   * reclaimer's next collection.
   */
  discarded(bytes: number): void;
}

const SEP = '\u0001';
const NO_FIELDS: readonly never[] = Object.freeze([]);
const EMPTY_BODY = new Uint8Array(0);

/**
 * A flat copy of a string. Keys are built by concatenation (cons strings, which V8 keeps as trees
 * and, once hashed, as the tree plus a flat copy); the store keeps one flat string instead.
 */
function flat(s: string): string {
  return s.length === 0 ? '' : (JSON.parse(JSON.stringify(s)) as string);
}

/**
 * Bytes a stored body may leave unused in the buffer it is a view of: an eighth of the body, at
 * least this many. An origin's answer usually arrives in one socket read, head and body together,
 * so the body is a view a few hundred bytes short of its buffer: keeping that view (and counting
 * the whole buffer, as `entrySizeBytes` does) spends those bytes instead of a copy of the body and
 * the garbage the read buffer would become, which is what makes a store that turns over quickly
 * collect more often.
 */
const MIN_SPARE_BYTES = 512;

/** The body in a buffer that wastes little: its own when it is a view into a much larger buffer. */
function ownBody(body: Uint8Array): Uint8Array {
  if (body.byteLength === 0) return EMPTY_BODY;
  if (body.buffer.byteLength - body.byteLength <= Math.max(MIN_SPARE_BYTES, body.byteLength >>> 3))
    return body;
  const own = Buffer.allocUnsafeSlow(body.byteLength);
  own.set(body);
  return own;
}

/** The entry as the store keeps it (same data, less memory; see the file comment). */
export function compactEntry(e: StoredResponse): StoredResponse {
  return {
    ...e,
    key: flat(e.key),
    variantKey: flat(e.variantKey),
    vary: e.vary.length === 0 ? NO_FIELDS : e.vary,
    varyValues: e.varyValues.length === 0 ? NO_FIELDS : e.varyValues,
    body: ownBody(e.body),
  };
}

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
  /**
   * primary key → its non-empty variant key, or a Set of them when it has several; a key whose only
   * variant varies on nothing (variant key '') is not here.
   */
  const index = new Map<string, string | Set<string>>();
  const variantsOf = (key: string): readonly string[] => {
    const v = index.get(key);
    const others = v === undefined ? [] : typeof v === 'string' ? [v] : [...v];
    return lru.has(key) ? ['', ...others] : others;
  };
  const addVariant = (key: string, variantKey: string): void => {
    if (variantKey === '') return;
    const v = index.get(key);
    if (v === undefined) index.set(key, variantKey);
    else if (typeof v === 'string') {
      if (v !== variantKey) index.set(key, new Set([v, variantKey]));
    } else v.add(variantKey);
  };
  const dropVariant = (key: string, variantKey: string): void => {
    if (variantKey === '') return;
    const v = index.get(key);
    if (v === undefined) return;
    if (typeof v === 'string') {
      if (v === variantKey) index.delete(key);
      return;
    }
    v.delete(variantKey);
    if (v.size === 1) index.set(key, v.values().next().value as string);
    else if (v.size === 0) index.delete(key);
  };
  let evictions = 0;
  const reclaimer =
    opts.reclaim === false
      ? null
      : createReclaimer({ thresholdBytes: reclaimThresholdBytes(opts.maxSizeBytes) });
  const pendingReason = new Map<string, RemovalReason>();

  const lru = new LRUCache<string, StoredResponse>({
    maxSize: opts.maxSizeBytes,
    sizeCalculation: (e) => Math.max(1, entrySizeBytes(e)),
    dispose: (e, itemKey, why) => {
      if (why !== 'set') dropVariant(e.key, e.variantKey);
      const reason: RemovalReason =
        pendingReason.get(itemKey) ?? (why === 'evict' ? 'evict' : why === 'set' ? 'replace' : 'delete');
      pendingReason.delete(itemKey);
      if (reason === 'evict') evictions++;
      const bytes = entrySizeBytes(e);
      reclaimer?.released(bytes);
      opts.onRemove?.({ key: e.key, bytes, reason });
    },
  });

  // A key never contains SEP (a control character, invalid in URLs and field values), so the one
  // variant of a key that varies on nothing can use the primary key itself (one string, not two).
  const itemKey = (key: string, variantKey: string): string =>
    variantKey === '' ? key : `${key}${SEP}${variantKey}`;

  function removeVariant(key: string, variantKey: string, reason: RemovalReason): boolean {
    const k = itemKey(key, variantKey);
    pendingReason.set(k, reason);
    const had = lru.delete(k);
    pendingReason.delete(k);
    return had;
  }

  function deleteKey(key: string): number {
    const variants = variantsOf(key);
    let n = 0;
    for (const v of variants) if (removeVariant(key, v, 'delete')) n++;
    index.delete(key);
    return n;
  }

  return {
    discarded(bytes) {
      reclaimer?.released(bytes);
    },
    peekOnly(key) {
      const variant = index.get(key);
      let e: StoredResponse | undefined;
      if (variant === undefined) e = lru.get(key);
      else if (typeof variant === 'string' && !lru.has(key)) e = lru.get(itemKey(key, variant));
      return e !== undefined && e.deleteAt > now() ? e : undefined;
    },
    *list() {
      const t = now();
      for (const e of lru.values()) if (e.deleteAt > t) yield e;
    },
    async get(key) {
      const t = now();
      if (!index.has(key)) {
        // The usual case: one variant, which varies on nothing.
        const e = lru.get(key);
        if (e === undefined) return [];
        if (e.deleteAt > t) return [e];
        removeVariant(key, '', 'expire');
        return [];
      }
      const out: StoredResponse[] = [];
      for (const v of variantsOf(key)) {
        const e = lru.get(itemKey(key, v));
        if (e === undefined) continue;
        if (e.deleteAt <= t) removeVariant(key, v, 'expire');
        else out.push(e);
      }
      return out;
    },
    async put(given) {
      if (given.body.byteLength > opts.maxEntryBytes) return false;
      const entry = compactEntry(given);
      if (entrySizeBytes(entry) > opts.maxSizeBytes) return false;
      const k = itemKey(entry.key, entry.variantKey);
      lru.set(k, entry);
      if (!lru.has(k)) return false;
      addVariant(entry.key, entry.variantKey);
      return true;
    },
    async delete(key) {
      return deleteKey(key);
    },
    async deletePrefix(prefix) {
      let n = 0;
      const keys = new Set<string>();
      for (const k of lru.keys()) {
        const sep = k.indexOf(SEP);
        const key = sep < 0 ? k : k.slice(0, sep);
        if (key.startsWith(prefix)) keys.add(key);
      }
      for (const key of keys) n += deleteKey(key);
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
