/**
 * Upstream compression: the cache asks origins for compressed content codings (`br, gzip`) even
 * when the client did not, keeps the compressed body in the store, and on the way out serves each
 * client a representation it accepts: the stored bytes as they are when its Accept-Encoding allows
 * that coding, decoded by node:zlib otherwise (small bodies in memory in one step, with their
 * decoded length; others streaming).
 *
 * A decoded answer follows nginx's gunzip filter (ngx_http_gunzip_filter_module): Content-Encoding
 * goes, Content-Length is the decoded length or, when the body streams, goes (chunked; the length
 * is only known at the end), Accept-Ranges goes (byte ranges of the coded form do not apply), a
 * strong ETag is weakened (`"x"` → `W/"x"`: the decoded bytes are another representation, so they
 * must not claim the strong validator of the coded ones, RFC 9110 §8.8.1; weak comparison, which
 * If-None-Match uses, still matches) and `Vary: Accept-Encoding` is present, because the answer
 * now depends on it.
 *
 * A client without Accept-Encoding is treated as accepting identity only (RFC 9110 §12.5.3 would
 * allow any coding, but curl without --compressed, Node's http.get and most scripts cannot read a
 * compressed body they did not ask for; nginx's gunzip does the same).
 *
 * The header logic is pure; `decodeWhole`, `decodedStream` and `checkDecodable` use node:zlib.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import {
  brotliDecompressSync,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  gunzipSync,
  inflateSync,
} from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { joinField, splitList } from './cache-control.js';
import type { HeaderSource } from './headers.js';

/** Content codings the cache can ask for and decode. */
export type Coding = 'br' | 'gzip' | 'deflate';

export const DECODABLE: ReadonlySet<string> = new Set(['br', 'gzip', 'x-gzip', 'deflate']);

/** The coding a decoder is chosen by (`x-gzip` is gzip, RFC 9110 §8.4.1.3). */
function canonical(coding: string): Coding | null {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return 'gzip';
    case 'br':
      return 'br';
    case 'deflate':
      return 'deflate';
    default:
      return null;
  }
}

/** The Accept-Encoding value the cache sends upstream, e.g. `br, gzip`. */
export function upstreamAcceptEncoding(codings: readonly Coding[]): string {
  return codings.join(', ');
}

/**
 * The content codings of a response, lower-case, in the order applied; `[]` for none or identity.
 */
export function contentCodings(headers: HeaderSource): string[] {
  const v = headers['content-encoding'];
  if (v === undefined) return [];
  return splitList(joinField(v as string | readonly string[]))
    .map((c) => c.toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

/**
 * Whether a client's Accept-Encoding accepts `coding` (RFC 9110 §12.5.3): listed with q > 0, or
 * covered by `*` with q > 0 and not listed with q=0. No header: identity only (see the file head).
 */
export function accepts(acceptEncoding: HeaderSource[string], coding: string): boolean {
  if (acceptEncoding === undefined) return false;
  const want = canonical(coding) ?? coding;
  let star: number | null = null;
  let exact: number | null = null;
  for (const member of splitList(joinField(acceptEncoding as string | readonly string[]))) {
    const [rawName, ...params] = member.split(';');
    const name = (rawName ?? '').trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (Number.isNaN(q)) q = 0;
    if (name === '*') star = Math.max(star ?? 0, q);
    else if ((canonical(name) ?? name) === want) exact = Math.max(exact ?? 0, q);
  }
  if (exact !== null) return exact > 0;
  return star !== null && star > 0;
}

/** What to do with a coded response for one client. */
export type CodingPlan =
  /** Not coded, or coded in a way we leave alone (several codings, unknown coding). */
  | { readonly kind: 'as-is' }
  /** Coded, and the client accepts the coding: send the bytes as they are. */
  | { readonly kind: 'coded'; readonly coding: string }
  /** Coded, and the client does not accept it: decode. */
  | { readonly kind: 'decode'; readonly coding: Coding };

export function planCoding(resHeaders: HeaderSource, clientAcceptEncoding: HeaderSource[string]): CodingPlan {
  const codings = contentCodings(resHeaders);
  if (codings.length !== 1) return { kind: 'as-is' };
  const coding = codings[0]!;
  const decoder = DECODABLE.has(coding) ? canonical(coding) : null;
  if (decoder === null) return { kind: 'as-is' };
  if (accepts(clientAcceptEncoding, coding)) return { kind: 'coded', coding };
  return { kind: 'decode', coding: decoder };
}

/** `Vary` with `accept-encoding` in it (added once, existing members kept). */
export function withVaryAcceptEncoding(vary: OutgoingHttpHeaders[string]): string {
  const members = vary === undefined ? [] : splitList(joinField(vary as string | readonly string[]));
  if (members.some((m) => m === '*' || m.toLowerCase() === 'accept-encoding')) return members.join(', ');
  return [...members, 'Accept-Encoding'].join(', ');
}

/** A strong entity-tag made weak; weak ones as they are. */
export function weakenEtag(etag: string): string {
  const t = etag.trim();
  return t.startsWith('W/') ? t : `W/${t}`;
}

/**
 * Headers of the decoded form of a coded response (see the file head): with its length when the
 * decoded body is whole in memory (`identityLength`), without one when it streams.
 */
export function decodedHeaders(headers: OutgoingHttpHeaders, identityLength?: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...headers };
  delete out['content-encoding'];
  if (identityLength === undefined) delete out['content-length'];
  else out['content-length'] = String(identityLength);
  delete out['accept-ranges'];
  const etag = out['etag'];
  if (etag !== undefined) out['etag'] = weakenEtag(Array.isArray(etag) ? String(etag[0]) : String(etag));
  out['vary'] = withVaryAcceptEncoding(out['vary']);
  return out;
}

/** Headers of a coded response sent coded: only `Vary: Accept-Encoding` is ensured. */
export function codedHeaders(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  return { ...headers, vary: withVaryAcceptEncoding(headers['vary']) };
}

/** node:zlib's decoder for each coding: as a stream, and in one step with an output bound. */
const DECODERS: Readonly<
  Record<
    Coding,
    {
      readonly stream: () => Transform;
      readonly whole: (body: Buffer, bound: { maxOutputLength: number }) => Buffer;
    }
  >
> = {
  gzip: { stream: createGunzip, whole: gunzipSync },
  br: { stream: createBrotliDecompress, whole: brotliDecompressSync },
  deflate: { stream: createInflate, whole: inflateSync },
};

function decoderFor(coding: Coding): Transform {
  return DECODERS[coding].stream();
}

export interface DecodeCount {
  /** The decoded body ended cleanly: `codedBytes` in, `identityBytes` out. */
  onEnd?(codedBytes: number, identityBytes: number): void;
}

/**
 * The decoded body of `source` (a stream or the stored bytes), streaming. A decoding error (or a
 * failure of `source`) destroys the returned stream, so the client sees a broken body, never a
 * clean, short one.
 */
export function decodedStream(source: Readable | Buffer, coding: Coding, count: DecodeCount = {}): Readable {
  const input = Buffer.isBuffer(source) ? Readable.from([source], { objectMode: false }) : source;
  let codedBytes = 0;
  let identityBytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      codedBytes += chunk.length;
      cb(null, chunk);
    },
  });
  const decoder = decoderFor(coding);
  const out = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      identityBytes += chunk.length;
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      count.onEnd?.(codedBytes, identityBytes);
      cb();
    },
  });
  pipeline(input, counter, decoder, out, () => {
    // pipeline destroys every stream on error, `out` included: the client sees the failure.
  });
  return out;
}

