/**
 * revalidate: a stored response that needs the origin's word is asked for with its validators
 * (concurrent revalidations of one key collapse like misses). A 304 updates the stored headers
 * and delivers; a full answer is admitted; an error or an unreachable origin may be answered
 * stale (stale-if-error, RFC 5861 §4; §4.2.4 when disconnected).
 */
import { performance } from 'node:perf_hooks';
import { SidecacheError } from '../errors.js';
import type { Next, Reply } from '../exchange.js';
import { admit, refreshed } from './admit.js';
import { discard } from './body-capture.js';
import type { ForwardReason } from './cache-status.js';
import type { FlightResult } from './coalesce.js';
import {
  type CacheCore,
  type Ctx,
  directivesOf,
  forward,
  lifetimeOf,
  markCacheTime,
  select,
  storeGet,
  storePut,
  track,
  withoutClientValidators,
} from './core.js';
import { deliver } from './deliver.js';
import { currentAgeMs, type RevalidateWhy, type StaleOnError, staleOnError } from './freshness.js';
import { fetch } from './miss.js';
import type { StoredResponse } from './store.js';
import { conditionalHeaders, notModifiedMatches } from './validation.js';

/** Statuses that count as an origin error for stale-if-error (RFC 5861 §4). */
export const ERROR_STATUS: ReadonlySet<number> = new Set([500, 502, 503, 504]);

/**
 * Errors that mean no response came from the origin at all (RFC 9111 §4.2.4 "disconnected"): it
 * could not be reached, or it closed the connection before answering.
 */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'SC_ERR_DNS',
  'SC_ERR_UPSTREAM_CONNECT',
  'SC_ERR_UPSTREAM_CONNECT_TIMEOUT',
  'SC_ERR_UPSTREAM_RESET',
  'ECONNRESET',
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

function isUnreachable(err: unknown): boolean {
  const code = err instanceof SidecacheError ? err.code : (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}

function staleOnErrorFor(
  core: CacheCore,
  ctx: Ctx,
  entry: StoredResponse,
  unreachable: boolean,
): StaleOnError {
  const res = directivesOf(core, entry.headers);
  return staleOnError({
    ageMs: currentAgeMs(entry, core.now()),
    lifetimeMs: lifetimeOf(core, entry.status, entry, ctx.policy).ms,
    req: ctx.req,
    res,
    unreachable,
    staleIfErrorMs: core.opts.staleIfErrorMs,
    serveStaleIfUnreachable: core.opts.serveStaleIfUnreachable,
  });
}

export async function revalidate(
  core: CacheCore,
  ctx: Ctx,
  next: Next,
  entry: StoredResponse,
  why: RevalidateWhy,
): Promise<Reply> {
  const { ex, key } = ctx;
  const fwd: ForwardReason = why === 'stale' || why === 'response-no-cache' ? 'stale' : 'request';
  // Concurrent revalidations of one key collapse like misses.
  const flight = core.coalescer.join(key);
  if (flight.role === 'follower') {
    const result = await flight.wait(core.opts.coalesceTimeoutMs, ex.signal);
    if (result === 'stored') {
      const fresh = select(await storeGet(core, key), ctx.headers);
      if (fresh !== undefined) {
        return deliver(core, ctx, fresh, { outcome: 'coalesced', status: { fwd, collapsed: true } });
      }
    }
    return revalidateAlone(core, ctx, next, entry, fwd, null);
  }
  return revalidateAlone(core, ctx, next, entry, fwd, flight.settle);
}

async function revalidateAlone(
  core: CacheCore,
  ctx: Ctx,
  next: Next,
  entry: StoredResponse,
  fwd: ForwardReason,
  settle: ((r: FlightResult) => void) | null,
): Promise<Reply> {
  const { ex } = ctx;
  const headers = Object.assign(withoutClientValidators(ctx.headers), conditionalHeaders(entry.headers));
  ex.cache = { outcome: 'miss', detail: 'revalidating' };
  markCacheTime(ctx);
  const requestTime = core.now();
  const sentAt = performance.now();
  let reply: Reply;
  try {
    reply = await forward(ctx, next, headers);
  } catch (err) {
    settle?.('failed');
    const stale = staleOnErrorFor(core, ctx, entry, isUnreachable(err));
    if (stale === null) throw err;
    const code = err instanceof SidecacheError ? err.code : 'error';
    return deliver(core, ctx, entry, {
      outcome: 'stale',
      detail: stale,
      status: { fwd: 'stale', detail: `${stale}:${code}` },
    });
  }
  const responseTime = core.now();
  if (reply.status === 304) {
    discard(reply.body);
    if (!notModifiedMatches(entry.headers, reply.headers)) {
      // The 304 is about another representation: fetch the full response.
      return fetch(core, ctx, next, fwd, settle);
    }
    const updated = refreshed(core, ctx, entry, reply.headers, requestTime, responseTime);
    const ok = await track(core, storePut(core, updated));
    settle?.(ok ? 'stored' : 'not-stored');
    return deliver(core, ctx, updated, {
      outcome: 'revalidated',
      status: { fwd, fwdStatus: 304, stored: ok },
    });
  }
  if (ERROR_STATUS.has(reply.status)) {
    const stale = staleOnErrorFor(core, ctx, entry, false);
    if (stale !== null) {
      settle?.('not-stored');
      discard(reply.body);
      return deliver(core, ctx, entry, {
        outcome: 'stale',
        detail: stale,
        status: { fwd: 'stale', fwdStatus: reply.status, detail: stale },
      });
    }
  }
  try {
    return await admit(core, ctx, { reply, fwd, requestTime, responseTime, sentAt, settle });
  } catch (err) {
    settle?.('failed');
    discard(reply.body);
    throw err;
  }
}
