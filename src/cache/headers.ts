/**
 * The header map shape the cache stores and reads (lower-case names), and the few readers every
 * cache module needs. Pure.
 */
import type { OutgoingHttpHeaders } from 'node:http';

/** Stored response headers: lower-case names, string or several lines. Serialisable. */
export type StoredHeaders = Readonly<Record<string, string | readonly string[]>>;

/** Anything the cache may read headers from (request or response, stored or live). */
export type HeaderSource = Readonly<Record<string, string | number | readonly string[] | undefined>>;

/** The first line of a header, or `undefined`. */
export function firstValue(headers: HeaderSource, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v;
  return v[0];
}

/**
 * Copies live headers into the stored shape (numbers become strings, undefined dropped), leaving
 * out the names in `drop` (lower-case). Leave fields out here rather than `delete` them from the
 * copy: a delete turns the object into a hash-table ("dictionary") object, several hundred bytes
 * per stored response (measured: bench/scenarios/entry-memory.ts).
 */
export function toStoredHeaders(
  headers: OutgoingHttpHeaders | HeaderSource,
  drop?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  // for…in, not Object.entries (no array of pairs per response stored); header maps are plain
  // objects (or null-prototype ones), with no enumerable inherited fields.
  for (const name in headers) {
    const value = (headers as HeaderSource)[name];
    if (value === undefined) continue;
    const key = name.toLowerCase();
    if (drop?.has(key)) continue;
    if (typeof value === 'number') out[key] = String(value);
    else if (typeof value === 'string') out[key] = value;
    else out[key] = [...value].map(String);
  }
  return out;
}

/** Hop-by-hop fields (RFC 9110 §7.6.1) that are never stored or copied from a 304. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);