/**
 * Stored bodies at most this large (coded) are decoded in one synchronous step for a client that
 * does not take their coding, when they decode to at most WHOLE_DECODE_MAX_IDENTITY: a zlib
 * stream per hit (a handle, thread-pool round trips, chunked output) cost a 1 KiB JSON hit some
 * 300 µs, the step itself a few µs. Larger bodies stream, so that no request holds the event loop
 * for long.
 */
export const WHOLE_DECODE_MAX_CODED = 32 * 1024;
export const WHOLE_DECODE_MAX_IDENTITY = 512 * 1024;

/**
 * `body` decoded in one step, or null when it is larger than the bounds above, decodes to more
 * than WHOLE_DECODE_MAX_IDENTITY, or is not a valid `coding` stream (the caller then streams it,
 * and a failure surfaces there as a broken body).
 */
export function decodeWhole(body: Buffer, coding: Coding): Buffer | null {
  if (body.length > WHOLE_DECODE_MAX_CODED) return null;
  try {
    return DECODERS[coding].whole(body, { maxOutputLength: WHOLE_DECODE_MAX_IDENTITY });
  } catch {
    return null;
  }
}

/**
 * Decoded copies of stored bodies (decodeWhole's output), so that a hot coded entry read by clients
 * that do not take its coding is decoded once, not on every such hit. A copy is found by a serial
 * number given to the stored bytes (the Buffer a hit serves, one per stored response), never by
 * the bytes or the entry themselves: such a key would keep alive a response the store let go.
 * Bounded by bytes; a copy whose response is gone is simply never asked for again, and ages out.
 */
export class DecodedCopies {
  readonly #copies: LRUCache<number, Buffer>;
  readonly #serials = new WeakMap<Buffer, number>();
  #lastSerial = 0;

  constructor(maxBytes: number) {
    this.#copies = new LRUCache({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (b) => Math.max(1, b.length),
    });
  }

  /** `body` (stored, never changed) decoded in one step, from the copy when there is one. */
  of(body: Buffer, coding: Coding): Buffer | null {
    const serial = this.#serials.get(body);
    if (serial !== undefined) {
      const known = this.#copies.get(serial);
      if (known !== undefined) return known;
    }
    const whole = decodeWhole(body, coding);
    if (whole === null) return null;
    const key = serial ?? ++this.#lastSerial;
    if (serial === undefined) this.#serials.set(body, key);
    this.#copies.set(key, whole);
    return whole;
  }

  /** Bytes held by the copies. */
  get bytes(): number {
    return this.#copies.calculatedSize;
  }
}

/**
 * Decodes `body` to nowhere, counting the output: resolves its identity size, or null when it is
 * not a valid `coding` stream or decodes to more than `maxIdentityBytes` (a decompression bomb);
 * then it must not be stored. Output is never held in memory.
 */
export function checkDecodable(
  body: Uint8Array,
  coding: Coding,
  maxIdentityBytes: number,
): Promise<number | null> {
  return new Promise((resolve) => {
    const decoder = decoderFor(coding);
    let identityBytes = 0;
    decoder.on('data', (chunk: Buffer) => {
      identityBytes += chunk.length;
      if (identityBytes > maxIdentityBytes) {
        decoder.destroy();
        resolve(null);
      }
    });
    decoder.on('error', () => resolve(null));
    decoder.on('end', () => resolve(identityBytes));
    decoder.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  });
}

/** The decoder for a stored response's single decodable coding, or null (identity or left alone). */
export function storedCoding(headers: HeaderSource): Coding | null {
  const codings = contentCodings(headers);
  if (codings.length !== 1 || !DECODABLE.has(codings[0]!)) return null;
  return canonical(codings[0]!);
}
