/**
 * miss → fetch: a miss coalesces on its key (coalesce.ts: one leader fetches, followers wait and
 * read the store; a hit-for-miss marker sends them straight to the origin), and across processes
 * when the store coordinates fills (`store.fill`). fetch() asks the origin to fill the cache and
 * hands the answer to admit().
 */
import { performance } from 'node:perf_hooks';
import type { Next, Reply } from '../exchange.js';
import { admit, COOKIE_DETAIL } from './admit.js';
import { discard } from './body-capture.js';
import type { ForwardReason } from './cache-status.js';
import type { FlightResult } from './coalesce.js';
import {
  type CacheCore,
  type Ctx,
  type Fetched,
  forward,
  markCacheTime,
  select,
  storeGet,
  withoutClientValidators,
} from './core.js';
import { decorate, decorateOwn, deliver } from './deliver.js';
import { CLIENT_VALIDATORS } from './validation.js';

/**
 * Fetches from the origin to fill the cache (client validators stripped: we answer them).
 *
 * Not an async function: while the origin answers, what waits is one reaction whose closure holds
 * the six values admit() needs, not an async frame holding every local and temporary of this
 * function (30 slots): the in-flight requests' state is what each young-generation GC copies.
 */
export function fetch(
  core: CacheCore,
  ctx: Ctx,
  next: Next,
  fwd: ForwardReason,
  settle: ((r: FlightResult) => void) | null,
  detail?: string,
): Promise<Reply> {
  const { ex } = ctx;
  let hasValidators = false;
  for (const h of CLIENT_VALIDATORS) if (ctx.headers[h] !== undefined) hasValidators = true;
  // The outcome is known before the origin answers (or fails); admit() refines it.
  // Whole literals, no conditional spreads: a spread literal costs ~2 µs on Node 20 (V8 11.3).
  const why = detail ?? (ctx.cookieless === null ? undefined : COOKIE_DETAIL);
  ex.cache = why === undefined ? { outcome: 'miss' } : { outcome: 'miss', detail: why };
  markCacheTime(ctx);
  const requestTime = core.now();
  const sentAt = performance.now();
  let sent: Reply | Promise<Reply>;
  try {
    sent = forward(ctx, next, hasValidators ? withoutClientValidators(ctx.headers) : ctx.headers);
  } catch (err) {
    settle?.('failed');
    return Promise.reject(err);
  }
  return Promise.resolve(sent).then(
    (reply) => admitFetched(core, ctx, reply, fwd, requestTime, sentAt, settle, detail),
    (err: unknown) => {
      settle?.('failed');
      throw err;
    },
  );
}

/** The origin's answer to fetch(), handed to admit(). */
function admitFetched(
  core: CacheCore,
  ctx: Ctx,
  reply: Reply,
  fwd: ForwardReason,
  requestTime: number,
  sentAt: number,
  settle: ((r: FlightResult) => void) | null,
  detail: string | undefined,
): Reply | Promise<Reply> {
  let out: Reply | Promise<Reply>;
  try {
    const responseTime = core.now();
    const fetched: Fetched =
      detail === undefined
        ? { reply, fwd, requestTime, responseTime, sentAt, settle }
        : { reply, fwd, requestTime, responseTime, sentAt, settle, detail };
    out = admit(core, ctx, fetched);
  } catch (err) {
    settle?.('failed');
    discard(reply.body);
    throw err;
  }
  // An answer refused from its head comes back at once: no promise (and no tick) for it.
  if (!(out instanceof Promise)) return out;
  return out.catch((err: unknown) => {
    settle?.('failed');
    discard(reply.body);
    throw err;
  });
}

/**
 * Not an async function: a miss that skips coalescing (hit-for-miss, a `no-store` request) is
 * fetch()'s promise itself, with no frame of its own around it.
 */
export function miss(core: CacheCore, ctx: Ctx, next: Next, fwd: ForwardReason): Promise<Reply> {
  if (ctx.ex.method === 'HEAD') return headMiss(core, ctx, next, fwd);
  if (core.coalescer.hitForMiss(ctx.key) !== undefined)
    return fetch(core, ctx, next, fwd, null, 'hit-for-miss');
  if (ctx.req.noStore) return fetch(core, ctx, next, fwd, null);
  return coalesce(core, ctx, next, fwd);
}

/** A HEAD miss goes to the origin as it is; only GET responses are stored. */
async function headMiss(core: CacheCore, ctx: Ctx, next: Next, fwd: ForwardReason): Promise<Reply> {
  markCacheTime(ctx);
  const reply = await forward(ctx, next);
  ctx.ex.cache = { outcome: 'miss', stored: false, detail: 'method' };
  const status = { fwd, fwdStatus: reply.status, detail: 'method' };
  // upstream/ made this head for this answer alone, and nothing stores it: decorated in place.
  return reply.source === 'origin'
    ? decorateOwn(core, ctx, reply, status)
    : decorate(core, ctx, reply, status);
}

/** One leader fetches; followers wait for it, then read the store (or fetch for themselves). */
async function coalesce(core: CacheCore, ctx: Ctx, next: Next, fwd: ForwardReason): Promise<Reply> {
  const { coalescer } = core;
  const { ex, key } = ctx;
  for (let round = 0; round < 3; round++) {
    const flight = coalescer.join(key);
    if (flight.role === 'leader') return lead(core, ctx, next, fwd, flight.settle);
    const result = await flight.wait(core.opts.coalesceTimeoutMs, ex.signal);
    if (result === 'stored') {
      const entry = select(await storeGet(core, key), ctx.headers);
      if (entry !== undefined) {
        return deliver(core, ctx, entry, { outcome: 'coalesced', status: { fwd, collapsed: true } });
      }
      continue; // stored a variant this request does not match: elect a leader again
    }
    if (result === 'failed') continue; // the leader failed or was aborted: do not inherit it
    break; // not-stored or timeout: fetch for ourselves
  }
  return fetch(
    core,
    ctx,
    next,
    fwd,
    null,
    coalescer.hitForMiss(key) === undefined ? undefined : 'hit-for-miss',
  );
}

/**
 * The in-process leader of a miss. A store shared by several processes may coordinate fills
 * (`store.fill`): the leader claims the key first, and when another process is already fetching
 * it, waits for that fill and delivers what it stored (fetching itself only if nothing usable
 * arrived). Without `store.fill` this is just `fetch`.
 */
async function lead(
  core: CacheCore,
  ctx: Ctx,
  next: Next,
  fwd: ForwardReason,
  settle: (r: FlightResult) => void,
): Promise<Reply> {
  const { fill } = core.store;
  if (fill === undefined) return fetch(core, ctx, next, fwd, settle);
  const claim = await fill.claim(ctx.key);
  if (claim.role === 'leader') {
    return fetch(core, ctx, next, fwd, (r) => {
      claim.release();
      settle(r);
    });
  }
  try {
    await claim.wait(core.opts.coalesceTimeoutMs, ctx.ex.signal);
  } catch (err) {
    settle('failed');
    throw err;
  }
  const entry = select(await storeGet(core, ctx.key), ctx.headers);
  if (entry === undefined) return fetch(core, ctx, next, fwd, settle);
  settle('stored');
  return deliver(core, ctx, entry, { outcome: 'coalesced', status: { fwd, collapsed: true } });
}
