/**
 * Validation (RFC 9111 §4.3): the conditional request a cache sends, how a 304 updates the stored
 * response (§3.2, §4.3.4), and answering a client's own conditional request from a stored
 * response (§4.3.2, RFC 9110 §13.1 and §13.2.2). Pure.
 */
import { joinField, splitList } from './cache-control.js';
import { firstValue, type HeaderSource, HOP_BY_HOP, type StoredHeaders, toStoredHeaders } from './headers.js';
import { parseHttpDate } from './http-date.js';

/** The client-side validators a cache strips when it fetches to fill itself (it answers them itself). */
export const CLIENT_VALIDATORS = ['if-none-match', 'if-modified-since'] as const;

/** Conditional headers to validate a stored response (§4.3.1): its ETag and Last-Modified. */
export function conditionalHeaders(stored: HeaderSource): Record<string, string> {
  const out: Record<string, string> = {};
  const etag = firstValue(stored, 'etag');
  if (etag !== undefined) out['if-none-match'] = etag;
  const lastModified = firstValue(stored, 'last-modified');
  if (lastModified !== undefined) out['if-modified-since'] = lastModified;
  return out;
}

export function hasValidators(stored: HeaderSource): boolean {
  return stored['etag'] !== undefined || stored['last-modified'] !== undefined;
}

/** The opaque part of an entity-tag for the weak comparison (RFC 9110 §8.8.3.2). */
function opaque(tag: string): string {
  const t = tag.trim();
  return t.startsWith('W/') ? t.slice(2) : t;
}

export function weakMatch(a: string, b: string): boolean {
  return opaque(a) === opaque(b);
}

/**
 * Whether a 304 applies to the stored response that was validated (§4.3.4): a validator the 304
 * carries must match the stored one; a 304 without validators applies to the response asked about.
 */
export function notModifiedMatches(stored: HeaderSource, notModified: HeaderSource): boolean {
  const newTag = firstValue(notModified, 'etag');
  if (newTag !== undefined) {
    const oldTag = firstValue(stored, 'etag');
    return oldTag !== undefined && weakMatch(oldTag, newTag);
  }
  const newLm = firstValue(notModified, 'last-modified');
  if (newLm !== undefined) return firstValue(stored, 'last-modified') === newLm;
  return true;
}

/** Fields a 304 never replaces in the stored response (§3.2). */
const NOT_UPDATED = new Set(['content-length', 'content-encoding', 'content-range']);

/**
 * The stored headers after a 304 (§3.2): every field of the 304 replaces the stored one (including
 * Cache-Control, Expires, Date, Age and ETag), except hop-by-hop fields and Content-Length.
 */
const AGE: ReadonlySet<string> = new Set(['age']);

export function updateHeaders(stored: StoredHeaders, notModified: HeaderSource): StoredHeaders {
  const merged: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(stored))
    merged[name] = typeof value === 'string' ? value : [...value];
  const drop = new Set<string>(HOP_BY_HOP);
  for (const name of splitList(joinField(notModified['connection']))) drop.add(name.toLowerCase());
  const fresh = toStoredHeaders(notModified);
  for (const [name, value] of Object.entries(fresh)) {
    if (drop.has(name) || NOT_UPDATED.has(name)) continue;
    merged[name] = value;
  }
  // A 304 without Age means the origin's copy is new: the stored Age no longer applies. Copied
  // without it rather than deleted (headers.ts: a delete makes a larger object).
  return fresh['age'] === undefined && merged['age'] !== undefined ? toStoredHeaders(merged, AGE) : merged;
}

/**
 * Evaluates a client's If-None-Match / If-Modified-Since against a stored response (§4.3.2).
 * If-None-Match takes precedence; If-Modified-Since compares with Last-Modified, or, without
 * one, the stored Date, or, without a valid Date either, `receivedAt` (when the stored response
 * was received, ms since the epoch; HTTP-dates count whole seconds). Returns true when the
 * client's copy is current (answer 304): the modification date is at or before the client's.
 */
export function clientCopyIsCurrent(req: HeaderSource, stored: HeaderSource, receivedAt?: number): boolean {
  const inm = req['if-none-match'];
  if (inm !== undefined) {
    const tags = splitList(joinField(inm));
    if (tags.includes('*')) return true;
    const etag = firstValue(stored, 'etag');
    return etag !== undefined && tags.some((t) => weakMatch(t, etag));
  }
  const ims = parseHttpDate(firstValue(req, 'if-modified-since'));
  if (ims === undefined) return false;
  const modified =
    parseHttpDate(firstValue(stored, 'last-modified')) ??
    parseHttpDate(firstValue(stored, 'date')) ??
    (receivedAt === undefined ? undefined : Math.floor(receivedAt / 1000) * 1000);
  return modified !== undefined && modified <= ims;
}

/** Headers of a 304 answered from a stored response (RFC 9110 §15.4.5): no content metadata. */
export function notModifiedHeaders(stored: StoredHeaders): Record<string, string | string[]> {
  const out = toStoredHeaders(stored);
  delete out['content-length'];
  delete out['content-range'];
  return out;
}
