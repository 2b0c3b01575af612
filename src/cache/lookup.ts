/**
 * lookup → hit | stale | revalidate | miss: the stored variant that matches the request (or one
 * fetched without cookies, for a request keyed by its cookies) and what reusing it takes
 * (deliver.ts reuseDecision). A fresh hit may start a refresh-ahead and is remembered by the hit
 * memo (hit-memo.ts) once hit again; a stale one may be served while it refreshes in the
 * background; the rest go to revalidate, miss, or the partial-content path.
 */
import type { Next, Reply } from '../exchange.js';
import { joinField } from './cache-control.js';
import {
  type CacheCore,
  type Ctx,
  type DeliverHow,
  type Derived,
  isRange,
  type MemoServingCtx,
  refreshAheadPlan,
  select,
  storeGet,
  storeGetFailed,
} from './core.js';
import { deliver, onlyIfCachedMiss, PLAIN_HIT, reuseDecision, untransformed } from './deliver.js';
import { credentialHash } from './key.js';
import { miss } from './miss.js';
import { hasNoTransform } from './no-transform.js';
import { completePart, passRange } from './partial-stage.js';
import { refreshAhead, refreshInBackground } from './refresh.js';
import { revalidate } from './revalidate.js';
import type { StoredResponse } from './store.js';

/** The request fields a remembered hit depends on when it varies on nothing and has no key fields. */
const ACCEPT_ENCODING_ONLY: readonly string[] = Object.freeze(['accept-encoding']);

/** A stale answer the request's max-stale accepts (§5.2.1.2). */
const MAX_STALE: DeliverHow = {
  outcome: 'stale',
  detail: 'max-stale',
  status: { hit: true, detail: 'max-stale' },
};

/** A stale answer within the response's stale-while-revalidate window (RFC 5861 §3). */
const STALE_WHILE_REVALIDATE: DeliverHow = {
  outcome: 'stale',
  detail: 'stale-while-revalidate',
  status: { hit: true, detail: 'stale-while-revalidate' },
};

/**
 * The lookup every request past the hit memo makes, and the one async step of recv → lookup →
 * miss: the store's answer is awaited here (not through storeGet(), a promise fewer), and every
 * answer leaves through untransformed() (deliver.ts).
 */
export async function lookup(core: CacheCore, ctx: Ctx, next: Next): Promise<Reply> {
  let variants: readonly StoredResponse[];
  try {
    variants = await core.store.get(ctx.key);
  } catch (err) {
    variants = storeGetFailed(core, err);
  }
  const entry = select(variants, ctx.headers);
  if (entry !== undefined) return untransformed(core, ctx, next, await reuse(core, ctx, next, entry));
  if (ctx.cookieless !== null) {
    const shared = select(await storeGet(core, ctx.cookieless), ctx.headers);
    const reply = shared === undefined ? null : reuseCookieless(core, ctx, shared);
    if (reply !== null) return untransformed(core, ctx, next, reply);
  }
  if (ctx.req.onlyIfCached) return untransformed(core, ctx, next, onlyIfCachedMiss(core, ctx));
  const fwd = variants.length > 0 ? 'vary-miss' : 'uri-miss';
  if (isRange(ctx.ex)) return untransformed(core, ctx, next, await passRange(core, ctx, next, fwd));
  if (ctx.ex.method === 'GET' && core.partKeys.has(ctx.key)) {
    const completed = await completePart(core, ctx, next, fwd);
    if (completed !== null) return untransformed(core, ctx, next, completed);
  }
  // Returned, not awaited: this function's frame is not held while the origin answers (the
  // requests in flight are what every young-generation GC copies).
  return miss(core, ctx, next, fwd).then((reply) => untransformed(core, ctx, next, reply));
}

