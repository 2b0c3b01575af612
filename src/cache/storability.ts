/**
 * Whether a response may be stored by a shared cache (RFC 9111 §3, §3.5, §5.2), and what of it is
 * stored (§3.1). Pure. Route policy may loosen three rules on purpose: `storePrivate` (entries are
 * keyed by credential, so each belongs to one client), `storeSetCookie`, and `ignoreNoStore` (only
 * with the route's own lifetime, for APIs that mark slow-changing data no-store). `ignoreNoStore`
 * implies `storePrivate`: such APIs (Stripe) are called with credentials, and an entry answers only
 * requests with the credential that fetched it.
 */
import type { RequestDirectives, ResponseDirectives } from './cache-control.js';
import { joinField, splitList } from './cache-control.js';
import { HEURISTICALLY_CACHEABLE, hasExplicitFreshness } from './freshness.js';
import { type HeaderSource, HOP_BY_HOP, type StoredHeaders, toStoredHeaders } from './headers.js';

/** Why a response was not stored: a closed list, used in Cache-Status `detail` and on the Exchange. */
export type NotStoredReason =
  | 'method'
  | 'request-no-store'
  | 'status'
  | 'partial'
  | 'must-understand'
  | 'no-store'
  | 'private'
  | 'authorization'
  | 'set-cookie'
  | 'vary-star'
  | 'no-freshness'
  | 'too-large'
  | 'incomplete'
  | 'store-refused';

/** Status codes whose semantics this cache implements (for must-understand, §5.2.2.3). */
export const UNDERSTOOD_STATUS: ReadonlySet<number> = new Set([
  200, 201, 202, 203, 204, 300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 406, 410, 414, 421, 500,
  501, 502, 503, 504,
]);

export interface StoragePolicy {
  readonly storePrivate: boolean;
  readonly storeSetCookie: boolean;
  /** The route gives a lifetime of its own (applies to heuristically cacheable statuses). */
  readonly ttlOverride: boolean;
  /** The route stores `no-store` responses anyway (only together with its own lifetime). */
  readonly ignoreNoStore?: boolean;
}

export interface StorabilityInput {
  readonly method: string;
  readonly status: number;
  readonly req: RequestDirectives;
  readonly res: ResponseDirectives;
  readonly resHeaders: HeaderSource;
  /** The request carried `Authorization` (§3.5). */
  readonly authorization: boolean;
  /**
   * Freshness lifetime computed for the response (freshness.ts). Read only by the last rule, so an
   * input whose `lifetimeMs` is a getter (admit.ts's Judgement) never computes it for a response
   * refused earlier.
   */
  readonly lifetimeMs: number;
  readonly policy: StoragePolicy;
}

export type Storability =
  | { readonly storable: true }
  | { readonly storable: false; readonly reason: NotStoredReason };

/** The request field names a response varies on (§4.1), lower-case; `['*']` for `Vary: *`. */
export function varyFields(headers: HeaderSource): string[] {
  const names = splitList(joinField(headers['vary'])).map((s) => s.toLowerCase());
  if (names.includes('*')) return ['*'];
  return [...new Set(names)];
}

/** Whether the policy stores private and credentialed responses, each keyed by its credential. */
export function storesPerCredential(policy: StoragePolicy): boolean {
  return policy.storePrivate || (policy.ignoreNoStore === true && policy.ttlOverride);
}

/**
 * Cache-Status `detail` for a response not stored: the reason, and the route setting that would
 * store it when there is one (`not stored: authorization (set storePrivate)`).
 */
export function notStoredDetail(reason: NotStoredReason): string {
  const hint = NOT_STORED_SETTING[reason];
  return hint === undefined ? reason : `not stored: ${reason} (${hint})`;
}

const NOT_STORED_SETTING: Partial<Record<NotStoredReason, string>> = {
  'no-store': 'set ignoreNoStore with ttlMs',
  private: 'set storePrivate',
  authorization: 'set storePrivate',
  'set-cookie': 'set storeSetCookie',
  'no-freshness': 'set ttlMs',
  'too-large': 'raise maxEntryBytes',
};

/** One verdict object per reason, made once: storability() runs for every origin answer. */
const REFUSED = new Map<NotStoredReason, Storability>();
const STORABLE: Storability = Object.freeze({ storable: true });
function no(reason: NotStoredReason): Storability {
  let v = REFUSED.get(reason);
  if (v === undefined) {
    v = Object.freeze({ storable: false, reason });
    REFUSED.set(reason, v);
  }
  return v;
}

export function storability(i: StorabilityInput): Storability {
  const perCredential = storesPerCredential(i.policy);
  if (i.method !== 'GET') return no('method');
  if (i.req.noStore) return no('request-no-store');
  if (i.status < 200 || i.status === 304) return no('status');
  if (i.status === 206) return no('partial');
  if (i.res.mustUnderstand && !UNDERSTOOD_STATUS.has(i.status)) return no('must-understand');
  // must-understand with an understood status overrides no-store (§5.2.2.3).
  if (i.res.noStore && !i.res.mustUnderstand && !(i.policy.ignoreNoStore && i.policy.ttlOverride)) {
    return no('no-store');
  }
  if (i.res.private === true && !perCredential) return no('private');
  if (
    i.authorization &&
    !perCredential &&
    !(i.res.mustRevalidate || i.res.public || i.res.sMaxAge !== undefined)
  ) {
    return no('authorization');
  }
  if (i.resHeaders['set-cookie'] !== undefined && !i.policy.storeSetCookie) return no('set-cookie');
  if (varyFields(i.resHeaders).includes('*')) return no('vary-star');
  const heuristic = HEURISTICALLY_CACHEABLE.has(i.status);
  const allowed =
    hasExplicitFreshness(i.res, i.resHeaders) ||
    i.res.public ||
    (i.res.private === true && perCredential) ||
    heuristic;
  if (!allowed) return no('status');
  const validators = i.resHeaders['etag'] !== undefined || i.resHeaders['last-modified'] !== undefined;
  const staleUse = i.res.staleWhileRevalidate !== undefined || i.res.staleIfError !== undefined;
  if (!validators && !staleUse) {
    if (i.lifetimeMs <= 0) return no('no-freshness');
  }
  return STORABLE;
}

/**
 * The headers kept with a stored response (§3.1): hop-by-hop fields and the fields named by a
 * qualified `no-cache="…"` or `private="…"` are dropped.
 */
export function headersToStore(headers: HeaderSource, res: ResponseDirectives): StoredHeaders {
  const connection = headers['connection'];
  // The common case (no Connection options, no qualified no-cache/private) makes no Set per store.
  if (
    (connection === undefined || connection === 'keep-alive') &&
    !Array.isArray(res.noCache) &&
    !Array.isArray(res.private)
  ) {
    return toStoredHeaders(headers, HOP_BY_HOP);
  }
  const drop = new Set<string>(HOP_BY_HOP);
  for (const name of splitList(joinField(connection))) drop.add(name.toLowerCase());
  if (Array.isArray(res.noCache)) for (const f of res.noCache) drop.add(f);
  if (Array.isArray(res.private)) for (const f of res.private) drop.add(f);
  return toStoredHeaders(headers, drop);
}
