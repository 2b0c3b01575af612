/**
 * The shared tier on memcached (one or more servers, keys spread by consistent hashing), with
 * cross-process fill claims (`fill`) taken by `add`. An alternative to redis-store.ts with the
 * same entry encoding (entry-codec.ts) and the same observer.
 *
 * Layout under `keyPrefix` (default `sidecache:`); memcached keys are at most 250 bytes without
 * spaces, so a primary key is stored under its SHA-256:
 *   <p>k:<sha256>   every variant of the primary key: u32 length + entry-codec bytes, repeated;
 *                   expiry = the latest deleteAt of its variants (relative seconds up to 30 days,
 *                   an absolute unix time beyond, as memcached requires)
 *   <p>l:<sha256>   fill lock: `add` with a TTL of lockTtlMs (rounded up to whole seconds)
 *
 * memcached has no pub/sub and cannot list keys: there are no remote invalidations, and
 * `deletePrefix` reaches only the keys this process wrote (remembered, bounded). The tiered store
 * keeps L1 copies short-lived instead (`l1TtlMs`).
 *
 * Every method may reject (server down, command timeout): the tiered store turns that into a miss.
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Client } from 'memjs';
import { ClientAbortedError } from '../errors.js';
import type { SharedTierObserver } from '../observers.js';
import { decodeEntry, encodeEntry } from './entry-codec.js';
import type { CacheStore, FillClaim, FillCoordinator, StoredResponse, StoreStats } from './store.js';

export interface MemcachedStoreOptions {
  /** `host:port` of every server; keys are spread by consistent hashing. */
  readonly servers: readonly string[];
  readonly keyPrefix: string;
  /** Largest value written (all variants of a key, encoded); larger puts resolve false. */
  readonly maxEntryBytes: number;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly lockTtlMs: number;
  /** How often a fill waiter checks the lock. Default 50 ms. */
  readonly lockPollMs?: number;
  /**
   * Most memory spent remembering the primary keys this process wrote (for `deletePrefix` and
   * `stats`), counted as each key's length plus TRACKED_KEY_OVERHEAD. Default MAX_TRACKED_BYTES;
   * beside an L1, `trackedBytesFor` its cache budget.
   */
  readonly maxTrackedBytes?: number;
  readonly now?: () => number;
  readonly observer?: SharedTierObserver;
}

export interface MemcachedStore extends CacheStore {
  readonly fill: FillCoordinator;
  /** False after a command failed for a connection reason, until one succeeds. */
  readonly connected: boolean;
  close(): Promise<void>;
}

/** memcached reads a relative expiry above 30 days as an absolute unix time. */
export const RELATIVE_TTL_LIMIT_S = 30 * 24 * 3600;
/** Longest life given to an item (an entry with no end is kept a year at most). */
const MAX_TTL_S = 365 * 24 * 3600;
/**
 * Heap bytes a remembered key costs beside its text (measured on a heap snapshot: its Map slot,
 * the record and its boxed deleteAt, about 130 B). 100,000 remembered keys used to hold ~20 MiB.
 */
export const TRACKED_KEY_OVERHEAD = 160;
/** Most memory the remembered keys take (about 10,000 keys). */
export const MAX_TRACKED_BYTES = 2 * 1024 * 1024;

/**
 * The remembered keys' share of a cache budget of `maxSizeBytes` (shared-tier.ts takes it out of
 * L1's, so L1 and the keys together stay within the budget): a sixteenth, at most MAX_TRACKED_BYTES.
 */
export function trackedBytesFor(maxSizeBytes: number): number {
  return Math.min(MAX_TRACKED_BYTES, Math.floor(maxSizeBytes / 16));
}

/**
 * The `expires` argument for a TTL of `ttlMs`: whole seconds (rounded up) while they fit the
 * 30-day relative window, otherwise the absolute unix time on the wall clock (memcached compares
 * with its own clock, never with an injected one).
 */
export function memcachedExpiry(ttlMs: number, wallNowMs: number = Date.now()): number {
  const s = Math.min(Math.max(1, Math.ceil(ttlMs / 1000)), MAX_TTL_S);
  if (s <= RELATIVE_TTL_LIMIT_S) return s;
  return Math.floor(wallNowMs / 1000) + s;
}

/** A consistent-hash ring: each server owns `points` positions; a key goes to the next one. */
export function createHashRing(servers: readonly string[], points = 160): (key: string) => number {
  const ring: { at: number; index: number }[] = [];
  servers.forEach((server, index) => {
    for (let i = 0; i < points; i++) {
      ring.push({ at: createHash('md5').update(`${server}-${i}`).digest().readUInt32BE(0), index });
    }
  });
  ring.sort((a, b) => a.at - b.at);
  return (key) => {
    if (ring.length === 0) return 0;
    const h = createHash('md5').update(key).digest().readUInt32BE(0);
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ring[mid] as { at: number }).at < h) lo = mid + 1;
      else hi = mid;
    }
    return (ring[lo === ring.length ? 0 : lo] as { index: number }).index;
  };
}

