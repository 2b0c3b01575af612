/**
 * The hit memo: the cache stage's lookup for a plain fresh hit, remembered by the target URL, so
 * that the same request again is answered without looking it up all over (Varnish keeps its hit
 * path short the same way: hash, look up, deliver). A cache hit otherwise pays for working out the
 * cache key, reading the store through its async interface, choosing the variant and judging
 * freshness, each time with the same result. The stage consults it first, after front/ resolved
 * the request and the guard admitted it, like every other request; a recalled hit is answered in
 * the same tick (a Reply, not a promise: pipeline.ts).
 *
 * Filled only by the cache stage, right after it delivered a stored response's second fresh hit
 * (keys hit once never pay for it) to a GET that reads nothing beyond its URL (no conditionals,
 * Range, Cache-Control or Pragma, no body). Every use checks again everything that can differ from
 * that first lookup:
 *   - the route: the same route object (a config reload makes new ones) and front mode;
 *   - the request: the same target URL, no field that would make the lookup decide otherwise
 *     (DISQUALIFYING), and the same values of each field the lookup read (Accept-Encoding, the
 *     response's Vary fields, the route's key fields) and the same credentials (compared by their
 *     keyed hash, the one in the cache key);
 *   - the store: the remembered response is still the only one stored under its key (a purge, an
 *     invalidation, an eviction, a replacement or a new variant all show here);
 *   - the clock: it is still fresh.
 * When any check fails the request takes the whole stage, which may remember it again.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Route } from '../config/runtime.js';
import type { Exchange, FrontMode } from '../exchange.js';
import { FORWARDING_HEADERS } from '../forwarded.js';
import { joinField } from './cache-control.js';
import { countBoundedLru } from './count-lru.js';
import type { KeyPolicy } from './key.js';
import type { StoredResponse } from './store.js';

/**
 * Request fields whose presence changes the cache's decision or reply beyond the URL: request
 * directives, conditionals and Range, a body, and forwarding headers (kept from a trusted client,
 * they are part of the cache key; from any other, front/ removes them).
 */
const DISQUALIFYING: ReadonlySet<string> = new Set([
  ...FORWARDING_HEADERS,
  'cache-control',
  'pragma',
  'range',
  'if-range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'content-length',
  'transfer-encoding',
  'expect',
]);

/** A remembered lookup. */
export interface MemoDecision {
  readonly mode: FrontMode;
  readonly route: Route | null;
  /** The cache key and the response stored under it that answered. */
  readonly storeKey: string;
  /** Weakly: the memo must not keep alive a response the store let go (its byte bound). */
  readonly entry: WeakRef<StoredResponse>;
  /** Epoch ms until which `entry` is fresh. */
  readonly freshUntil: number;
  /** Request fields the decision read, and their values then (joined; undefined: absent). */
  readonly fields: readonly string[];
  readonly values: readonly (string | undefined)[];
  /** The credential hash in the cache key (null: the request carried none). */
  readonly credential: string | null;
  readonly keyPolicy: KeyPolicy;
  /** What the cache stage needs to serve it again (its own context), opaque here. */
  readonly serving: unknown;
}

export interface HitMemoOptions {
  /** Most target URLs remembered; the oldest is dropped first. */
  readonly maxEntries: number;
  readonly peek: (storeKey: string) => StoredResponse | undefined;
  /** The credential hash of a request, as the cache key has it. */
  readonly credentialHash: (headers: IncomingHttpHeaders, policy: KeyPolicy) => string | null;
  readonly now: () => number;
}

export interface HitMemo {
  /** The memo key of an exchange the memo could answer (a bodiless GET that reads nothing beyond its URL), or null. */
  keyOf(ex: Exchange): string | null;
  /** The decision remembered for `memoKey`, when every check still passes for `ex`; null otherwise. */
  recall(memoKey: string, ex: Exchange): MemoDecision | null;
  remember(memoKey: string, decision: MemoDecision): void;
  readonly size: number;
  /** Decisions recalled since start. */
  readonly recalls: number;
}

export function createHitMemo(opts: HitMemoOptions): HitMemo {
  // lru-cache, not a Map in insertion order: evicting a Map's oldest key with keys().next() walks
  // over every deleted slot before it, which made each remembered hit cost ~20 µs once the memo
  // was full and churning (the entries sweep at 100k keys).
  const decisions = countBoundedLru<string, MemoDecision>(opts.maxEntries);
  let recalls = 0;

  const sameValues = (d: MemoDecision, headers: IncomingHttpHeaders): boolean => {
    for (let i = 0; i < d.fields.length; i++) {
      const v = headers[d.fields[i] as string];
      if ((v === undefined ? undefined : joinField(v)) !== d.values[i]) return false;
    }
    return true;
  };

  return {
    keyOf(ex) {
      if (ex.method !== 'GET' || ex.body !== null) return null;
      // Over the request's own fields (a few) rather than looking up each disqualifying name.
      for (const name in ex.headers) if (DISQUALIFYING.has(name)) return null;
      return ex.target.href;
    },
    recall(memoKey, ex) {
      const d = decisions.get(memoKey);
      if (d === undefined) return null;
      const entry = d.entry.deref();
      if (entry === undefined || opts.now() >= d.freshUntil || opts.peek(d.storeKey) !== entry) {
        decisions.delete(memoKey);
        return null;
      }
      // Another route to the same URL (or one from before a config reload), or another mode.
      if (d.route !== ex.route || d.mode !== ex.mode || !sameValues(d, ex.headers)) return null;
      if (opts.credentialHash(ex.headers, d.keyPolicy) !== d.credential) return null;
      recalls++;
      return d;
    },
    remember(memoKey, decision) {
      decisions.set(memoKey, decision);
    },
    get size() {
      return decisions.size;
    },
    get recalls() {
      return recalls;
    },
  };
}
