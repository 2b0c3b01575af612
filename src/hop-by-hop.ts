/**
 * Hop-by-hop header handling (RFC 9110 §7.6.1): headers that describe one connection and must not
 * be forwarded, plus every header the Connection field names.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { headerNameToString } from './undici-parts.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function connectionTokens(value: string | string[] | number | undefined): Set<string> | null {
  if (value === undefined) return null;
  // The usual values name no header: answered without splitting (a response per request has one).
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return null;
  const joined = Array.isArray(value) ? value.join(',') : String(value);
  const tokens = new Set<string>();
  for (const t of joined.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '' && token !== 'close' && token !== 'keep-alive') tokens.add(token);
  }
  return tokens.size > 0 ? tokens : null;
}

/**
 * Copies `headers` without hop-by-hop fields and without the names in `drop` (lower-case).
 * Values keep their shape (string or string[]).
 */
export function endToEndHeaders(
  headers: IncomingHttpHeaders | OutgoingHttpHeaders | Record<string, string | string[] | undefined>,
  drop?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const named = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const key in headers) {
    // HTTP/2 pseudo-headers (`:method`, `:path`, ...) describe the stream, like hop-by-hop fields.
    if (HOP_BY_HOP.has(key) || drop?.has(key) || named?.has(key) || key.charCodeAt(0) === 58) continue;
    const value = headers[key];
    if (value === undefined) continue;
    out[key] = typeof value === 'number' ? String(value) : value;
  }
  return out;
}

/**
 * endToEndHeaders() of a head as undici's parser hands it over (`[name, value, ...]`, Buffers or
 * strings; a value may be a list), in one pass into one object, instead of building undici's
 * headers object and copying it. Names are lower-cased as undici's parseHeaders does them,
 * values read as latin1; a repeated name gives a list. A field named `__proto__` is left out (it
 * cannot be an own key of the object a copy assigns into).
 */
export function endToEndRawHeaders(
  raw: readonly (Buffer | string | (Buffer | string)[])[],
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  let connection: string | string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerNameToString(raw[i] as Buffer | string);
    const field = raw[i + 1] as Buffer | string | (Buffer | string)[];
    if (name === 'connection') {
      connection = joinRaw(connection, field);
      continue;
    }
    if (HOP_BY_HOP.has(name) || name.charCodeAt(0) === 58 || name === '__proto__') continue;
    const seen = out[name];
    // Only a repeated field, or a name like `constructor`, finds something here.
    if (seen !== undefined && Object.hasOwn(out, name)) out[name] = joinRaw(seen, field);
    else out[name] = Array.isArray(field) ? field.map(latin1) : latin1(field);
  }
  const named = connectionTokens(connection);
  // Rare: a Connection field naming other fields of this head.
  if (named !== null) for (const token of named) delete out[token];
  return out;
}

function latin1(value: Buffer | string): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

/** `seen` (absent, one value or a list) with the values of `field` after it. */
function joinRaw(
  seen: string | string[] | undefined,
  field: Buffer | string | (Buffer | string)[],
): string | string[] {
  // The usual case, one Connection field: its value, no list made for it.
  if (!Array.isArray(field)) {
    const value = latin1(field);
    if (seen === undefined) return value;
    return typeof seen === 'string' ? [seen, value] : [...seen, value];
  }
  const more = field.map(latin1);
  if (seen === undefined) return more.length === 1 ? (more[0] as string) : more;
  return typeof seen === 'string' ? [seen, ...more] : [...seen, ...more];
}

/** Appends a value to a possibly multi-valued header (a list field: Via, Cache-Status, Server-Timing). */
export function appendHeader(
  headers: Record<string, string | string[]> | OutgoingHttpHeaders,
  name: string,
  value: string,
  separator = ', ',
): void {
  const existing = headers[name];
  if (existing === undefined) headers[name] = value;
  else
    headers[name] =
      `${Array.isArray(existing) ? existing.join(separator) : String(existing)}${separator}${value}`;
}
