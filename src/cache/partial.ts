/**
 * Partial content (RFC 9111 §3.3, §3.4; RFC 9110 §14, §15.3.7): a 206 stored as a partial entry
 * (one contiguous byte span of a representation of known length, its `Content-Range` kept in
 * the stored headers), later Range requests it covers answered from it, and the missing tail
 * fetched with a Range request and combined into the complete response. Pure.
 *
 * A 206 is taken only when it is exactly one span, self-consistent and plain: `Content-Range:
 * bytes first-last/length` with first <= last < length (no `*` length, no multipart), no content
 * coding, and a body of exactly last - first + 1 bytes (checked when it has arrived: stage.ts).
 * Two parts combine only when they are of the same length, touch or overlap, agree on every
 * overlapping byte, and have matching validators (§3.4, RFC 9110 §8.8.3, §8.8.2.2): the same
 * strong ETag, or, without ETags, the same Last-Modified that is strong (at least 60 s before the
 * stored Date). Anything else is never combined; the newer part replaces the older one.
 */
import { joinField } from './cache-control.js';
import { contentCodings } from './compression.js';
import { firstValue, type HeaderSource } from './headers.js';
import { parseHttpDate } from './http-date.js';
import { decideRange, ifRangeHolds } from './range.js';

/** One byte span of a representation: bytes `first`..`last` (inclusive) of `length`. */
export interface Span {
  readonly first: number;
  readonly last: number;
  readonly length: number;
}

const CONTENT_RANGE = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15})$/;

/** A single-span `Content-Range` (RFC 9110 §14.4), strictly; null for anything else. */
export function parseContentRange(value: HeaderSource[string]): Span | null {
  if (value === undefined || (Array.isArray(value) && value.length !== 1)) return null;
  const m = CONTENT_RANGE.exec(joinField(value).trim());
  if (m === null) return null;
  const first = Number(m[1]);
  const last = Number(m[2]);
  const length = Number(m[3]);
  if (first > last || last >= length) return null;
  return { first, last, length };
}

/**
 * The span of a 206 that may be stored as a partial entry, or null: one valid Content-Range, no
 * content coding, a Content-Length (when sent) equal to the span, a length within `maxBytes`.
 */
export function storablePart(headers: HeaderSource, maxBytes: number): Span | null {
  const span = parseContentRange(headers['content-range']);
  if (span === null || span.length > maxBytes) return null;
  if (contentCodings(headers).length > 0) return null;
  const cl = headers['content-length'];
  if (cl !== undefined && joinField(cl).trim() !== String(span.last - span.first + 1)) return null;
  return span;
}

/** Whether a body that arrived is exactly the span it claims to be. */
export function bodyFits(span: Span, body: Uint8Array): boolean {
  return body.byteLength === span.last - span.first + 1;
}

/** A strong entity-tag (not `W/`), trimmed, or null. */
function strongEtag(headers: HeaderSource): string | null {
  const t = firstValue(headers, 'etag')?.trim();
  return t === undefined || t.startsWith('W/') || !t.startsWith('"') ? null : t;
}

/** Last-Modified when it is a strong validator for a cache (RFC 9110 §8.8.2.2): 60 s before Date. */
function strongLastModified(headers: HeaderSource): number | null {
  const lm = parseHttpDate(firstValue(headers, 'last-modified'));
  const date = parseHttpDate(firstValue(headers, 'date'));
  if (lm === undefined || date === undefined || date - lm < 60_000) return null;
  return lm;
}

/**
 * Whether two responses are the same representation for combining (§3.4): the same strong ETag;
 * or, when neither carries an ETag, the same strong Last-Modified.
 */
export function validatorsMatch(a: HeaderSource, b: HeaderSource): boolean {
  const ea = strongEtag(a);
  const eb = strongEtag(b);
  if (ea !== null || eb !== null) return ea !== null && ea === eb;
  if (a['etag'] !== undefined || b['etag'] !== undefined) return false; // weak tags only
  const la = strongLastModified(a);
  return la !== null && la === strongLastModified(b);
}

/** A stored part: its span and bytes. */
export interface Part {
  readonly span: Span;
  readonly body: Uint8Array;
}

/**
 * Two parts of one representation as one (contiguous) part, or null when they do not touch, are
 * of different lengths, or disagree on a byte they both hold. Validators are checked by the caller.
 */
export function mergeParts(a: Part, b: Part): Part | null {
  if (a.span.length !== b.span.length) return null;
  const [lo, hi] = a.span.first <= b.span.first ? [a, b] : [b, a];
  if (hi.span.first > lo.span.last + 1) return null; // a gap between them
  // Overlap: the bytes both hold must be the same.
  const from = hi.span.first;
  const to = Math.min(lo.span.last, hi.span.last);
  for (let i = from; i <= to; i++) {
    if (lo.body[i - lo.span.first] !== hi.body[i - hi.span.first]) return null;
  }
  if (hi.span.last <= lo.span.last) return lo;
  const body = Buffer.concat([
    Buffer.from(lo.body.buffer, lo.body.byteOffset, lo.body.byteLength),
    Buffer.from(
      hi.body.buffer,
      hi.body.byteOffset + (lo.span.last + 1 - hi.span.first),
      hi.span.last - lo.span.last,
    ),
  ]);
  return { span: { first: lo.span.first, last: hi.span.last, length: lo.span.length }, body };
}

/** Whether a part holds the whole representation. */
export function isComplete(span: Span): boolean {
  return span.first === 0 && span.last === span.length - 1;
}

/**
 * The Range to ask for to complete a part that starts at byte 0 (`bytes=N-`), or null (a part
 * that starts later would need two ranges: fetched whole instead).
 */
export function completionRange(span: Span): string | null {
  if (span.first !== 0 || isComplete(span)) return null;
  return `bytes=${span.last + 1}-`;
}

/** Headers of a combined complete response (§3.4: the newer response's), as a 200. */
export function completeHeaders(newer: HeaderSource, length: number): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(newer)) {
    if (value === undefined || name === 'content-range') continue;
    out[name] = typeof value === 'number' ? String(value) : (value as string | string[]);
  }
  out['content-length'] = String(length);
  return out;
}

/** A 206 answered from a stored part. */
export interface PartReply {
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

/**
 * The 206 for a GET with Range from a stored part, or null when the part cannot answer it: not
 * one range, a range (resolved against the full length) outside the part, or an If-Range that
 * does not hold.
 */
export function replyFromPart(req: HeaderSource, stored: HeaderSource, part: Part): PartReply | null {
  const range = req['range'];
  if (range === undefined || !ifRangeHolds(firstValue(req, 'if-range'), stored)) return null;
  const d = decideRange(joinField(range), part.span.length);
  if (d.kind !== 'partial' || d.first < part.span.first || d.last > part.span.last) return null;
  const headers = completeHeaders(stored, d.last - d.first + 1);
  headers['content-range'] = `bytes ${d.first}-${d.last}/${part.span.length}`;
  const b = part.body;
  const whole = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    headers,
    body: whole.subarray(d.first - part.span.first, d.last - part.span.first + 1),
  };
}
