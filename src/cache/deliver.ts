/**
 * hit → deliver: whether a stored response may be reused (reuseDecision), a Reply from it
 * (deliver, with a short path for a plain fresh hit), and decorate(), the one exit of the stage:
 * every reply gets Age and Cache-Status here, and a coded body is sent as it is or decoded, by
 * what the client accepts (compression.ts).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { CacheInfo, CacheOutcome, Next, Reply } from '../exchange.js';
import { appendHeader } from '../hop-by-hop.js';
import type { Reason } from '../reasons.js';
import { discard } from './body-capture.js';
import {
  addCacheHeaders,
  type CacheStatusEntry,
  type EmitOptions,
  emitCacheHeaders,
  formatHitMember,
} from './cache-status.js';
import {
  codedHeaders,
  decodedHeaders,
  decodedStream,
  decodeWhole,
  planCoding,
  storedCoding,
} from './compression.js';
import {
  type CacheCore,
  type Ctx,
  type DeliverHow,
  type Derived,
  directivesOf,
  forward,
  isRange,
  lifetimeOf,
  markCacheTime,
  type PlainHit,
} from './core.js';
import { currentAgeMs, decideReuse } from './freshness.js';
import { hasNoTransform } from './no-transform.js';
import type { RouteCachePolicy } from './options.js';
import { partialReply } from './range.js';
import type { StoredResponse } from './store.js';
import { clientCopyIsCurrent, notModifiedHeaders } from './validation.js';

const REASON_BY_OUTCOME: Partial<Record<CacheOutcome, Reason>> = {
  hit: 'cache_hit',
  stale: 'cache_stale',
  revalidated: 'cache_revalidated',
  coalesced: 'cache_coalesced',
};

/** A fresh hit (the most common answer: deliver() has a short path for it). */
export const PLAIN_HIT: DeliverHow = { outcome: 'hit', status: { hit: true } };

/** What hits need from a stored response under a policy, worked out once (core.ts Derived). */
export function derive(core: CacheCore, entry: StoredResponse, policy: RouteCachePolicy): Derived {
  const known = core.derivedByEntry.get(entry);
  if (known !== undefined && known.policy === policy) return known;
  const b = entry.body;
  const length = String(b.byteLength);
  const d: Derived = {
    policy,
    res: directivesOf(core, entry.headers),
    lifeMs: lifetimeOf(core, entry.status, entry, policy).ms,
    initialAgeMs: currentAgeMs(entry, entry.responseTime),
    // decorate() copies headers before changing them: the stored ones serve as they are when
    // their Content-Length is right (the usual case), else a copy with it.
    headers:
      entry.headers['content-length'] === length
        ? (entry.headers as OutgoingHttpHeaders)
        : { ...entry.headers, 'content-length': length },
    body: Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    coding: storedCoding(entry.headers),
    pipelineHits: 0,
    served: known?.served ?? 0,
    asStored: null,
    decodedHeaders: null,
    lastAcceptEncoding: undefined,
    lastTakesCoding: null,
  };
  core.derivedByEntry.set(entry, d);
  return d;
}

/** How a stored response may be reused for this request (§4.2, §4.3), with what decided it. */
export function reuseDecision(core: CacheCore, ctx: Ctx, entry: StoredResponse) {
  const derived = derive(core, entry, ctx.policy);
  const parsed = derived.res;
  // A route that ignores no-store (with its own lifetime) also reuses bare no-cache answers.
  const res =
    ctx.policy.ignoreNoStore && ctx.policy.ttlMs !== null && parsed.noCache === true
      ? { ...parsed, noCache: false as const }
      : parsed;
  const ageMs = derived.initialAgeMs + Math.max(0, core.now() - entry.responseTime);
  const d = decideReuse({
    ageMs,
    lifetimeMs: derived.lifeMs,
    req: ctx.req,
    res,
    forceRevalidate: ctx.policy.forceRevalidate,
  });
  return { d, derived, ageMs };
}

/**
 * What a plain hit sends before Age and Cache-Status, as decorate() would make it: the stored
 * headers and bytes for an identity entry; for a coded one, the coded headers for a client that
 * takes the coding, else the decoded copy (compression.ts DecodedCopies) with its headers. Null
 * when the general path must do it: a body too large to decode in one step (it streams), or a
 * HEAD that would need the decoded length.
 */