/** Variants of one primary key as one memcached value: [u32 length, entry bytes]*. */
export function packVariants(encoded: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of encoded) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(e.byteLength, 0);
    parts.push(len, e);
  }
  return Buffer.concat(parts);
}

export function unpackVariants(value: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let at = 0;
  while (at < value.byteLength) {
    if (at + 4 > value.byteLength) return null;
    const len = value.readUInt32BE(at);
    at += 4;
    if (at + len > value.byteLength) return null;
    out.push(value.subarray(at, at + len));
    at += len;
  }
  return out;
}

class TimeoutError extends Error {}

export function createMemcachedStore(opts: MemcachedStoreOptions): MemcachedStore {
  const now = opts.now ?? Date.now;
  const observer = opts.observer ?? {};
  const instance = randomBytes(6).toString('hex');
  const p = opts.keyPrefix;
  const hashed = (key: string): string => createHash('sha256').update(key).digest('hex');
  const entryKey = (key: string): string => `${p}k:${hashed(key)}`;
  const lockKey = (key: string): string => `${p}l:${hashed(key)}`;
  const pollMs = opts.lockPollMs ?? 50;
  const maxTrackedBytes = opts.maxTrackedBytes ?? MAX_TRACKED_BYTES;

  const client = Client.create(opts.servers.join(','), {
    retries: 0,
    failover: false,
    timeout: opts.commandTimeoutMs / 1000,
    conntimeout: opts.connectTimeoutMs / 1000,
    keepAlive: true,
    // Errors reach us as rejections; the shared tier logs them, throttled.
    logger: { log() {} },
  });
  const ring = createHashRing(opts.servers);
  client.getServer = ((key: string) => ring(key)) as unknown as Client['getServer'];

  let connected = true;
  let closed = false;
  /** Primary keys this process wrote, oldest first: what deletePrefix and stats can reach. */
  const written = new Map<string, { n: number; bytes: number; deleteAt: number }>();
  /** What `written` is counted to hold (key length + TRACKED_KEY_OVERHEAD each). */
  let trackedBytes = 0;
  const trackCost = (key: string): number => key.length + TRACKED_KEY_OVERHEAD;
  function forget(key: string): { n: number; bytes: number; deleteAt: number } | undefined {
    const known = written.get(key);
    if (known !== undefined) {
      written.delete(key);
      trackedBytes -= trackCost(key);
    }
    return known;
  }

  /** A command with our own deadline on top of the client's, marking the connection state. */
  async function command<T>(run: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const out = await Promise.race([
        run(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new TimeoutError(`memcached command timed out after ${opts.commandTimeoutMs} ms`)),
            opts.commandTimeoutMs,
          );
        }),
      ]);
      connected = true;
      return out;
    } catch (err) {
      connected = false;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async function timed<T>(op: 'get' | 'put' | 'delete', run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const out = await command(run);
      observer.onCommand?.(op, (performance.now() - t0) / 1000);
      return out;
    } catch (err) {
      observer.onError?.(op, err);
      if (op === 'get') observer.onLookup?.('error', (performance.now() - t0) / 1000);
      throw err;
    }
  }

  /** Every decodable variant stored under `key` (expired ones included), or [] when none. */
  async function readVariants(key: string): Promise<StoredResponse[]> {
    const { value } = await timed('get', () => client.get(entryKey(key)));
    if (value === null) return [];
    const parts = unpackVariants(value);
    const out: StoredResponse[] = [];
    let bad = parts === null;
    for (const buf of parts ?? []) {
      const r = decodeEntry(buf);
      if (!r.ok || r.entry.key !== key) {
        bad = true;
        continue;
      }
      out.push(r.entry);
    }
    if (bad) {
      observer.onError?.('decode', new Error('undecodable cache entry'));
      command(() => client.delete(entryKey(key))).catch((err: unknown) => observer.onError?.('delete', err));
    }
    return out;
  }

  function remember(key: string, n: number, bytes: number, deleteAt: number): void {
    forget(key);
    written.set(key, { n, bytes, deleteAt });
    trackedBytes += trackCost(key);
    while (trackedBytes > maxTrackedBytes) {
      const oldest = written.keys().next();
      if (oldest.done) break;
      forget(oldest.value);
    }
  }

  async function remove(key: string): Promise<number> {
    const known = forget(key);
    let n = known?.n ?? 0;
    if (known === undefined) n = (await readVariants(key).catch(() => [])).length;
    const deleted = await timed('delete', () => client.delete(entryKey(key)));
    return deleted ? Math.max(n, 1) : 0;
  }

  function waitForFill(key: string, timeoutMs: number, signal: AbortSignal): Promise<'released' | 'timeout'> {
    if (signal.aborted) return Promise.reject(new ClientAbortedError('client went away while coalesced'));
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let done = false;
      let polling = false;
      const finish = (result: 'released' | 'timeout' | 'error'): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poller);
        signal.removeEventListener('abort', onAbort);
        observer.onLockWait?.(result, (performance.now() - t0) / 1000);
        resolve(result === 'released' ? 'released' : 'timeout');
      };
      const onAbort = (): void => {
        finish('error');
        reject(new ClientAbortedError('client went away while coalesced'));
      };
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      // No pub/sub: the lock is polled until the leader deletes it or it expires.
      const poller = setInterval(() => {
        if (polling) return;
        if (closed) return finish('released');
        polling = true;
        command(() => client.get(lockKey(key)))
          .then(({ value }) => {
            if (value === null) finish('released');
          })
          .catch((err: unknown) => {
            observer.onError?.('lock', err);
            finish('error');
          })
          .finally(() => {
            polling = false;
          });
      }, pollMs);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  const fill: FillCoordinator = {
    async claim(key): Promise<FillClaim> {
      const token = `${instance}:${randomBytes(6).toString('hex')}`;
      let got: boolean;
      try {
        got = await command(() =>
          client.add(lockKey(key), token, { expires: memcachedExpiry(opts.lockTtlMs) }),
        );
      } catch (err) {
        observer.onError?.('lock', err);
        return { role: 'leader', release() {} };
      }
      if (got) {
        let released = false;
        return {
          role: 'leader',
          release() {
            if (released) return;
            released = true;
            // Not atomic (memcached has no compare-and-delete): a lock that expired and was taken
            // by another process in between would be deleted early; that only costs one more fetch.
            command(() => client.get(lockKey(key)))
              .then(({ value }) =>
                value !== null && value.toString() === token
                  ? command(() => client.delete(lockKey(key)))
                  : false,
              )
              .catch((err: unknown) => observer.onError?.('lock', err));
          },
        };
      }
      return { role: 'follower', wait: (timeoutMs, signal) => waitForFill(key, timeoutMs, signal) };
    },
  };

  return {
    fill,
    async get(key) {
      const t0 = performance.now();
      const all = await readVariants(key);
      const t = now();
      const out = all.filter((e) => e.deleteAt > t);
      observer.onLookup?.(out.length > 0 ? 'hit' : 'miss', (performance.now() - t0) / 1000);
      return out;
    },
    async put(entry) {
      if (entry.body.byteLength > opts.maxEntryBytes) return false;
      const t = now();
      if (!(entry.deleteAt - t > 0)) return false;
      const mine = encodeEntry(entry);
      if (mine.byteLength + 4 > opts.maxEntryBytes) return false;
      // Read-modify-write of the key's variants: a concurrent put of another variant may be lost
      // (it is then fetched again), never corrupted.
      const others = (await readVariants(entry.key)).filter(
        (e) => e.variantKey !== entry.variantKey && e.deleteAt > t,
      );
      let kept = others;
      let value = packVariants([...kept.map((e) => encodeEntry(e)), mine]);
      if (value.byteLength > opts.maxEntryBytes) {
        kept = [];
        value = packVariants([mine]);
      }
      const deleteAt = Math.max(entry.deleteAt, ...kept.map((e) => e.deleteAt));
      const ok = await timed('put', () =>
        client.set(entryKey(entry.key), value, { expires: memcachedExpiry(deleteAt - t) }),
      );
      if (ok) remember(entry.key, kept.length + 1, value.byteLength, deleteAt);
      return ok;
    },
    delete: (key) => remove(key),
    async deletePrefix(prefix) {
      let n = 0;
      for (const key of [...written.keys()]) {
        if (key.startsWith(prefix)) n += await remove(key);
      }
      return n;
    },
    async stats(): Promise<StoreStats> {
      // What this process wrote and has not expired: memcached cannot list keys.
      const t = now();
      let entries = 0;
      let bytes = 0;
      for (const [key, w] of written) {
        if (w.deleteAt <= t) {
          forget(key);
          continue;
        }
        entries += w.n;
        bytes += w.bytes;
      }
      return { entries, bytes };
    },
    get connected() {
      return connected;
    },
    async close() {
      closed = true;
      client.close();
    },
  };
}