async function reuse(core: CacheCore, ctx: Ctx, next: Next, entry: StoredResponse): Promise<Reply> {
  const { d, derived, ageMs } = reuseDecision(core, ctx, entry);
  switch (d.kind) {
    case 'fresh': {
      const reply = deliver(core, ctx, entry, PLAIN_HIT);
      refreshAhead(core, ctx, next, entry, ageMs, derived.lifeMs);
      rememberHit(core, ctx, entry, derived);
      return reply;
    }
    case 'stale':
      return deliver(core, ctx, entry, MAX_STALE);
    case 'stale-while-revalidate':
      // only-if-cached asks the cache not to contact the origin (§5.2.1.7), even in the background.
      if (!ctx.req.onlyIfCached) refreshInBackground(core, ctx, next, entry);
      return deliver(core, ctx, entry, STALE_WHILE_REVALIDATE);
    case 'revalidate':
      if (ctx.req.onlyIfCached) return onlyIfCachedMiss(core, ctx);
      if (ctx.ex.method === 'HEAD') return miss(core, ctx, next, 'stale');
      if (isRange(ctx.ex)) return passRange(core, ctx, next, 'stale');
      return revalidate(core, ctx, next, entry, d.why);
    default: {
      const never: never = d;
      throw new Error(`unknown reuse decision ${String(never)}`);
    }
  }
}

/**
 * A request with cookies, answered from an entry fetched without cookies (Ctx.cookieless): only
 * when that needs no origin (fresh, or stale the request accepts). A revalidation or background
 * refresh would send this request's cookies and store the answer where callers without them
 * read: such a request misses instead, under its own key. Neither refresh-ahead nor the hit memo
 * applies (both act for the entry's own key).
 */
function reuseCookieless(core: CacheCore, ctx: Ctx, entry: StoredResponse): Reply | null {
  const { d } = reuseDecision(core, ctx, entry);
  switch (d.kind) {
    case 'fresh':
      return deliver(core, ctx, entry, PLAIN_HIT);
    case 'stale':
      return deliver(core, ctx, entry, MAX_STALE);
    case 'stale-while-revalidate':
    case 'revalidate':
      return null;
    default: {
      const never: never = d;
      throw new Error(`unknown reuse decision ${String(never)}`);
    }
  }
}

/**
 * After a plain fresh hit: remember the lookup (hit-memo.ts) when the exchange is one the memo
 * may answer (`keyOf`) and the guard admitted, the response is the only variant stored under its
 * key, and nothing else happens on a hit of this policy (refresh-ahead).
 */
function rememberHit(core: CacheCore, ctx: Ctx, entry: StoredResponse, d: Derived): void {
  const { memo } = core;
  const { ex } = ctx;
  if (memo === null || ex.admission?.decision !== 'admit') return;
  const memoKey = memo.keyOf(ex);
  if (memoKey === null) return;
  // Only an entry hit again: with many keys hit once each, remembering every hit is pure cost
  // (the entries sweep at 100k keys: ~10 µs per hit).
  if (++d.pipelineHits < 2) return;
  if (refreshAheadPlan(core, ctx.policy) !== null || core.peekOnly?.(ctx.key) !== entry) return;
  // A coded no-transform entry may need the origin for some clients (untransformed): never memoised.
  if (d.coding !== null && hasNoTransform(entry.headers['cache-control'])) return;
  const fields =
    entry.vary.length === 0 && ctx.policy.keyHeaders.length === 0
      ? ACCEPT_ENCODING_ONLY
      : [...new Set(['accept-encoding', ...entry.vary, ...ctx.policy.keyHeaders])];
  memo.remember(memoKey, {
    mode: ex.mode,
    route: ex.route,
    storeKey: ctx.key,
    entry: new WeakRef(entry),
    freshUntil: entry.responseTime + d.lifeMs - d.initialAgeMs,
    fields,
    values: fields.map((f) => {
      const v = ex.headers[f];
      return v === undefined ? undefined : joinField(v);
    }),
    credential: credentialHash(ctx.headers, ctx.policy, core.credentialSecret),
    keyPolicy: ctx.policy,
    serving: {
      compress: ctx.compress,
      policy: ctx.policy,
      req: ctx.req,
      key: ctx.key,
    } satisfies MemoServingCtx,
  });
}
