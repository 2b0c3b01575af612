/**
 * The byte encoding of one stored response for a shared tier (Redis). Pure: no I/O, no clock.
 *
 *   offset 0  "SC"          magic, 2 bytes
 *          2  version       u8 (ENTRY_CODEC_VERSION)
 *          3  metaLength    u32 big-endian
 *          7  meta          UTF-8 JSON: every StoredResponse field but the body
 *   7+metaLength  body      the raw body bytes, to the end
 *
 * Why not msgpack: the body (nearly all the bytes) is already raw binary here, and the metadata is
 * a few hundred bytes that V8's JSON parser reads faster than a JS msgpack decoder, so a
 * dependency would buy nothing. A reader refuses any other magic or version, and any metadata
 * that does not have the StoredResponse shape: a corrupt value is a miss, never a crash.
 */
import type { StoredHeaders } from './headers.js';
import type { StoredResponse } from './store.js';

export const ENTRY_CODEC_VERSION = 1;
const MAGIC_0 = 0x53; // S
const MAGIC_1 = 0x43; // C
const HEADER_BYTES = 7;

interface Meta {
  readonly k: string;
  readonly v: string;
  readonly vary: readonly string[];
  readonly vv: readonly (string | null)[];
  readonly s: number;
  readonly st: string;
  readonly h: StoredHeaders;
  readonly rq: number;
  readonly rs: number;
  readonly f: number;
  readonly d: number;
}

export function encodeEntry(e: StoredResponse): Buffer {
  const [head, body] = encodeEntryParts(e);
  return Buffer.concat([head, body], head.byteLength + body.byteLength);
}

/**
 * The encoding in two parts whose concatenation is `encodeEntry(e)`: the magic, version and
 * metadata in a new buffer, and the body as a Buffer view of the stored bytes (not a copy). A
 * writer that sends them as two arguments (the Redis store) makes no copy of the body of its own.
 */
export function encodeEntryParts(e: StoredResponse): [head: Buffer, body: Buffer] {
  const meta: Meta = {
    k: e.key,
    v: e.variantKey,
    vary: e.vary,
    vv: e.varyValues,
    s: e.status,
    st: e.statusText,
    h: e.headers,
    rq: e.requestTime,
    rs: e.responseTime,
    f: e.fetchMs,
    d: e.deleteAt,
  };
  const json = JSON.stringify(meta);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const head = Buffer.allocUnsafe(HEADER_BYTES + jsonBytes);
  head[0] = MAGIC_0;
  head[1] = MAGIC_1;
  head[2] = ENTRY_CODEC_VERSION;
  head.writeUInt32BE(jsonBytes, 3);
  head.write(json, HEADER_BYTES, 'utf8');
  const body = Buffer.isBuffer(e.body)
    ? e.body
    : Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength);
  return [head, body];
}

export type DecodeResult =
  | { readonly ok: true; readonly entry: StoredResponse }
  | { readonly ok: false; readonly why: 'magic' | 'version' | 'length' | 'json' | 'shape' };

const isStr = (x: unknown): x is string => typeof x === 'string';
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function isHeaders(x: unknown): x is StoredHeaders {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return false;
  for (const v of Object.values(x)) {
    if (!isStr(v) && !(Array.isArray(v) && v.every(isStr))) return false;
  }
  return true;
}

function isMeta(x: unknown): x is Meta {
  if (x === null || typeof x !== 'object') return false;
  const m = x as Record<string, unknown>;
  return (
    isStr(m['k']) &&
    isStr(m['v']) &&
    Array.isArray(m['vary']) &&
    m['vary'].every(isStr) &&
    Array.isArray(m['vv']) &&
    m['vv'].every((v) => v === null || isStr(v)) &&
    m['vv'].length === m['vary'].length &&
    Number.isInteger(m['s']) &&
    (m['s'] as number) >= 100 &&
    (m['s'] as number) <= 999 &&
    isStr(m['st']) &&
    isHeaders(m['h']) &&
    isNum(m['rq']) &&
    isNum(m['rs']) &&
    isNum(m['f']) &&
    isNum(m['d'])
  );
}

/** Reads an encoded entry; the body is a view of `buf` (no copy). */
export function decodeEntry(buf: Uint8Array): DecodeResult {
  if (buf.byteLength < HEADER_BYTES || buf[0] !== MAGIC_0 || buf[1] !== MAGIC_1) {
    return { ok: false, why: 'magic' };
  }
  if (buf[2] !== ENTRY_CODEC_VERSION) return { ok: false, why: 'version' };
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const metaLength = b.readUInt32BE(3);
  if (HEADER_BYTES + metaLength > b.byteLength) return { ok: false, why: 'length' };
  let meta: unknown;
  try {
    meta = JSON.parse(b.toString('utf8', HEADER_BYTES, HEADER_BYTES + metaLength));
  } catch {
    return { ok: false, why: 'json' };
  }
  if (!isMeta(meta)) return { ok: false, why: 'shape' };
  return {
    ok: true,
    entry: {
      key: meta.k,
      variantKey: meta.v,
      vary: meta.vary,
      varyValues: meta.vv,
      status: meta.s,
      statusText: meta.st,
      headers: meta.h,
      body: b.subarray(HEADER_BYTES + metaLength),
      requestTime: meta.rq,
      responseTime: meta.rs,
      fetchMs: meta.f,
      deleteAt: meta.d,
    },
  };
}
