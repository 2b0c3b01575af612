/**
 * The hit memo: what the pipeline decided for a plain fresh hit, remembered by the request line, so
 * that the same request again is answered without deciding it all over (Varnish keeps its hit
 * path short the same way: hash, look up, deliver). A cache hit otherwise pays for resolving the
 * target URL, admitting it, working out the cache key, reading the store through its async
 * interface, choosing the variant and judging freshness, each time with the same result.
 *
 * Filled only by the cache stage, right after it delivered a stored response's second fresh hit
 * through the pipeline (keys hit once never pay for it; reverse route, forward
 * proxy or intercepted tunnel) to a request that reads nothing beyond its URL (no conditionals,
 * Range, Cache-Control or Pragma, no Via, no body). The guard's admission is remembered with it:
 * it depends on the runtime and the URL alone once Via and proxy credentials are ruled out (names
 * are judged when connecting, and a hit connects to nothing). Every use checks again everything
 * that can differ from that first decision:
 *   - the runtime: a config reload starts a new memo;
 *   - the request: the same request line (and Host, when routes are chosen by Host; the tunnel's
 *     authority for an intercepted request), no field that would
 *     make the pipeline decide otherwise (DISQUALIFYING), and the same values of each field the
 *     decision read (Accept-Encoding, the response's Vary fields, the route's key fields) and the
 *     same credentials (compared by their keyed hash, the one in the cache key);
 *   - the store: the remembered response is still the only one stored under its key (a purge, an
 *     invalidation, an eviction, a replacement or a new variant all show here);
 *   - the clock: it is still fresh.
 * When any check fails the request takes the whole pipeline, which may remember it again.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { Route, Runtime } from '../config/runtime.js';
import type { Admission, FrontMode } from '../exchange.js';
import { FORWARDING_HEADERS } from '../forwarded.js';
import { joinField } from './cache-control.js';
import type { KeyPolicy } from './key.js';
import type { StoredResponse } from './store.js';

/**
 * Request fields whose presence changes the pipeline's decision or reply beyond the URL: request
 * directives, conditionals and Range (cache), Via (loop detection) and proxy credentials (guard),
 * a body, and forwarding headers (kept from a trusted client, they are part of the cache key;
 * from any other, front/ removes them).
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
  'via',
  'proxy-authorization',
  'content-length',
  'transfer-encoding',
  'expect',
]);

const SEP = '\u0001';

/** A remembered decision. */
export interface MemoDecision {
  readonly runtime: Runtime;
  readonly mode: FrontMode;
  readonly route: Route | null;
  readonly target: URL;
  /** `target.origin`, read once. */
  readonly origin: string;
  readonly admission: Admission;
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
  /** Most request lines remembered; the oldest is dropped first. */
  readonly maxEntries: number;
  readonly peek: (storeKey: string) => StoredResponse | undefined;
  /** The credential hash of a request, as the cache key has it. */
  readonly credentialHash: (headers: IncomingHttpHeaders, policy: KeyPolicy) => string | null;
  readonly now: () => number;
}

export interface HitMemo {
  /**
   * The memo key of a request that could be answered from the memo (a GET on the listener that
   * reads nothing beyond its URL), or null.
   */
  keyOf(
    method: string | undefined,
    url: string,
    headers: IncomingHttpHeaders,
    rt: Runtime,
    /** The CONNECT authority of an intercepted request; undefined for one on the listener. */
    authority?: string,
  ): string | null;
  /** The decision remembered for `memoKey`, when every check still passes; null otherwise. */
  recall(memoKey: string, headers: IncomingHttpHeaders, rt: Runtime): MemoDecision | null;
  remember(memoKey: string, decision: MemoDecision): void;
  readonly size: number;
  /** Decisions recalled since start. */
  readonly recalls: number;
}

export function createHitMemo(opts: HitMemoOptions): HitMemo {
  // lru-cache, not a Map in insertion order: evicting a Map's oldest key with keys().next() walks
  // over every deleted slot before it, which made each remembered hit cost ~20 µs once the memo
  // was full and churning (the entries sweep at 100k keys).
  const decisions = new LRUCache<string, MemoDecision>({ max: Math.max(1, opts.maxEntries) });
  let runtime: Runtime | null = null;
  let recalls = 0;

  const sameValues = (d: MemoDecision, headers: IncomingHttpHeaders): boolean => {
    for (let i = 0; i < d.fields.length; i++) {
      const v = headers[d.fields[i] as string];
      if ((v === undefined ? undefined : joinField(v)) !== d.values[i]) return false;
    }
    return true;
  };

  return {
    keyOf(method, url, headers, rt, authority) {
      if (method !== 'GET' || rt.config.proxy.auth.enabled) return null;
      // Over the request's own fields (a few) rather than looking up each disqualifying name.
      for (const name in headers) if (DISQUALIFYING.has(name)) return null;
      // An intercepted request goes to its tunnel's authority (a request line never starts with SEP).
      if (authority !== undefined) return `${SEP}${authority}${SEP}${url}`;
      if (rt.routeByHost.size === 0) return url;
      const host = headers.host;
      return host === undefined ? url : `${url}${SEP}${host.toLowerCase()}`;
    },
    recall(memoKey, headers, rt) {
      if (rt !== runtime) {
        // A reload: what was decided under the old config is forgotten.
        decisions.clear();
        runtime = rt;
        return null;
      }
      const d = decisions.get(memoKey);
      if (d === undefined) return null;
      const entry = d.entry.deref();
      if (entry === undefined || opts.now() >= d.freshUntil || opts.peek(d.storeKey) !== entry) {
        decisions.delete(memoKey);
        return null;
      }
      if (!sameValues(d, headers) || opts.credentialHash(headers, d.keyPolicy) !== d.credential) return null;
      recalls++;
      return d;
    },
    remember(memoKey, decision) {
      if (decision.runtime !== runtime) {
        // The first decision, or one made under a runtime a reload has replaced since.
        if (runtime !== null) return;
        runtime = decision.runtime;
      }
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
