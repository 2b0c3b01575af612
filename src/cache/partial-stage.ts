/**
 * Partial content (RFC 9110 §14, RFC 9111 §3.3) as the stage's own path: a Range request the
 * store holds no full response for is answered from a stored part that covers it or passed to the
 * origin, whose self-consistent 206 is kept as a part (partial.ts) under its own key; a GET
 * without Range over a part from byte 0 asks the origin for the rest and admits the combined
 * whole. A Range over a stored 200 is sliced by deliver() (range.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { CacheInfo, Next, Reply } from '../exchange.js';
import { admit, Judgement, storedResponseFrom } from './admit.js';
import { captureBody, discard, readBody } from './body-capture.js';
import type { ForwardReason } from './cache-status.js';
import {
  type CacheCore,
  type Ctx,
  type Fetched,
  forward,
  markCacheTime,
  select,
  storeDeletePrefix,
  storeGet,
  storePut,
  track,
  withoutClientValidators,
} from './core.js';
import { decorate, derive, reuseDecision } from './deliver.js';
import { currentAgeMs } from './freshness.js';
import { firstValue } from './headers.js';
import {
  bodyFits,
  completeHeaders,
  completionRange,
  isComplete,
  mergeParts,
  type Part,
  parseContentRange,
  replyFromPart,
  type Span,
  storablePart,
  validatorsMatch,
} from './partial.js';
import type { StoredResponse } from './store.js';
import { CLIENT_VALIDATORS } from './validation.js';

/** The store key of a primary key's partial entries (partial.ts); under the URL's prefix. */
const partKeyOf = (key: string): string => `${key}\u0001part`;
const PART_KEYS_MAX = 10_000;

/** The stored part matching the request (its own headers: parts are fetched without ours). */
async function storedPart(core: CacheCore, ctx: Ctx): Promise<{ entry: StoredResponse; part: Part } | null> {
  if (!core.partKeys.has(ctx.key)) return null;
  const entry = select(await storeGet(core, partKeyOf(ctx.key)), ctx.ex.headers);
  if (entry === undefined) return null;
  const span = parseContentRange(entry.headers['content-range']);
  if (span === null || !bodyFits(span, entry.body)) return null;
  return { entry, part: { span, body: entry.body } };
}

/**
 * Stores a 206 that arrived whole (`span` checked against it): combined with the stored part
 * when they are one representation; a complete result is stored as the full 200 instead.
 */
async function storePart(
  core: CacheCore,
  ctx: Ctx,
  f: Fetched,
  span: Span,
  body: Uint8Array,
): Promise<boolean> {
  if (!bodyFits(span, body)) return false;
  const { reply } = f;
  let part: Part = { span, body };
  const prior = await storedPart(core, ctx);
  if (prior !== null && validatorsMatch(prior.entry.headers, reply.headers)) {
    part = mergeParts(prior.part, part) ?? part;
  }
  const complete = isComplete(part.span);
  const headers = completeHeaders(reply.headers, part.span.last - part.span.first + 1);
  if (!complete) headers['content-range'] = `bytes ${part.span.first}-${part.span.last}/${part.span.length}`;
  const judged = new Judgement(core, ctx, 'GET', { ...reply, status: 200 }, f.requestTime, f.responseTime);
  const { res } = judged;
  const head = complete
    ? { status: 200, statusText: 'OK', headers }
    : { status: 206, statusText: 'Partial Content', headers };
  const key = complete ? ctx.key : partKeyOf(ctx.key);
  // Parts are fetched without our headers: the variant is of the client's own request.
  const entry = storedResponseFrom(core, key, ctx.ex.headers, head, part.body, res, judged.lifetime().ms, f);
  const ok = await storePut(core, entry);
  if (ok && complete) await storeDeletePrefix(core, partKeyOf(ctx.key));
  if (ok && !complete) {
    if (core.partKeys.size >= PART_KEYS_MAX)
      core.partKeys.delete(core.partKeys.values().next().value as string);
    core.partKeys.add(ctx.key);
  }
  return ok;
}

/**
 * The span of an origin 206 to a GET that may be stored as a part (partial.ts storablePart), when
 * the response is storable as a 200 would be; else null.
 */
function partToStore(core: CacheCore, ctx: Ctx, f: Fetched): Span | null {
  const { reply } = f;
  if (reply.status !== 206 || ctx.ex.method !== 'GET' || reply.body === null) return null;
  const { verdict } = new Judgement(
    core,
    ctx,
    'GET',
    { ...reply, status: 200 },
    f.requestTime,
    f.responseTime,
  );
  return verdict.storable ? storablePart(reply.headers, core.opts.maxEntryBytes) : null;
}

/**
 * A Range request the store holds no full response for: answered from a fresh stored part that
 * covers it, else sent to the origin as it is; a 206 answer is stored as a part (storePart).
 */
