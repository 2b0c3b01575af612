/**
 * Hop-by-hop header handling (RFC 9110 §7.6.1): headers that describe one connection and must not
 * be forwarded, plus every header the Connection field names.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

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
