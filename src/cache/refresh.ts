/**
 * refresh: background refreshes of a stored variant, one at a time per variant: for
 * stale-while-revalidate, and for refresh-ahead (refresh-ahead.ts: a fresh hit on a hot entry
 * near its expiry, bounded by `refreshAheadConcurrency`). A 304 merges into the stored headers,
 * a storable full answer replaces the entry; the client that triggered it never waits.
 */
import { performance } from 'node:perf_hooks';
import { createExchange, type Next } from '../exchange.js';
import { declaredLength, decodable, Judgement, refreshed, storedResponseFrom } from './admit.js';
import { discard, readBody } from './body-capture.js';
import {
  type CacheCore,
  type Ctx,
  refreshAheadPlan,
  storePut,
  variantId,
  withoutClientValidators,
} from './core.js';
import { derive } from './deliver.js';
import { inRefreshWindow, type RefreshAheadResult } from './refresh-ahead.js';
import { ERROR_STATUS } from './revalidate.js';
import type { StoredResponse } from './store.js';
import { conditionalHeaders, notModifiedMatches } from './validation.js';

/**
 * Refreshes a variant once in the background: stale-while-revalidate, or refresh-ahead (`ahead`
 * is told how it ended and what was stored). Always a GET (a HEAD that triggers it must not store
 * an empty body), with the triggering request's headers (its credential) and the stored
 * validators; nothing of that request is kept once the refresh ends. Returns false when a refresh
 * of that variant was already in flight.
 */
export function refreshInBackground(
  core: CacheCore,
  ctx: Ctx,
  next: Next,
  entry: StoredResponse,
  ahead?: (result: RefreshAheadResult, stored: StoredResponse | null) => void,
): boolean {
  const { refreshing } = core;
  const id = variantId(entry);
  if (refreshing.has(id)) return false;
  const { ex } = ctx;
  const controller = new AbortController();
  let result: RefreshAheadResult = 'error';
  let stored: StoredResponse | null = null;
  const job = (async () => {
    const headers = Object.assign(withoutClientValidators(ctx.headers), conditionalHeaders(entry.headers));
    // A request of its own (nobody waits for it: no interim relay), admitted as the client's was.
    const bg = createExchange({
      id: ex.id,
      mode: ex.mode,
      method: 'GET',
      target: ex.target,
      origin: ex.origin,
      route: ex.route,
      headers,
      body: null,
      client: ex.client,
      signal: controller.signal,
      timings: { startedAt: Date.now(), start: performance.now(), phases: {} },
      tunnel: ex.tunnel,
    });
    bg.admission = ex.admission;
    const requestTime = core.now();
    const sentAt = performance.now();
    const reply = await next(bg);
    const responseTime = core.now();
    if (reply.status === 304 && notModifiedMatches(entry.headers, reply.headers)) {
      discard(reply.body);
      const updated = refreshed(core, ctx, entry, reply.headers, requestTime, responseTime);
      result = 'not_modified';
      if (await storePut(core, updated)) stored = updated;
      return;
    }
    result = 'not_stored';
    const judged = new Judgement(core, ctx, 'GET', reply, requestTime, responseTime);
    const { res, verdict } = judged;
    if (!verdict.storable || ERROR_STATUS.has(reply.status) || reply.status === 304) {
      discard(reply.body);
      return;
    }
    const body =
      reply.body === null || Buffer.isBuffer(reply.body)
        ? (reply.body ?? Buffer.alloc(0))
        : await readBody(reply.body, core.opts.maxEntryBytes, declaredLength(reply.headers));
    if (body === null || !(await decodable(core, reply.headers, body))) return;
    const times = { requestTime, responseTime, sentAt };
    const replacement = storedResponseFrom(
      core,
      entry.key,
      ctx.headers,
      reply,
      body,
      res,
      judged.lifetime().ms,
      times,
    );
    if (await storePut(core, replacement)) {
      result = 'replaced';
      stored = replacement;
    }
  })()
    .catch((err: unknown) => {
      result = 'error';
      core.observer.onRefreshError?.(err, ex.target.href);
    })
    .finally(() => {
      refreshing.delete(id);
      ahead?.(result, stored);
    });
  refreshing.set(id, job);
  return true;
}

/**
 * After a fresh hit: counts it, and starts a refresh-ahead when the entry is hot (minHits), on a
 * hot path, in its refresh window, not already refreshing, and under the global cap.
 */
export function refreshAhead(
  core: CacheCore,
  ctx: Ctx,
  next: Next,
  entry: StoredResponse,
  ageMs: number,
  lifeMs: number,
): void {
  const plan = refreshAheadPlan(core, ctx.policy);
  if (plan === null || !plan.matches(ctx.ex.target.pathname)) return;
  const { hitTracker, observer } = core;
  const id = variantId(entry);
  const hits = hitTracker.hit(id, entry.responseTime);
  if (hitTracker.thanksToRefresh(id, entry.responseTime, core.now())) observer.onRefreshAheadHit?.();
  if (hits < plan.options.minHits || ctx.req.onlyIfCached) return;
  if (!inRefreshWindow(ageMs, lifeMs, plan.options) || core.refreshing.has(id)) return;
  if (core.refreshingAhead >= core.opts.refreshAheadConcurrency) {
    observer.onRefreshAheadDeferred?.();
    return;
  }
  const expiredAt = entry.responseTime + (lifeMs - derive(core, entry, ctx.policy).initialAgeMs);
  core.refreshingAhead++;
  refreshInBackground(core, ctx, next, entry, (result, stored) => {
    core.refreshingAhead--;
    if (stored !== null) hitTracker.refreshed(variantId(stored), stored.responseTime, expiredAt);
    observer.onRefreshAhead?.(result);
  });
}
