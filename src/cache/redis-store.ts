/**
 * The shared tier: a CacheStore on Redis (standalone or Cluster, `redis://` or `rediss://`), with
 * cross-process fill claims (`fill`) and invalidations broadcast to every process over pub/sub.
 *
 * Layout under `keyPrefix` (default `sidecache:`):
 *   <p>k:<primary key>   hash: variantKey → entry-codec bytes; PEXPIRE = the latest deleteAt of its
 *                        variants (freshness plus stale retention), so Redis drops what we would
 *   <p>l:<primary key>   fill lock: SET NX PX lockTtlMs, value = a token of the claimer
 *   <p>invalidate        pub/sub channel: {"i":instance,"t":"key"|"prefix"|"filled","k":key}
 *
 * Every method may reject (connection down, command timeout): the tiered store in front of this
 * one turns that into a miss. A value that does not decode is a miss too (and is deleted).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ClientAbortedError } from '../errors.js';
import type { SharedTierObserver, SharedTierOp } from '../observers.js';
import { decodeEntry, encodeEntryParts } from './entry-codec.js';
import type { CacheStore, FillClaim, FillCoordinator, StoredResponse, StoreStats } from './store.js';

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  readonly url: string;
  readonly cluster?: boolean;
  readonly keyPrefix: string;
  /** Largest body written; larger entries are refused (`put` resolves false). */
  readonly maxEntryBytes: number;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly lockTtlMs: number;
  /** How often a fill waiter checks the lock besides listening on pub/sub. Default 50 ms. */
  readonly lockPollMs?: number;
  readonly now?: () => number;
  readonly observer?: SharedTierObserver;
}

export type RemoteInvalidation = (kind: 'key' | 'prefix', key: string) => void;

export interface RedisStore extends CacheStore {
  readonly fill: FillCoordinator;
  /**
   * Listens to deletions and replacements made by other processes; after the invalidation
   * channel was lost and regained, it is called once with `('prefix', '')` (anything may be stale).
   */
  onRemoteInvalidation(listener: RemoteInvalidation): void;
  /** True while commands can be sent. */
  readonly connected: boolean;
  close(): Promise<void>;
}

/** Longest TTL given to a Redis key (an entry with no end is kept a year at most). */
const MAX_TTL_MS = 365 * 24 * 3600_000;

// ARGV[2] and ARGV[4] are the two parts of the entry's encoding (entry-codec.ts), joined here so
// that this process sends the body as it stores it and copies it once (into the command).
const PUT_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ARGV[4])
local ttl = tonumber(ARGV[3])
local cur = redis.call('PTTL', KEYS[1])
if cur < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`;
const DELETE_SCRIPT = `
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n`;
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const HASH_STATS_SCRIPT = `
local n = 0
local bytes = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  n = n + 1
  bytes = bytes + redis.call('HSTRLEN', KEYS[1], f) + #f
