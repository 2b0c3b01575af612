/**
 * Range requests answered from a stored complete response (RFC 9110 §14, §13.1.5, §15.3.7,
 * §15.5.17). Pure: no I/O, no clock.
 *
 * One byte range is served as 206 with `Content-Range: bytes first-last/length`. A range that
 * starts past the end is 416 with `Content-Range: bytes *\/length`. Everything a server may ignore
 * is answered with the whole 200, as RFC 9110 §14.2 allows: several ranges, another range unit,
 * an invalid Range, an empty representation, and a Range whose If-Range validator does not match
 * (§13.1.5: a strong ETag compared strongly, or a date equal to Last-Modified).
 */
import { joinField, splitList } from './cache-control.js';
import { firstValue, type HeaderSource } from './headers.js';
import { parseHttpDate } from './http-date.js';

export type RangeDecision =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly first: number; readonly last: number }
  | { readonly kind: 'unsatisfiable' };

const FULL: RangeDecision = Object.freeze({ kind: 'full' });

/** Decides how to answer `Range: value` on a representation of `length` bytes (§14.1.2, §14.2). */
export function decideRange(value: string | undefined, length: number): RangeDecision {
  if (value === undefined || length === 0) return FULL;
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(value);
  if (m === null) return FULL; // another unit, or not a Range at all: ignored
  const specs = splitList(m[1]!);
  if (specs.length !== 1) return FULL; // several ranges: the whole representation is one answer
  const spec = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (spec === null) return FULL;
  const [, a = '', b = ''] = spec;
  if (a === '') {
    // suffix-range: the last N bytes
    if (b === '') return FULL;
    const n = Number(b);
    if (n === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', first: Math.max(0, length - n), last: length - 1 };
  }
  const first = Number(a);
  if (b !== '' && Number(b) < first) return FULL; // invalid int-range: the field is ignored
  if (first >= length) return { kind: 'unsatisfiable' };
  const last = b === '' ? length - 1 : Math.min(Number(b), length - 1);
  return { kind: 'partial', first, last };
}

/**
 * Whether an If-Range condition holds for the stored response (§13.1.5). Absent: true. An
 * entity-tag must match the stored ETag strongly (weak tags never match); a date must equal the
 * stored Last-Modified exactly.
 */
export function ifRangeHolds(ifRange: string | undefined, stored: HeaderSource): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) {
    const etag = firstValue(stored, 'etag')?.trim();
    return etag !== undefined && !v.startsWith('W/') && !etag.startsWith('W/') && etag === v;
  }
  const date = parseHttpDate(v);
  const lastModified = parseHttpDate(firstValue(stored, 'last-modified'));
  return date !== undefined && lastModified !== undefined && date === lastModified;
}

/** A response to a Range request made from a stored 200, or `null` to send the whole response. */
export interface PartialReply {
  readonly status: 206 | 416;
  readonly statusText: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

/**
 * The 206 or 416 for a GET with Range on a stored `status` response with `headers` and `body`
 * (the full representation), or `null` when the whole response is the answer.
 */
export function partialReply(
  req: HeaderSource,
  status: number,
  headers: HeaderSource,
  body: Buffer,
): PartialReply | null {
  if (status !== 200) return null;
  const range = req['range'];
  if (range === undefined) return null;
  if (!ifRangeHolds(firstValue(req, 'if-range'), headers)) return null;
  const d = decideRange(joinField(range), body.byteLength);
  switch (d.kind) {
    case 'full':
      return null;
    case 'unsatisfiable':
      return {
        status: 416,
        statusText: 'Range Not Satisfiable',
        headers: { 'content-range': `bytes */${body.byteLength}`, 'content-length': '0' },
        body: Buffer.alloc(0),
      };
    case 'partial': {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (value === undefined) continue;
        out[name] = typeof value === 'number' ? String(value) : (value as string | string[]);
      }
      out['content-range'] = `bytes ${d.first}-${d.last}/${body.byteLength}`;
      out['content-length'] = String(d.last - d.first + 1);
      return {
        status: 206,
        statusText: 'Partial Content',
        headers: out,
        body: body.subarray(d.first, d.last + 1),
      };
    }
    default: {
      const never: never = d;
      throw new Error(`unknown range decision ${String(never)}`);
    }
  }
}