function plainHit(
  core: CacheCore,
  d: Derived,
  acceptEncoding: string | undefined,
  head: boolean,
): PlainHit | null {
  if (d.coding === null) {
    d.asStored ??= { headers: d.headers, body: d.body };
    return d.asStored;
  }
  if (d.lastTakesCoding === null || d.lastAcceptEncoding !== acceptEncoding) {
    d.lastAcceptEncoding = acceptEncoding;
    d.lastTakesCoding = planCoding(d.headers, acceptEncoding).kind === 'coded';
  }
  if (d.lastTakesCoding) {
    d.asStored ??= { headers: codedHeaders(d.headers), body: d.body };
    return d.asStored;
  }
  if (head || hasNoTransform(d.headers['cache-control'])) return null;
  const copy = core.decodedCopies.of(d.body, d.coding);
  if (copy === null) return null;
  d.decodedHeaders ??= decodedHeaders(d.headers, copy.length);
  return { headers: d.decodedHeaders, body: copy };
}

/** A Reply from a stored response. */
export function deliver(core: CacheCore, ctx: Ctx, entry: StoredResponse, how: DeliverHow): Reply {
  const { ex } = ctx;
  const d = derive(core, entry, ctx.policy);
  d.served++;
  const ageMs = d.initialAgeMs + Math.max(0, core.now() - entry.responseTime);
  const ageS = Math.floor(ageMs / 1000);
  const ttlS = Math.floor((d.lifeMs - ageMs) / 1000);
  const current =
    entry.status >= 200 &&
    entry.status < 300 &&
    clientCopyIsCurrent(ex.headers, entry.headers, entry.responseTime);
  let status = entry.status;
  let statusText = entry.statusText;
  let headers: OutgoingHttpHeaders;
  let body: Buffer | null = null;
  if (current) {
    status = 304;
    statusText = 'Not Modified';
    headers = notModifiedHeaders(entry.headers);
  } else {
    // decorate() copies these once; the stored bytes are shared by every reader, never copied.
    headers = d.headers;
    if (ex.method !== 'HEAD') body = d.body;
    // A range is of the bytes as stored: only when the client takes them as they are (a coded
    // body the client cannot accept is decoded whole below, and Range is then ignored: §14.2).
    const part =
      body !== null && isRange(ex) && planCoding(headers, ex.headers['accept-encoding']).kind !== 'decode'
        ? partialReply(ex.headers, status, headers, d.body)
        : null;
    if (part !== null) ({ status, statusText, headers, body } = part);
  }
  const elapsed = markCacheTime(ctx);
  const plain =
    how === PLAIN_HIT && !current && headers === d.headers
      ? plainHit(core, d, ex.headers['accept-encoding'], body === null)
      : null;
  if (plain !== null) {
    // The short path of the most common answer: what decorate() would do for it (the coding
    // plan known per entry, a hit member in Cache-Status), without the general steps.
    ex.cache = {
      outcome: 'hit',
      savedMs: Math.max(0, entry.fetchMs - elapsed),
      savedBytes: entry.body.byteLength,
      ageS,
      ttlS,
    };
    ex.reason = 'cache_hit';
    const out: OutgoingHttpHeaders = Object.assign({}, plain.headers);
    if (ctx.policy.emitAge) out['age'] = String(Math.max(0, ageS));
    if (ctx.policy.emitCacheStatus) {
      appendHeader(out, 'cache-status', formatHitMember(core.opts.cacheStatusName, ttlS));
    }
    return { status, statusText, headers: out, body: body === null ? null : plain.body, source: 'cache' };
  }
  const info: CacheInfo = {
    outcome: how.outcome,
    savedMs: Math.max(0, entry.fetchMs - elapsed),
    savedBytes: entry.body.byteLength,
    ageS,
    ttlS,
  };
  if (how.detail !== undefined) info.detail = how.detail;
  ex.cache = info;
  const reason = REASON_BY_OUTCOME[how.outcome];
  if (reason !== undefined) ex.reason = reason;
  return decorate(
    core,
    ctx,
    { status, statusText, headers, body, source: 'cache' },
    Object.assign({}, how.status, { ttlS }),
    ageS,
  );
}

/** The 504 of an only-if-cached request nothing stored answers (§5.2.1.7). */
export function onlyIfCachedMiss(core: CacheCore, ctx: Ctx): Reply {
  markCacheTime(ctx);
  ctx.ex.cache = { outcome: 'miss', detail: 'only-if-cached' };
  ctx.ex.reason = 'cache_only_if_cached';
  return decorate(
    core,
    ctx,
    {
      status: 504,
      statusText: 'Gateway Timeout',
      headers: { 'content-length': '0' },
      body: null,
      source: 'synth',
    },
    { fwd: 'miss', detail: 'only-if-cached' },
  );
}