end
return {n, bytes + #KEYS[1]}`;

interface Scripts {
  scPut(key: string, field: string, head: Buffer, ttlMs: number, body: Buffer): Promise<unknown>;
  scDelete(key: string): Promise<number>;
  scRelease(key: string, token: string): Promise<number>;
  scHashStats(key: string): Promise<[number, number]>;
}
type Client = (Redis | Cluster) & Scripts;

/** The URL with its user and password replaced by `***`: the only form that may be logged. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username !== '') u.username = '***';
    if (u.password !== '') u.password = '***';
    return u.href;
  } catch {
    return 'redis://(unparseable URL)';
  }
}

/** Escapes Redis glob characters so a key prefix matches literally in SCAN MATCH. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

function connect(opts: RedisStoreOptions, forSubscribe: boolean): Client {
  const u = new URL(opts.url);
  const common: RedisOptions = {
    connectTimeout: opts.connectTimeoutMs,
    // Commands fail at once while disconnected (no queue), and in-flight ones are not replayed:
    // a request never waits for Redis longer than commandTimeoutMs.
    enableOfflineQueue: forSubscribe,
    maxRetriesPerRequest: forSubscribe ? null : 0,
    retryStrategy: (times) => Math.min(50 * times, 2_000),
    ...(forSubscribe ? {} : { commandTimeout: opts.commandTimeoutMs }),
  };
  let client: Redis | Cluster;
  if (opts.cluster) {
    const redisOptions: RedisOptions = {
      ...common,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.protocol === 'rediss:' ? { tls: { servername: u.hostname } } : {}),
    };
    client = new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
      redisOptions,
      enableOfflineQueue: forSubscribe,
      clusterRetryStrategy: (times) => Math.min(50 * times, 2_000),
    });
  } else {
    client = new Redis(opts.url, common);
  }
  client.defineCommand('scPut', { numberOfKeys: 1, lua: PUT_SCRIPT });
  client.defineCommand('scDelete', { numberOfKeys: 1, lua: DELETE_SCRIPT });
  client.defineCommand('scRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  client.defineCommand('scHashStats', { numberOfKeys: 1, lua: HASH_STATS_SCRIPT });
  return client as Client;
}

interface Notice {
  readonly i: string;
  readonly t: 'key' | 'prefix' | 'filled';
  readonly k: string;
}

function parseNotice(text: string): Notice | null {
  try {
    const n = JSON.parse(text) as Partial<Notice>;
    if (typeof n.i !== 'string' || typeof n.k !== 'string') return null;
    if (n.t !== 'key' && n.t !== 'prefix' && n.t !== 'filled') return null;
    return n as Notice;
  } catch {
    return null;
  }
}

export function createRedisStore(opts: RedisStoreOptions): RedisStore {
  const now = opts.now ?? Date.now;
  const observer = opts.observer ?? {};
  const instance = randomBytes(6).toString('hex');
  const p = opts.keyPrefix;
  const entryKey = (key: string): string => `${p}k:${key}`;
  const lockKey = (key: string): string => `${p}l:${key}`;
  const channel = `${p}invalidate`;
  const pollMs = opts.lockPollMs ?? 50;

  const client = connect(opts, false);
  const sub = connect(opts, true);
  const report = (op: SharedTierOp) => (err: unknown) => observer.onError?.(op, err);
  client.on('error', report('connection'));
  sub.on('error', report('connection'));

  const listeners: RemoteInvalidation[] = [];
  /** Fill waiters by primary key: woken by a `filled` or `key` notice for that key. */
  const waiters = new Map<string, Set<() => void>>();
  let subscribedOnce = false;

  sub.on('ready', () => {
    // Notices sent while we were away are lost: after a reconnection, anything may be stale.
    if (subscribedOnce) for (const l of listeners) l('prefix', '');
    subscribedOnce = true;
  });
  sub.subscribe(channel).catch(report('connection'));
  // Our own notices come back too (two per stored miss): with no fill waiter here to wake they
  // mean nothing to us, and are dropped before JSON.parse. publish() writes `i` first.
  const ownNotice = `{"i":${JSON.stringify(instance)},`;
  sub.on('message', (ch: string, text: string) => {
    if (ch !== channel) return;
    if (waiters.size === 0 && text.startsWith(ownNotice)) return;
    const n = parseNotice(text);
    if (n === null) return;
    if (n.t !== 'prefix') for (const wake of waiters.get(n.k) ?? []) wake();
    if (n.i === instance || n.t === 'filled') return;
    for (const l of listeners) l(n.t, n.k);
  });

  function publish(t: Notice['t'], k: string): void {
    const notice: Notice = { i: instance, t, k };
    client.publish(channel, JSON.stringify(notice)).catch(report('publish'));
  }

  async function timed<T>(op: 'get' | 'put' | 'delete', run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const out = await run();
      observer.onCommand?.(op, (performance.now() - t0) / 1000);
      return out;
    } catch (err) {
      observer.onError?.(op, err);
      if (op === 'get') observer.onLookup?.('error', (performance.now() - t0) / 1000);
      throw err;
    }
  }

  /** Every primary key under `prefix`, one SCAN page at a time, on every master. */
  async function* keysUnder(prefix: string): AsyncGenerator<string[]> {
    const match = `${escapeGlob(entryKey(prefix))}*`;
    const nodes = client instanceof Cluster ? client.nodes('master') : [client as Redis];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [nextCursor, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = nextCursor;
        if (keys.length > 0) yield keys;
      } while (cursor !== '0');
    }
  }

  function waitForFill(key: string, timeoutMs: number, signal: AbortSignal): Promise<'released' | 'timeout'> {
    if (signal.aborted) return Promise.reject(new ClientAbortedError('client went away while coalesced'));
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let done = false;
      let polling = false;
      const set = waiters.get(key) ?? new Set<() => void>();
      waiters.set(key, set);
      const finish = (result: 'released' | 'timeout' | 'error'): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poller);
        signal.removeEventListener('abort', onAbort);
        set.delete(wake);
        if (set.size === 0 && waiters.get(key) === set) waiters.delete(key);
        observer.onLockWait?.(result, (performance.now() - t0) / 1000);
        resolve(result === 'released' ? 'released' : 'timeout');
      };
      const wake = (): void => finish('released');
      const onAbort = (): void => {
        finish('error');
        reject(new ClientAbortedError('client went away while coalesced'));
      };
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      // Pub/sub wakes us at once; polling covers a lost notice or a claimer that died (lock expiry).
      const poller = setInterval(() => {
        if (polling) return;
        polling = true;
        client
          .exists(lockKey(key))
          .then((n) => {
            if (n === 0) finish('released');
          })
          .catch((err: unknown) => {
            observer.onError?.('lock', err);
            finish('error');
          })
          .finally(() => {
            polling = false;
          });
      }, pollMs);
      set.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  const fill: FillCoordinator = {
    async claim(key): Promise<FillClaim> {
      const token = `${instance}:${randomBytes(6).toString('hex')}`;
      let got: string | null;
      try {
        got = await client.set(lockKey(key), token, 'PX', opts.lockTtlMs, 'NX');
      } catch (err) {
        observer.onError?.('lock', err);
        return { role: 'leader', release() {} };
      }
      if (got === 'OK') {
        let released = false;
        return {
          role: 'leader',
          release() {
            if (released) return;
            released = true;
            client
              .scRelease(lockKey(key), token)
              .then(() => publish('filled', key))
              .catch(report('lock'));
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
      const raw = await timed('get', () => client.hgetallBuffer(entryKey(key)));
      const t = now();
      const out: StoredResponse[] = [];
      for (const [field, buf] of Object.entries(raw)) {
        const r = decodeEntry(buf);
        if (!r.ok || r.entry.key !== key) {
          observer.onError?.('decode', new Error(`undecodable cache entry (${r.ok ? 'key' : r.why})`));
          client.hdel(entryKey(key), field).catch(report('delete'));
          continue;
        }
        if (r.entry.deleteAt > t) out.push(r.entry);
      }
      observer.onLookup?.(out.length > 0 ? 'hit' : 'miss', (performance.now() - t0) / 1000);
      return out;
    },
    async put(entry) {
      if (entry.body.byteLength > opts.maxEntryBytes) return false;
      const ttl = Math.min(Math.ceil(entry.deleteAt - now()), MAX_TTL_MS);
      if (!(ttl > 0)) return false;
      const [head, body] = encodeEntryParts(entry);
      await timed('put', () => client.scPut(entryKey(entry.key), entry.variantKey, head, ttl, body));
      publish('key', entry.key);
      return true;
    },
    async delete(key) {
      publish('key', key);
      return timed('delete', () => client.scDelete(entryKey(key)));
    },
    async deletePrefix(prefix) {
      let n = 0;
      // Other processes may hold matching entries in memory only: tell them whatever Redis had.
      publish('prefix', prefix);
      try {
        for await (const keys of keysUnder(prefix)) {
          const counts = await Promise.all(keys.map((k) => client.scDelete(k)));
          for (const c of counts) n += c;
        }
      } catch (err) {
        observer.onError?.('delete', err);
        throw err;
      }
      return n;
    },
    async stats(): Promise<StoreStats> {
      // Walks the keyspace: for tests and status, not for every scrape (the tiered store reports L1).
      let entries = 0;
      let bytes = 0;
      for await (const keys of keysUnder('')) {
        const all = await Promise.all(keys.map((k) => client.scHashStats(k)));
        for (const [n, b] of all) {
          entries += n;
          bytes += b;
        }
      }
      return { entries, bytes };
    },
    onRemoteInvalidation(listener) {
      listeners.push(listener);
    },
    get connected() {
      return client.status === 'ready';
    },
    async close() {
      for (const set of waiters.values()) for (const wake of set) wake();
      client.disconnect();
      sub.disconnect();
    },
  };
}
