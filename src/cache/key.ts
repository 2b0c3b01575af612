/**
 * Cache keys. Pure.
 *
 * Primary key: `<url>\n<credential>\n<key headers>` where `<url>` is the target without fragment
 * (query optionally normalised by the route), `<credential>` is the sha256 of the request's
 * credentials (`-` when it has none: Authorization, the route's credential headers, and its
 * cookies, see cookieParts) and `<key headers>` the route's extra request headers,
 * followed by `\nfwd:` and the forwarding headers the request carries (front/ keeps them only
 * from clients `proxy.trustForwarded` names: forwarded.ts), when it carries any. The URL
 * comes first so that one URL (every credential, every variant) or a URL prefix can be purged or
 * invalidated with a prefix delete.
 *
 * Secondary key (§4.1): the normalised values of the request fields named by the stored
 * response's `Vary`.
 */
import { createHash, createHmac } from 'node:crypto';
import { FORWARDING_HEADERS } from '../forwarded.js';
import { joinField } from './cache-control.js';
import type { HeaderSource } from './headers.js';
import { fieldMatches, normaliseFieldValue, varyValue } from './vary-normalise.js';

export { normaliseFieldValue };

export interface KeyPolicy {
  readonly keyQuery: { readonly sort: boolean; readonly ignore: readonly string[] };
  readonly keyHeaders: readonly string[];
  readonly credentialHeaders: readonly string[];
  readonly credentialCookies: readonly string[];
  /**
   * `isolate` (the default when absent): a response fetched with a Cookie header is keyed by it
   * (by the credentialCookies alone when the route names some); `ignore`: only credentialCookies
   * count.
   */
  readonly cookies?: 'isolate' | 'ignore';
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/**
 * The URL as the cache keys it: no fragment; when the route asks, query parameters sorted (by raw
 * name, then raw value; encodings are kept as sent) and listed parameters dropped.
 */
export function cacheUrl(target: URL, policy: Pick<KeyPolicy, 'keyQuery'>): string {
  const base = `${target.origin}${target.pathname}`;
  const search = target.search;
  if (search === '' || (!policy.keyQuery.sort && policy.keyQuery.ignore.length === 0)) {
    return base + search;
  }
  const ignore = new Set(policy.keyQuery.ignore);
  let pairs = search
    .slice(1)
    .split('&')
    .filter((p) => p !== '' && !ignore.has(decodeName(p.split('=', 1)[0]!)));
  if (policy.keyQuery.sort) {
    pairs = pairs
      .map((p, i) => ({ p, i, name: p.split('=', 1)[0]! }))
      .sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : a.p < b.p ? -1 : a.p > b.p ? 1 : a.i - b.i,
      )
      .map((x) => x.p);
  }
  return pairs.length === 0 ? base : `${base}?${pairs.join('&')}`;
}

/** The named cookies of a Cookie header, as `name=value` strings, in request order. */
function namedCookies(cookieHeader: string, names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (names.has(name)) out.push(`${name}=${part.slice(eq + 1).trim()}`);
  }
  return out;
}

/** A request's Cookie field(s) as one `a=1; b=2` string, whitespace around pairs removed; '' for none. */
function cookieLine(value: HeaderSource[string]): string {
  if (value === undefined) return '';
  return joinField(value)
    .replace(/, /g, '; ')
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c !== '')
    .join('; ');
}

/**
 * Whether the route keys by the whole Cookie header (the default, `cookies: isolate`, when it names
 * no `credentialCookies`): the only mode where an entry fetched without cookies may answer a
 * request with some (cookieFallbackKey).
 */
function keysWholeCookie(policy: KeyPolicy): boolean {
  return policy.credentialCookies.length === 0 && policy.cookies !== 'ignore';
}

/**
 * Lines describing the request's cookies as the key counts them: the route's `credentialCookies`
 * when it names some (sorted; other cookies do not count), else the whole Cookie header (unless
 * the route says `cookies: ignore`).
 */
function cookieParts(headers: HeaderSource, policy: KeyPolicy): string[] {
  const cookie = headers['cookie'];
  if (cookie === undefined) return [];
  if (policy.credentialCookies.length > 0) {
    const named = namedCookies(joinField(cookie).replace(/, /g, '; '), new Set(policy.credentialCookies));
    return named.sort().map((c) => `c:${c}`);
  }
  if (policy.cookies === 'ignore') return [];
  const line = cookieLine(cookie);
  return line === '' ? [] : [`k:${line}`];
}