export async function passRange(core: CacheCore, ctx: Ctx, next: Next, fwd: ForwardReason): Promise<Reply> {
  const { ex } = ctx;
  const stored = CLIENT_VALIDATORS.some((h) => ex.headers[h] !== undefined)
    ? null
    : await storedPart(core, ctx);
  if (stored !== null && reuseDecision(core, ctx, stored.entry).d.kind === 'fresh') {
    const r = replyFromPart(ex.headers, stored.entry.headers, stored.part);
    if (r !== null) {
      const ageMs = currentAgeMs(stored.entry, core.now());
      const ttlS = Math.floor((derive(core, stored.entry, ctx.policy).lifeMs - ageMs) / 1000);
      markCacheTime(ctx);
      ex.cache = { outcome: 'hit', savedMs: stored.entry.fetchMs, savedBytes: r.body.byteLength, ttlS };
      ex.reason = 'cache_hit';
      const reply: Reply = { status: 206, statusText: 'Partial Content', ...r, source: 'cache' };
      return decorate(core, ctx, reply, { hit: true, ttlS, detail: 'partial' }, Math.floor(ageMs / 1000));
    }
  }
  ex.cache = { outcome: 'miss', stored: false, detail: 'range' };
  markCacheTime(ctx);
  const requestTime = core.now();
  const sentAt = performance.now();
  const reply = await forward(ctx, next, ex.headers);
  const f: Fetched = { reply, fwd, requestTime, responseTime: core.now(), sentAt, settle: null };
  const span = partToStore(core, ctx, f);
  if (span === null || reply.body === null) {
    return decorate(core, ctx, reply, { fwd, fwdStatus: reply.status, detail: 'range' });
  }
  const info: CacheInfo = { outcome: 'miss', stored: false, detail: 'partial' };
  ex.cache = info;
  const keep = (buf: Uint8Array) => {
    track(core, storePart(core, ctx, f, span, buf)).then((ok) => {
      info.stored = ok;
    });
  };
  let body: Readable | Buffer;
  if (Buffer.isBuffer(reply.body)) {
    keep(reply.body);
    body = reply.body;
  } else {
    // No expected length: a body that does not fit its Content-Range reaches the client as the
    // origin sent it, and is not stored (storePart checks it).
    body = captureBody(reply.body, core.opts.maxEntryBytes, undefined, {
      onComplete: keep,
      onOverflow: () => {},
      onFail: () => {},
    });
  }
  return decorate(core, ctx, { ...reply, body }, { fwd, fwdStatus: reply.status, detail: 'partial' });
}

/**
 * A GET without Range where a part starting at byte 0 is stored: asks the origin for the rest
 * (`Range: bytes=N-`, with `If-Range` when the part has a strong ETag). A 206 that combines with
 * the part into the whole representation, or a 200, is admitted as the full response; anything
 * else is drained and null returned (the caller fetches the whole response as usual).
 */
export async function completePart(
  core: CacheCore,
  ctx: Ctx,
  next: Next,
  fwd: ForwardReason,
): Promise<Reply | null> {
  const stored = await storedPart(core, ctx);
  const range = stored === null ? null : completionRange(stored.part.span);
  if (stored === null || range === null) return null;
  const own: IncomingHttpHeaders = withoutClientValidators(ctx.ex.headers);
  const headers: IncomingHttpHeaders = Object.assign({}, own, { range });
  const etag = firstValue(stored.entry.headers, 'etag');
  if (etag !== undefined && !etag.trim().startsWith('W/')) headers['if-range'] = etag.trim();
  // The answer is to the client's own request headers: stored and matched by those (not ours).
  const c: Ctx = { ...ctx, headers: own, compress: false };
  markCacheTime(ctx);
  const requestTime = core.now();
  const sentAt = performance.now();
  const reply = await forward(c, next, headers);
  const responseTime = core.now();
  if (reply.status === 200) {
    return admit(core, c, {
      reply,
      fwd,
      requestTime,
      responseTime,
      sentAt,
      settle: null,
      detail: 'partial',
    });
  }
  const f: Fetched = { reply, fwd, requestTime, responseTime, sentAt, settle: null };
  const span = partToStore(core, c, f);
  if (span === null || !validatorsMatch(stored.entry.headers, reply.headers) || reply.body === null) {
    discard(reply.body);
    return null;
  }
  let body: Buffer | null = null;
  try {
    body = Buffer.isBuffer(reply.body)
      ? reply.body
      : await readBody(reply.body, core.opts.maxEntryBytes, undefined);
  } catch {
    return null; // the origin failed mid-body: fetched whole instead
  }
  const merged = body === null || !bodyFits(span, body) ? null : mergeParts(stored.part, { span, body });
  if (merged === null || !isComplete(merged.span)) return null;
  const whole: Reply = {
    status: 200,
    statusText: 'OK',
    headers: completeHeaders(reply.headers, merged.span.length),
    body: Buffer.from(merged.body.buffer, merged.body.byteOffset, merged.body.byteLength),
    source: 'origin',
  };
  track(core, storeDeletePrefix(core, partKeyOf(ctx.key)));
  return admit(core, c, {
    reply: whole,
    fwd,
    requestTime,
    responseTime,
    sentAt,
    settle: null,
    detail: 'partial',
  });
}