/**
 * Every reply leaves the stage here: Age and Cache-Status are added, and a coded body is sent
 * as it is or decoded, by what the client accepts (compression.ts). Origin replies are adapted
 * only when we asked for the coding; stored ones always (a client never gets a coding it did not
 * accept from us). `storing`: the body's decoded size is counted by the store check, not here.
 */
export function decorate(
  core: CacheCore,
  ctx: Ctx,
  reply: Reply,
  status: CacheStatusEntry,
  ageS?: number,
  storing = false,
): Reply {
  const headers = emitCacheHeaders(reply.headers, status, ageS, emitOptions(core, ctx));
  return adapt(core, ctx, reply, headers, storing);
}

/**
 * decorate() for an origin answer passed on unstored, whose head is this reply's alone (upstream/
 * made it for this response): Age and Cache-Status are added to that head in place, and the
 * reply itself is returned when its body needs no decoding. One header object per response.
 */
export function decorateOwn(core: CacheCore, ctx: Ctx, reply: Reply, status: CacheStatusEntry): Reply {
  addCacheHeaders(reply.headers, status, undefined, emitOptions(core, ctx));
  return adapt(core, ctx, reply, reply.headers, false);
}

function emitOptions(core: CacheCore, ctx: Ctx): EmitOptions {
  const { policy } = ctx;
  return {
    name: core.opts.cacheStatusName,
    emitAge: policy.emitAge,
    emitCacheStatus: policy.emitCacheStatus,
  };
}

/** The coding step of decorate(): `headers` are the reply's with Age and Cache-Status added. */
function adapt(
  core: CacheCore,
  ctx: Ctx,
  reply: Reply,
  headers: OutgoingHttpHeaders,
  storing: boolean,
): Reply {
  const { observer } = core;
  const same = headers === reply.headers;
  if (!ctx.compress && reply.source !== 'cache') return same ? reply : { ...reply, headers };
  const plan = planCoding(headers, ctx.ex.headers['accept-encoding']);
  switch (plan.kind) {
    case 'as-is':
      return same ? reply : { ...reply, headers };
    case 'coded':
      return { ...reply, headers: codedHeaders(headers) };
    case 'decode': {
      if (reply.status !== 304 && hasNoTransform(headers['cache-control'])) {
        const out = { ...reply, headers };
        core.mustNotDecode.add(out);
        return out;
      }
      const count = reply.source === 'origin' && !storing && observer.onUpstreamCoding !== undefined;
      // A body in memory (stored, or whole from the origin) decodes in one step when small,
      // and is sent with its length.
      const inMemory = Buffer.isBuffer(reply.body) ? reply.body : null;
      const whole =
        inMemory === null
          ? null
          : reply.source === 'cache'
            ? core.decodedCopies.of(inMemory, plan.coding)
            : decodeWhole(inMemory, plan.coding);
      if (inMemory !== null && whole !== null) {
        if (count) observer.onUpstreamCoding?.(inMemory.length, whole.length);
        return { ...reply, headers: decodedHeaders(headers, whole.length), body: whole };
      }
      const body =
        reply.body === null
          ? null
          : decodedStream(
              reply.body,
              plan.coding,
              count ? { onEnd: (coded, identity) => observer.onUpstreamCoding?.(coded, identity) } : {},
            );
      return { ...reply, headers: decodedHeaders(headers), body };
    }
    default: {
      const never: never = plan;
      throw new Error(`unknown coding plan ${String(never)}`);
    }
  }
}

/**
 * A reply decorate() marked (mustNotDecode) is replaced by the origin's answer to the client's
 * own request (its Accept-Encoding, validators and Range), passed on unstored; the coded reply
 * is drained (a miss being stored completes).
 */
export function untransformed(core: CacheCore, ctx: Ctx, next: Next, reply: Reply): Reply | Promise<Reply> {
  // Not an async function: the usual reply (not marked) goes on without a promise of its own.
  return core.mustNotDecode.has(reply) ? fetchUntransformed(core, ctx, next, reply) : reply;
}

async function fetchUntransformed(core: CacheCore, ctx: Ctx, next: Next, reply: Reply): Promise<Reply> {
  discard(reply.body);
  const { ex } = ctx;
  ex.cache = { outcome: 'miss', stored: false, detail: 'no-transform' };
  // The client's own request, as it came (not the one with our Accept-Encoding).
  const own = await forward(ctx, next, ex.headers);
  return decorate(core, { ...ctx, headers: ex.headers, compress: false }, own, {
    fwd: 'request',
    fwdStatus: own.status,
    detail: 'no-transform',
  });
}