/** Lines describing the request's credentials, or none; without its cookies when `cookies` is false. */
export function credentialParts(headers: HeaderSource, policy: KeyPolicy, cookies = true): string[] {
  const parts: string[] = [];
  const auth = headers['authorization'];
  if (auth !== undefined) parts.push(`h:authorization:${joinField(auth)}`);
  // Indexed loops: this runs for every request the cache sees, and an iterator per loop was garbage.
  const names = policy.credentialHeaders;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const v = headers[name];
    if (v !== undefined) parts.push(`h:${name}:${joinField(v)}`);
  }
  if (cookies && headers['cookie'] !== undefined) parts.push(...cookieParts(headers, policy));
  return parts;
}

/**
 * sha256 (hex) of the request's credentials, or null when it carries none; HMAC-SHA256 with
 * `secret` when one is given.
 */
export function credentialHash(
  headers: HeaderSource,
  policy: KeyPolicy,
  secret?: string,
  cookies = true,
): string | null {
  const parts = credentialParts(headers, policy, cookies);
  if (parts.length === 0) return null;
  const h = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  return h.update(parts.join('\n')).digest('hex');
}

/** The prefix every key of one URL starts with (for purge and invalidation). */
export function urlKeyPrefix(url: string): string {
  return `${url}\n`;
}

export function primaryKey(
  target: URL,
  headers: HeaderSource,
  policy: KeyPolicy,
  secret?: string,
  cookies = true,
): string {
  const url = cacheUrl(target, policy);
  const credential = credentialHash(headers, policy, secret, cookies) ?? '-';
  const extra =
    policy.keyHeaders.length === 0
      ? ''
      : policy.keyHeaders.map((h) => `${h}=${normaliseFieldValue(headers[h]) ?? ''}`).join('&');
  return `${urlKeyPrefix(url)}${credential}\n${extra}${forwardingPart(headers)}`;
}

/**
 * For a request whose whole Cookie header is part of its key (keysWholeCookie): the key of the
 * same request without its cookies, where an entry fetched without cookies is stored (it may answer
 * this request too: nothing of it belongs to another caller). Null otherwise: no cookies, or the
 * route names its credential cookies (they isolate like Authorization) or ignores cookies.
 */
export function cookieFallbackKey(
  target: URL,
  headers: HeaderSource,
  policy: KeyPolicy,
  secret?: string,
): string | null {
  if (headers['cookie'] === undefined || !keysWholeCookie(policy)) return null;
  if (cookieLine(headers['cookie']) === '') return null;
  return primaryKey(target, headers, policy, secret, false);
}

/** The forwarding headers a request carries, as a key line (`''` when none: the usual case). */
function forwardingPart(headers: HeaderSource): string {
  let out = '';
  for (let i = 0; i < FORWARDING_HEADERS.length; i++) {
    const name = FORWARDING_HEADERS[i] as string;
    const v = headers[name];
    if (v !== undefined) out += `${out === '' ? '\nfwd:' : '&'}${name}=${JSON.stringify(joinField(v))}`;
  }
  return out;
}

/** The normalised request values of the fields a stored response varies on. */
export function varyValues(fields: readonly string[], reqHeaders: HeaderSource): (string | null)[] {
  return fields.map((f) => varyValue(f, reqHeaders[f]));
}

/** Secondary key: identifies one variant under a primary key. */
export function variantKey(fields: readonly string[], values: readonly (string | null)[]): string {
  return fields.map((f, i) => `${f}:${values[i] === null ? '\u0000' : values[i]}`).join('\n');
}

/**
 * Whether a stored variant matches the request (§4.1), field by field as vary-normalise.ts compares
 * them (with the stored response's headers, a field's selection rule may apply); `Vary: *` never
 * matches.
 */
export function varyMatches(
  stored: {
    readonly vary: readonly string[];
    readonly varyValues: readonly (string | null)[];
    readonly headers?: HeaderSource;
  },
  reqHeaders: HeaderSource,
): boolean {
  if (stored.vary.includes('*')) return false;
  return stored.vary.every((f, i) =>
    fieldMatches(f, stored.varyValues[i] ?? null, reqHeaders[f], stored.headers),
  );
}
