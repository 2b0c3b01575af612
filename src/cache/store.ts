/**
 * The cache store interface: small, async and serialisable, so that a shared tier (e.g. Redis)
 * can implement it later. A stored response is plain data plus a body of bytes; a store never
 * sees a partial body, because the stage only calls `put` once the whole body has arrived.
 */
import type { StoredHeaders } from './headers.js';

export type { EvictionInfo, RemovalReason } from '../observers.js';

/** One stored response: one variant under a primary key. Structured-clone serialisable. */
export interface StoredResponse {
  /** Primary key (key.ts). */
  readonly key: string;
  /** Secondary key from the response's Vary (key.ts `variantKey`); '' when it varies on nothing. */
  readonly variantKey: string;
  /** Lower-case request field names from Vary. */
  readonly vary: readonly string[];
  /** Normalised request values for `vary` when the response was stored (null: field absent). */
  readonly varyValues: readonly (string | null)[];
  readonly status: number;
  readonly statusText: string;
  readonly headers: StoredHeaders;
  readonly body: Uint8Array;
  /** Epoch ms when the request that fetched (or last validated) this response was sent. */
  readonly requestTime: number;
  /** Epoch ms when that response's headers arrived. */
  readonly responseTime: number;
  /** How long the origin took to deliver the full response, ms (for saved-time accounting). */
  readonly fetchMs: number;
  /** Epoch ms after which the store may drop the entry (retention past freshness included). */
  readonly deleteAt: number;
}

export interface StoreStats {
  readonly entries: number;
  readonly bytes: number;
}

export interface CacheStore {
  /** Every live variant stored under a primary key (empty when none). */
  get(key: string): Promise<readonly StoredResponse[]>;
  /**
   * Stores (or replaces the variant with the same `variantKey` of) a complete response.
   * Resolves false when the store refuses it (e.g. larger than its per-object limit).
   */
  put(entry: StoredResponse): Promise<boolean>;
  /** Deletes every variant under a primary key; resolves how many were deleted. */
  delete(key: string): Promise<number>;
  /** Deletes every variant of every primary key starting with `prefix`; resolves how many. */
  deletePrefix(prefix: string): Promise<number>;
  stats(): Promise<StoreStats>;
  /**
   * Optional, synchronous: the response stored under `key` in this process's memory when it is
   * the only variant there (MemoryStore.peekOnly). Only stores that have it feed the hit memo.
   */
  peekOnly?(key: string): StoredResponse | undefined;
  /**
   * Optional: the live responses this process holds in memory, without using them (recency is
   * unchanged). For listing what is cached (admin `GET /cache`); a shared tier is not listed.
   */
  list?(): Iterable<StoredResponse>;
  /**
   * Optional: coordinates fills across the processes that share this store (a shared tier).
   * The stage uses it only when present; see `FillCoordinator`.
   */
  readonly fill?: FillCoordinator;
}

/**
 * Cross-process coalescing of misses. The stage's in-process leader for a key claims its fill
 * before fetching; when another process holds the claim, it waits for that fill to end and reads
 * the store instead of fetching. Never rejects: a store that cannot answer makes the caller leader.
 */
export interface FillCoordinator {
  claim(key: string): Promise<FillClaim>;
}

export type FillClaim =
  | {
      readonly role: 'leader';
      /** Ends the claim (idempotent); call it once the response is stored, or not. */
      release(): void;
    }
  | {
      readonly role: 'follower';
      /**
       * Resolves when the other process's claim ends (`released`) or after `timeoutMs`
       * (`timeout`); rejects with ClientAbortedError when `signal` aborts.
       */
      wait(timeoutMs: number, signal: AbortSignal): Promise<'released' | 'timeout'>;
    };

/**
 * What one stored entry costs beyond its text and body, measured with bench/scenarios/entry-memory.ts
 * (Node 20, x64; heap snapshot diff per entry): the StoredResponse object (~130 B), its four
 * numbers boxed as heap numbers (64 B), its headers object (~60 B), its slots in the memory
 * store's LRU (a hash-table entry and five array slots, with their growth slack; a key that varies
 * also an index entry), and, once it has been hit, what the cache stage derives for hits (~230 B,
 * held weakly by it).
 */
export const ENTRY_OVERHEAD_BYTES = 500;
/** Per stored header field: the value's string header and the property slot (names are shared). */
export const HEADER_OVERHEAD_BYTES = 32;
/** Per string the store keeps (V8's string header, rounding). */
export const STRING_OVERHEAD_BYTES = 16;
/**
 * A non-empty body's own buffer: the Buffer object (96 B), its ArrayBuffer object (88 B) and,
 * outside the JS heap, its backing-store record and allocation header.
 */
export const BODY_OVERHEAD_BYTES = 240;

/**
 * The memory a stored response takes in the process, as the memory store keeps it (compacted:
 * memory-store.ts): fixed overhead, key text, header text, body. An estimate that bounds real
 * memory: for 32-byte bodies, 0.8x (stored) to 1.0x (stored and hit) of the V8 heap plus external
 * memory an entry adds (docs/BENCHMARKS.md, "Memory per entry"); RSS adds V8's heap slack on top.
 * Text counts one byte per character (URLs and field values are Latin-1 in practice). The body
 * counts its backing store (`body.buffer.byteLength`), what it keeps alive, not only its own bytes:
 * a view into a larger buffer counts that whole buffer (the memory store copies such a body first).
 */
export function entrySizeBytes(e: StoredResponse): number {
  let n = ENTRY_OVERHEAD_BYTES + e.key.length + STRING_OVERHEAD_BYTES;
  // A key that varies: its variant key (twice: in the LRU key and the index) and an index Set.
  if (e.variantKey.length > 0) n += 2 * (e.variantKey.length + STRING_OVERHEAD_BYTES) + 160;
  for (const v of e.varyValues) n += v === null ? 0 : v.length + STRING_OVERHEAD_BYTES;
  // for…in, not Object.entries: this runs three times per stored entry (put, size, dispose), and
  // the pairs Object.entries builds were a large share of the store path's garbage.
  const headers = e.headers;
  for (const name in headers) {
    const value = headers[name] as string | readonly string[];
    n += name.length;
    if (typeof value === 'string') n += HEADER_OVERHEAD_BYTES + value.length;
    else for (const v of value) n += HEADER_OVERHEAD_BYTES + v.length;
  }
  if (e.body.byteLength > 0) n += BODY_OVERHEAD_BYTES + e.body.buffer.byteLength;
  return n;
}
